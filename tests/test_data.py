"""Mixtures, manifests, frozen suites and datasets. Run: pytest tests/test_data.py"""

import dataclasses
import json
import re
from pathlib import Path

import pytest

from cftrain.data import (
    DATA_DIR,
    ID_FAMILIES,
    OOD_FAMILIES,
    SUITE_ITEMS,
    Source,
    build_mixture,
    load_suite,
    read_jsonl,
    sha256_file,
    suite_records,
    to_dataset,
    write_jsonl,
)
from cftrain.datacard import structures
from cftrain.problems.truth import solve
from cftrain.prompts import PromptConfig, answer_line, build_prompt, rationale
from cftrain.recipes import load_recipe

ROOT = Path(__file__).resolve().parent.parent


def test_mixture_has_manifest_and_no_shared_structure(tmp_path):
    manifest = build_mixture(
        [Source("if_else", 30, ["counterfactual"], seed=0)],
        [Source("if_else", 10, "all", seed=1), Source("while", 5, ["counterfactual"], seed=1)],
        tmp_path,
    )
    train, test = read_jsonl(tmp_path / "train.jsonl"), read_jsonl(tmp_path / "test.jsonl")
    assert manifest["train"]["counts"] == {"if_else/counterfactual": 30}
    assert manifest["test"]["counts"]["if_else/abduction"] == 10
    assert manifest["structure_overlap"] == 0
    assert not {r["meta"]["structure"] for r in train} & {r["meta"]["structure"] for r in test}
    assert not structures(train) & structures(test)  # recomputed from the programs
    assert json.loads((tmp_path / "manifest.json").read_text()) == manifest
    assert manifest["train"]["sha256"] == sha256_file(tmp_path / "train.jsonl")
    # The data card of each side, test against train, and each frozen suite's structures used by train.
    cards = manifest["card"]
    assert cards["train"]["records"] == 30 and cards["train"]["overlap"] is None
    assert cards["test"]["overlap"] == 0.0
    assert {(r["family"], r["variant"]) for r in cards["test"]["rows"]} >= {("if_else", "abduction")}
    assert set(manifest["suite_overlap"]) == set(ID_FAMILIES + OOD_FAMILIES)
    assert manifest["suite_overlap"]["if_else"]["records"] == 3 * SUITE_ITEMS


def test_mixture_refuses_a_test_source_sharing_structures_with_train(tmp_path):
    easy = {
        "x_max": 9,
        "r_max": 5,
        "min_branches": 2,
        "max_branches": 2,
        "depth": 0,
        "modulus_prob": 0.0,
        "set_valued": 0,
    }
    train = [Source("if_else", 20, ["counterfactual"], knobs={**easy, "simple": True})]
    # if_else_long is not trained on, so its test items take any structure; at 2 branches it is if_else.
    test = [Source("if_else_long", 20, ["counterfactual"], knobs={**easy, "simple": True})]
    with pytest.raises(ValueError, match=r"test source if_else_long: \d+ program structures .*split: test"):
        build_mixture(train, test, tmp_path / "b")
    test[0].knobs["split"] = "test"
    assert build_mixture(train, test, tmp_path / "c")["structure_overlap"] == 0


def test_source_validation():
    with pytest.raises(ValueError, match="unknown family"):
        Source("nope", 1)
    with pytest.raises(ValueError, match="n must be > 0"):
        Source("if_else", 0)
    with pytest.raises(ValueError, match="not offered"):
        Source("multi_r", 1, ["abduction"])
    with pytest.raises(ValueError, match="unknown knob"):
        Source("if_else", 1, knobs={"depthh": 2})
    with pytest.raises(ValueError, match=r"answer_only must be in \[0, 1\]"):
        Source("if_else", 1, answer_only=1.5)


