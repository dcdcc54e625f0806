"""`cftrain distill` keeps only verified teacher traces (against a real HTTP OpenAI-compatible endpoint on
loopback); `cftrain merge` folds an adapter into a full checkpoint with the same outputs.
Run: pytest tests/test_distill_merge.py"""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import torch

from cftrain.cli import main
from cftrain.data import read_jsonl
from cftrain.problems import generate, get_family
from cftrain.prompts import rationale


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
    kept = read_jsonl(out)
    expected = [r["id"] for r in records if r["observation"]["output"] % 2 == 0]
    assert [r["id"] for r in kept] == expected and expected
    assert all(r["trace"] == rationale(r) and r["provenance"]["teacher"] == url for r in kept)
    assert kept[0]["provenance"]["accepted"] == 2 and kept[0]["provenance"]["sampled"] == 2


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
