"""`cftrain distill`: sample a teacher on generated problems and keep only the traces the verifier accepts.

The output is a records `.jsonl` whose rows carry a `trace` (the verified completion) and `provenance` (teacher,
sampling settings, time); set it as a recipe's `data.train_path` and SFT trains on the traces instead of the
programmatic rationales. Teachers: any local folder / Hub id / `cftrain:` model through `transformers`, or an
OpenAI-compatible chat endpoint given by URL (`http://host:8000/v1`, e.g. a vLLM server), with the key in
`$OPENAI_API_KEY` when it needs one.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from collections.abc import Mapping

from cftrain.prompts import PromptConfig, build_prompt
from cftrain.rewards import exact_match, parse_answer


def _endpoint(
    url: str, model: str, messages: list[dict], samples: int, temperature: float, max_tokens: int
) -> list[str]:
    body = {"model": model, "messages": messages, "n": samples, "temperature": temperature, "max_tokens": max_tokens}
    request = urllib.request.Request(
        url.rstrip("/") + "/chat/completions",
        data=json.dumps(body).encode(),
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {os.environ.get('OPENAI_API_KEY', '')}",
        },
    )
    with urllib.request.urlopen(request, timeout=600) as response:
        return [choice["message"]["content"] or "" for choice in json.load(response)["choices"]]


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
) -> list[list[str]]:
    """`samples` completions per record from a URL endpoint or a transformers model."""
    if teacher.startswith(("http://", "https://")):
        chat = PromptConfig("chat", prompt.system_prompt, prompt.scaffold)
        return [
            _endpoint(teacher, endpoint_model, build_prompt(r, chat), samples, temperature, max_new_tokens)
            for r in records
        ]
    from cftrain.evaluate import generate, render_prompts
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
