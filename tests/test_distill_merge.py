"""`cftrain distill` keeps only verified teacher traces (against a real HTTP OpenAI-compatible endpoint on
loopback); `cftrain merge` folds an adapter into a full checkpoint with the same outputs.
Run: pytest tests/test_distill_merge.py"""

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import torch

import cftrain.distill
from cftrain.cli import main
from cftrain.distill import check_endpoint, sample_teacher
from cftrain.problems import generate, get_family
from cftrain.problems.records import read_records
from cftrain.prompts import PromptConfig, rationale


@pytest.fixture
def teacher_server():
    """A chat-completions endpoint that answers correctly for even observed outputs and wrongly otherwise."""
    records = {r["question"]: r for r in generate(get_family("if_else"), "counterfactual", 6, seed=0)}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            record = records[body["messages"][-1]["content"]]
            good = record["observation"]["output"] % 2 == 0
            text = rationale(record) if good else "Abduction: r=1\n<answer>{-999}</answer>"
            payload = json.dumps({"choices": [{"message": {"content": text}}] * body["n"]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/v1", list(records.values())
    server.shutdown()


def test_distill_keeps_only_verified_traces(tmp_path, teacher_server):
    url, records = teacher_server
    out = tmp_path / "traces.jsonl"
    argv = ["distill", "--teacher", url, "--family", "if_else", "--n", "6", "--samples", "2", "--out", str(out)]
    assert main(argv) == 0
    kept = read_records(out)  # the traces file passes the record gate, so it can be a recipe's data.train_path
    expected = [r["id"] for r in records if r["observation"]["output"] % 2 == 0]
    assert [r["id"] for r in kept] == expected and expected
    assert all(r["trace"] == rationale(r) and r["provenance"]["teacher"] == url for r in kept)
    assert kept[0]["provenance"]["accepted"] == 2 and kept[0]["provenance"]["sampled"] == 2


def serve(reply: bytes, status: int = 200, headers: dict | None = None):
    """A loopback HTTP server answering every POST with `reply`; returns (url, server)."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}/v1", server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed on exit: nothing listens there


RECORDS = list(generate(get_family("if_else"), "counterfactual", 1, seed=0))


def one_line_error(url: str, **kwargs) -> str:
    with pytest.raises(ValueError) as info:
        sample_teacher(url, RECORDS, PromptConfig("chat"), samples=1, timeout=5, **kwargs)
    message = str(info.value)
    assert "\n" not in message and len(message) < 400, message
    return message


@pytest.mark.parametrize(
    "url", ["http://example.com/v1", "http://10.0.0.1:8000/v1", "http://localhost.example.com/v1", "http://[::2]/v1"]
)
def test_plain_http_to_a_remote_host_is_refused_before_connecting(monkeypatch, url):
    def no_connection(*args, **kwargs):
        raise AssertionError("connected")

    monkeypatch.setattr(cftrain.distill._OPENER, "open", no_connection)
    assert "non-loopback" in one_line_error(url) and url in one_line_error(url)
    check_endpoint(url, allow_insecure=True)  # forced: allowed


@pytest.mark.parametrize("url", ["https://example.com/v1", "http://127.0.0.1:8000/v1", "http://127.1.2.3/v1",
                                 "http://localhost:8000/v1", "http://[::1]:8000/v1"])  # fmt: skip
def test_https_and_loopback_are_allowed(url):
    check_endpoint(url)


def test_bad_urls_are_one_line_errors():
    for url in ("http://[::1/v1", "http://127.0.0.1:99999/v1", "http:///v1"):
        with pytest.raises(ValueError, match="^teacher http"):
            check_endpoint(url)


def test_connection_refused_names_the_url(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    url = f"http://user:pw@127.0.0.1:{free_port()}/v1"
    message = one_line_error(url)
    assert message.startswith(f"teacher http://127.0.0.1:{url.rsplit(':', 1)[1]}: cannot connect")
    assert "pw" not in message and "sk-secret" not in message


@pytest.mark.parametrize(
    ("reply", "status", "words"),
    [
        (b"not json", 200, "not a chat-completions reply"),
        (b'{"choices": [{"text": "x"}]}', 200, "not a chat-completions reply"),
        (b'{"choices": [{"message": {"content": ["x"]}}]}', 200, "content is not text"),
        (b"{}", 500, "HTTP 500"),
        (b"", 302, "HTTP 302"),  # a redirect is not followed: it could carry the key elsewhere
    ],
)
def test_a_failing_endpoint_is_a_one_line_error(reply, status, words):
    url, server = serve(reply, status, {"Location": "http://example.com/steal"} if status == 302 else None)
    try:
        message = one_line_error(url)
    finally:
        server.shutdown()
    assert message.startswith(f"teacher {url}: ") and words in message, message


def test_cli_refuses_plain_http_with_exit_2(tmp_path, capsys):
    argv = ["distill", "--teacher", "http://example.com/v1", "--n", "1", "--out", str(tmp_path / "t.jsonl")]
    assert main(argv) == 2
    assert "--allow-insecure-http" in capsys.readouterr().err
    assert not (tmp_path / "t.jsonl").exists()


@pytest.mark.train
def test_merge_gives_the_same_logits(tmp_path):
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    from cftrain.models import load_tokenizer, resolve_model

    base_path = resolve_model("cftrain:micro")
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(base_path), LoraConfig(r=4, target_modules="all-linear")
    )
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)  # a trained-looking adapter: merge must matter
    model.save_pretrained(tmp_path / "adapter")
    load_tokenizer(base_path).save_pretrained(tmp_path / "adapter")
    assert main(["merge", "--adapter", str(tmp_path / "adapter"), "--out", str(tmp_path / "merged")]) == 0
    ids = load_tokenizer(base_path)("def f(x, r): return x", return_tensors="pt")["input_ids"]
    base = AutoModelForCausalLM.from_pretrained(base_path)
    adapted = PeftModel.from_pretrained(base, tmp_path / "adapter").eval()
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged").eval()
    with torch.no_grad():
        assert torch.allclose(adapted(ids).logits, merged(ids).logits, atol=1e-4)
        assert not torch.allclose(AutoModelForCausalLM.from_pretrained(base_path)(ids).logits, merged(ids).logits)
    assert main(["merge", "--adapter", str(tmp_path), "--out", str(tmp_path / "m2")]) == 2
