"""The record gate: schema, bounds, sandbox and recomputed answers, checked wherever records are read from a file.

Fast and offline: `python -m pytest tests/test_records.py -q`.
"""

import copy
import json
import time
from pathlib import Path

import pytest

from cftrain.data import DATA_DIR, ID_FAMILIES, OOD_FAMILIES, load_suite, read_jsonl
from cftrain.evaluate import load_records
from cftrain.problems.records import MAX_LINE_BYTES, check_record, read_records
from cftrain.recipes import load_recipe
from cftrain.runs import prepare_run

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def good() -> dict:
    """A counterfactual record of the frozen if_else suite (with a multi-element answer)."""
    for line in (DATA_DIR / "suites" / "if_else.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["variant"] == "counterfactual" and len(record["answer"]) > 1:
            return record
    raise AssertionError("no counterfactual record with a set answer")


def write_lines(path: Path, records: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def reject(record, *words: str) -> str:
    """check_record must raise one bounded line that names the place and every word; returns the message."""
    start = time.perf_counter()
    with pytest.raises(ValueError) as info:
        check_record(record, "s.jsonl:7")
    assert time.perf_counter() - start < 0.5
    message = str(info.value)
    assert message.startswith("s.jsonl:7: ") and "\n" not in message and len(message) < 600, message
    for word in words:
        assert word in message, message
    return message


def changed(record: dict, path: str, value) -> dict:
    """A deep copy of `record` with the dotted field set to `value` (a missing-field sentinel deletes it)."""
    out = copy.deepcopy(record)
    *parents, last = path.split(".")
    node = out
    for part in parents:
        node = node[part]
    if value is MISSING:
        del node[last]
    else:
        node[last] = value
    return out


MISSING = object()


def test_every_frozen_suite_loads_checked_and_fast():
    start = time.perf_counter()
    records = load_suite("all")
    assert time.perf_counter() - start < 5  # about 1 s cold on one core, ~0.2 s with the programs cached
    files = [DATA_DIR / "suites" / f"{family}.jsonl" for family in ID_FAMILIES + OOD_FAMILIES]
    assert len(records) == sum(len(f.read_text().splitlines()) for f in files)


def test_a_tampered_answer_is_rejected_at_load(tmp_path, good):
    tampered = changed(good, "answer", good["answer"][:1])
    path = write_lines(tmp_path / "suite.jsonl", [good, tampered])
    for load in (read_records, lambda p: load_suite(str(p)), lambda p: load_records([str(p)], None, None)):
        with pytest.raises(ValueError, match=r"suite\.jsonl:2: field answer: expected the program's answer \["):
            load(path)


BAD_FIELDS = [
    ("answer", MISSING, ["field answer", "missing"]),
    ("program", MISSING, ["field program", "missing"]),
    ("observation.output", MISSING, ["field observation"]),
    ("answer", ["3"], ["field answer[0]", "an integer", 'a string "3"']),
    ("answer", [True], ["field answer[0]", "an integer", "a bool true"]),
    ("answer", [3.0], ["field answer[0]", "a float"]),
    ("answer", 3, ["field answer", "a list"]),
    ("answer", [7, 3], ["field answer", "sorted"]),
    ("observation.inputs", [1, 2], ["field observation.inputs", "an object", "a list of 2 items"]),
    ("observation.inputs.x", "4", ["field observation.inputs.x", "an integer"]),
    ("observation.inputs.x", 10**15, ["field observation.inputs.x", "within"]),
    ("observation.inputs.x", 10**400, ["field observation.inputs.x", "more than 80 digits"]),
    ("observation.output", False, ["field observation.output", "a bool"]),
    ("intervention", {"y": 1}, ["field intervention", "observation.inputs"]),
    ("revealed", {"r": 3}, ["field revealed", "{}"]),
    ("latent_domain", {"r": [0, 300_000_000]}, ["field latent_domain", "at most 1000 "]),
    ("latent_domain", {"r": [5, 1]}, ["field latent_domain.r", "low <= high"]),
    ("latent_domain", {"r": [1, 2, 3]}, ["field latent_domain.r", "pair"]),
    ("latent_domain", {}, ["field latent_domain", "1 to"]),
    ("family", "nope", ["field family", "if_else"]),
    ("variant", "abduction!", ["field variant", "counterfactual"]),
    ("entry", "__import__", ["field entry", "Python name"]),
    ("question", "x" * 10_000_000, ["field question", "at most", "10000000 chars"]),
    ("program", "def f(x, r):\n    while 1:\n        pass\n    return 1", ["field program"]),
    (
        "program",
        "def f(x, r):\n    def g(n):\n        return g(n - 1) + g(n - 1) if n else 1\n    return g(60)",
        ["field program"],
    ),
    ("program", "import os", ["field program", "sandbox"]),
    ("program", "def f(x, r):\n    return " + "+".join(["x"] * 5000), ["field program"]),
    ("program", "def f(x, y, r):\n    return x", ["field program", "parameters"]),
    ("target", "rationale", ["field target", "answer"]),
    ("traec", "typo", ["field traec", "unknown field"]),
]


@pytest.mark.parametrize(
    ("field", "value", "words"), BAD_FIELDS, ids=[f"{i}-{field}" for i, (field, _, _) in enumerate(BAD_FIELDS)]
)
def test_bad_fields_are_named(good, field, value, words):
    reject(changed(good, field, value), *words)


def test_an_unexplained_observation_is_rejected(good):
    reject(changed(good, "observation.output", 10**9), "field observation.output", "1000000000")


def test_abduction_needs_one_hidden_variable(good):
    record = {**good, "variant": "abduction", "latent_domain": {"r": [1, 10], "s": [1, 10]}}
    reject(record, "field latent_domain", "exactly one")


def test_interventional_revealed_must_be_in_domain(good):
    record = {**changed(good, "variant", "interventional"), "revealed": {"r": 10**6}}
    reject(record, "field revealed.r", "latent_domain")


def test_a_non_object_line_is_rejected(tmp_path):
    with pytest.raises(ValueError, match=r"x\.jsonl:1: expected a JSON object \(a record\), got a list of 3 items"):
        read_records(write_lines(tmp_path / "x.jsonl", ["[1, 2, 3]"]))


def test_bad_json_is_named_by_line(tmp_path, good):
    path = write_lines(tmp_path / "x.jsonl", [good, "", good, '{"id": "oops"'])
    with pytest.raises(ValueError, match=r"x\.jsonl:4: not valid JSON \(.* at column \d+\)$"):
        read_records(path)
    with pytest.raises(ValueError, match=r"x\.jsonl:4: not valid JSON"):
        read_jsonl(path)
    write_lines(path, ["[" * 100_000])
    with pytest.raises(ValueError, match=r"x\.jsonl:1: not valid JSON"):
        read_records(path)


def test_a_huge_line_is_rejected_without_reading_it_all(tmp_path, good):
    path = tmp_path / "big.jsonl"
    with path.open("w") as f:
        f.write(json.dumps(good) + "\n")
        f.write(json.dumps({**good, "question": "x" * (5 * MAX_LINE_BYTES)}) + "\n")
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"big\.jsonl:2: line longer than 1000000 bytes$"):
        read_records(path)
    assert time.perf_counter() - start < 0.5


def test_missing_file_directory_and_non_utf8(tmp_path):
    with pytest.raises(ValueError, match=r"nope\.jsonl: no such file$"):
        read_records(tmp_path / "nope.jsonl")
    with pytest.raises(ValueError, match=r": not a file$"):
        read_records(tmp_path)
    (tmp_path / "bin.jsonl").write_bytes(b'{"id": "\xff"}\n')
    with pytest.raises(ValueError, match=r"bin\.jsonl:1: not UTF-8 text"):
        read_records(tmp_path / "bin.jsonl")


def test_a_tampered_training_file_fails_before_the_run_folder_is_written(tmp_path, good):
    path = write_lines(tmp_path / "train.jsonl", [good, changed(good, "answer", [-1])])
    out = tmp_path / "run"
    recipe = load_recipe(
        ROOT / "recipes" / "tiny" / "sft.yaml",
        {"data.train": [], "data.train_path": str(path), "output_dir": str(out)},
    )
    with pytest.raises(ValueError, match=r"train\.jsonl:2: field answer"):
        prepare_run(recipe)
    assert not out.exists()