def test_write_jsonl_is_atomic(tmp_path):
    path = tmp_path / "out.jsonl"

    def broken():
        yield {"a": 1}
        raise RuntimeError("generator died")

    with pytest.raises(RuntimeError):
        write_jsonl(broken(), path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("family", ID_FAMILIES + OOD_FAMILIES)
def test_frozen_suites_match_their_checksums_and_regenerate(family):
    manifest = json.loads((DATA_DIR / "MANIFEST.json").read_text())
    path = DATA_DIR / "suites" / f"{family}.jsonl"
    assert sha256_file(path) == manifest["files"][f"suites/{family}.jsonl"]["sha256"]
    lines = path.read_text().splitlines()
    # Regenerating the first items from code gives the same bytes (the full file is checked by `make data`).
    regenerated = [json.dumps(r, sort_keys=True) for r in suite_records(family, items=5)]
    assert lines[: len(regenerated)] == regenerated


def test_frozen_suites_hold_out_training_structures():
    """Under the canonical hash, recomputed from the suite programs (not their stored meta.structure)."""
    train = structures(Source("if_else", 300, ["counterfactual"]).records("train"))
    assert not train & structures(suite_records("if_else", items=30)), "the suite as the code regenerates it"
    assert not train & structures(load_suite("id")), "the frozen file"


def test_load_suite_subsets():
    records = load_suite("id", n=3, variants=["counterfactual", "abduction"])
    assert [(r["family"], r["variant"]) for r in records].count(("if_else", "counterfactual")) == 3
    assert {r["variant"] for r in records} == {"counterfactual", "abduction"}
    assert all(solve(r) == r["answer"] for r in records)
    with pytest.raises(ValueError, match="unknown suite"):
        load_suite("nope")


def test_prompts_and_dataset():
    records = load_suite("all", n=2)
    chat = to_dataset(records, PromptConfig("chat", system_prompt="Be exact."), with_rationale=True)
    assert chat[0]["prompt"][0] == {"role": "system", "content": "Be exact."}
    assert chat[0]["completion"][0]["role"] == "assistant"
    plain = to_dataset(records, PromptConfig("plain", scaffold="abduct-act-predict"))
    assert plain[0]["prompt"].startswith(records[0]["question"]) and "Abduction" in plain[0]["prompt"]
    assert plain["answer"] == [r["answer"] for r in records]
    with pytest.raises(ValueError, match="prompt.template must be one of plain, chat"):
        PromptConfig("alpaca")


def test_rationale_shape():
    r = load_suite("id", n=1, variants=["counterfactual"])[0]
    lines = rationale(r).splitlines()
    assert [line.split(":")[0] for line in lines[:3]] == ["Abduction", "Intervention", "Prediction"]
    # every run of the abduction is compared with the observation where it is computed: `f(2,4)=6==6`, `f(2,1)=3!=6`
    runs = re.findall(r"\)=(-?\d+)(==|!=)(-?\d+)", lines[0])
    assert len(runs) == 10, lines[0]  # r in 1..10
    observed = r["observation"]["output"]
    assert all(int(seen) == observed and (op == "==") == (int(y) == observed) for y, op, seen in runs), lines[0]
    assert build_prompt(r, PromptConfig("plain")) == r["question"] + "\n"


def test_prompt_tokens_are_a_prefix_of_prompt_plus_target_under_a_byte_level_bpe():
    """SFT tokenizes prompt + target, inference the prompt alone: both must agree on the prompt's tokens. A byte-level
    BPE (GPT-2's and SmolLM2's kind) that learned to merge blank lines spells a trailing "\\n\\n" as one token alone and
    as two before a word, which silently trained SmolLM2 on a context it never sees at inference."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    records = [r for v in ("counterfactual", "interventional", "abduction") for r in load_suite("id", 4, [v])]
    corpus = [r["question"] + "\n\n" + rationale(r) + "\n\nnext\n\n" for r in records] * 5
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=600, show_progress=False,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))  # fmt: skip
    assert len(bpe.encode("\n\n").ids) == 1  # the merge that caused it is learned
    for template in ("plain", "compact"):
        for r in records:
            prompt = build_prompt(r, PromptConfig(template))
            for target in (rationale(r), answer_line(r["answer"])):
                alone, joined = bpe.encode(prompt).ids, bpe.encode(prompt + target).ids
                assert joined[: len(alone)] == alone, (template, r["id"], prompt[-20:], target[:20])


def test_answer_only_share_is_stable_and_targets_the_answer_line():
    def records(share):
        return list(
            Source("if_else", 200, ["counterfactual", "interventional"], 4, answer_only=share).records("train")
        )

    half = records(0.5)
    flagged = {r["id"] for r in half if r.get("target") == "answer"}
    assert 0.4 < len(flagged) / len(half) < 0.6
    assert flagged == {r["id"] for r in records(0.5) if r.get("target") == "answer"}  # the same items every run
    assert flagged < {r["id"] for r in records(0.8) if r.get("target") == "answer"}  # a larger share only adds items
    assert not any("target" in r for r in records(0.0))
    completions = to_dataset(half, PromptConfig("compact"), with_rationale=True)["completion"]
    for record, completion in zip(half, completions):
        answer = "<answer>{" + ", ".join(map(str, record["answer"])) + "}</answer>"
        assert completion == (answer if record["id"] in flagged else rationale(record))


@pytest.mark.parametrize("recipe", sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "recipes").glob("*/*.yaml")
                                          if p.parent.name != "accelerate"))  # fmt: skip
def test_every_shipped_recipe_trains_on_no_structure_it_tests_on(recipe, tmp_path):
    """Train and test data of each recipe, and its training data against the frozen suites, share no structure
    under the canonical hash (each source capped at 300 items: the split is by structure, so the size is moot)."""
    data = load_recipe(ROOT / recipe).data
    cap = (
        [dataclasses.replace(s, n=min(s.n, 300)) for s in data.train],
        [dataclasses.replace(s, n=min(s.n, 300)) for s in data.test],
    )
    manifest = build_mixture(*cap, tmp_path)
    assert manifest["structure_overlap"] == 0
    assert all(v["structures_shared"] == 0 for v in manifest["suite_overlap"].values()), manifest["suite_overlap"]
