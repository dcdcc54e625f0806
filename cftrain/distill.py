"""`cftrain distill`: sample a teacher on generated problems and keep only the traces the verifier accepts.

The output is a records `.jsonl` whose rows carry a `trace` (the verified completion) and `provenance` (teacher,
sampling settings, time); set it as a recipe's `data.train_path` and SFT trains on the traces instead of the
programmatic rationales. Teachers: any local folder / Hub id / `cftrain:` model through `transformers`, or an
OpenAI-compatible chat endpoint given by URL (`http://host:8000/v1`, e.g. a vLLM server), with the key in
`$OPENAI_API_KEY` when it needs one. The key is sent over https, or over plain http only to a loopback host
(127.0.0.0/8, localhost, ::1) unless `allow_insecure=True` (`--allow-insecure-http`); redirects are not followed,
so no redirect can carry it elsewhere. A failing endpoint (refused, timed out, an HTTP error, a reply that is not
chat-completions JSON) is a one-line ValueError naming the URL.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping

from cftrain.prompts import PromptConfig, build_prompt
from cftrain.rewards import exact_match, parse_answer

MAX_REPLY_BYTES = 64 * 1024 * 1024


def _short(text: object) -> str:
    text = str(text)
    return text if len(text) <= 80 else text[:80] + "..."


def _shown(url: str) -> str:
    """The URL for an error message: without any user:password@ part (never raises), at most 80 chars."""
    return _short(re.sub(r"//[^/@]*@", "//", url, count=1))


def _is_loopback(host: str) -> bool:
    # No DNS lookup: a name other than localhost could resolve anywhere (and differently later).
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_endpoint(url: str, allow_insecure: bool = False) -> None:
    """Raise ValueError unless `url` is https, or http to a loopback host, or `allow_insecure` is set."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as e:
        raise ValueError(f"teacher {_shown(url)}: not a valid URL ({_short(e)})") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ValueError(f"teacher {_shown(url)}: expected an http(s)://host/... URL")
    if parts.scheme == "http" and not allow_insecure and not _is_loopback(host):
        raise ValueError(
            f"teacher {_shown(url)}: plain http to a non-loopback host would send $OPENAI_API_KEY and the prompts "
            "unencrypted; use https, a loopback host, or allow_insecure (--allow-insecure-http)"
        )


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs) -> None:
        return None  # urllib then raises the 3xx as an HTTPError


_OPENER = urllib.request.build_opener(_NoRedirect)


def _endpoint(
    url: str, model: str, messages: list[dict], samples: int, temperature: float, max_tokens: int, timeout: float
) -> list[str]:
    body = {"model": model, "messages": messages, "n": samples, "temperature": temperature, "max_tokens": max_tokens}
    headers = {"Content-Type": "application/json"}
    if os.environ.get("OPENAI_API_KEY"):
        headers["Authorization"] = f"Bearer {os.environ['OPENAI_API_KEY']}"
    request = urllib.request.Request(
        url.rstrip("/") + "/chat/completions", data=json.dumps(body).encode(), headers=headers
    )
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            reply = response.read(MAX_REPLY_BYTES + 1)
    except urllib.error.HTTPError as e:
        raise ValueError(f"teacher {_shown(url)}: HTTP {e.code} {_short(e.reason)}") from None
    except urllib.error.URLError as e:
        raise ValueError(f"teacher {_shown(url)}: cannot connect ({_short(e.reason)})") from None
    except (TimeoutError, OSError) as e:
        raise ValueError(f"teacher {_shown(url)}: {type(e).__name__} ({_short(e)})") from None
    if len(reply) > MAX_REPLY_BYTES:
        raise ValueError(f"teacher {_shown(url)}: reply larger than {MAX_REPLY_BYTES} bytes")
    try:
        choices = json.loads(reply)["choices"]
        texts = [choice["message"]["content"] or "" for choice in choices]
    except (ValueError, KeyError, TypeError, IndexError, RecursionError) as e:
        raise ValueError(f"teacher {_shown(url)}: not a chat-completions reply ({type(e).__name__})") from None
    if not all(isinstance(text, str) for text in texts):
        raise ValueError(f"teacher {_shown(url)}: not a chat-completions reply (content is not text)")
    return texts


def sample_teacher(
    teacher: str,
    records: list[Mapping],
    prompt: PromptConfig,
    *,
    samples: int = 4,
    temperature: float = 0.7,
    max_new_tokens: int = 1024,
    batch_size: int = 8,
    endpoint_model: str = "default",
    allow_insecure: bool = False,
    timeout: float = 600.0,
) -> list[list[str]]:
    """`samples` completions per record from a URL endpoint or a transformers model.

    A URL must pass `check_endpoint` (`allow_insecure` permits plain http to any host); `timeout` is per request.
    """
    if teacher.startswith(("http://", "https://")):
        check_endpoint(teacher, allow_insecure)
        chat = PromptConfig("chat", prompt.system_prompt, prompt.scaffold)
        return [
            _endpoint(teacher, endpoint_model, build_prompt(r, chat), samples, temperature, max_new_tokens, timeout)
            for r in records
        ]
    from cftrain.generation import generate, render_prompts
    from cftrain.models import load_model, load_tokenizer

    model, tokenizer = load_model(teacher), load_tokenizer(teacher, padding_side="left")
    texts, _ = generate(
        model,
        tokenizer,
        render_prompts(records, prompt, tokenizer),
        prompt.template,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        samples=samples,
        temperature=temperature,
        progress=True,
    )
    return texts


def verified_traces(records: list[Mapping], completions: list[list[str]], provenance: Mapping) -> list[dict]:
    """One output row per record that has a trace whose answer equals the gold set (the first such trace)."""
    kept = []
    for record, texts in zip(records, completions):
        good = [t for t in texts if exact_match(parse_answer(t), record["answer"])]
        if good:
            kept.append(
                {
                    **record,
                    "trace": good[0],
                    "provenance": {**provenance, "accepted": len(good), "sampled": len(texts)},
                }
            )
    return kept


def provenance(teacher: str, samples: int, temperature: float, max_new_tokens: int) -> dict:
    return {"teacher": teacher, "samples": samples, "temperature": temperature, "max_new_tokens": max_new_tokens,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}  # fmt: skip
