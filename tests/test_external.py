"""External suites: loaders, answer reading, scoring, metrics and the CRUXEval-I sandbox.

Samples are written here in the benchmarks' formats; the real files are only used by the last test, when
CFTRAIN_EXTERNAL names the folder that holds cladder/ and cruxeval/ (skipped otherwise).
"""

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from conftest import ROOT, subprocess_env

from cftrain.evaluate import external_metrics
from cftrain.external import (
    SUITES,
    answer_content,
    load_external,
    parse_external,
    run_call,
    score_external,
    score_items,
)

LIMITS = {"cpu_seconds": 1, "wall_seconds": 3.0}

CLADDER = [
    {
        "question_id": 1,
        "desc_id": "alarm-mediation-det-counterfactual-model1-spec0-q0",
        "given_info": "We know that husband causes wife. husband or wife causes alarm.",
        "question": "Would the alarm ring if not husband instead of husband?",
        "answer": "no",
        "meta": {"story_id": "alarm", "rung": 3},
        "reasoning": {"end": "0"},
    },
    {"question_id": 2, "desc_id": "d2", "given_info": "X causes Y.", "question": "Would Y if X?", "answer": "yes"},
    {"question_id": 7, "desc_id": "d7", "given_info": "X causes Y.", "question": "Would Y if not X?", "answer": "no"},
]

CRUXEVAL = [
    {"code": "def f(nums):\n    return sorted(set(nums))", "input": "[3, 1, 3]", "output": "[1, 3]", "id": "s0"},
    {"code": "def f(s, n):\n    return s * n", "input": "'ab', 2", "output": "'abab'", "id": "sample_2"},
    {
        "code": "def f(d):\n    return {v: k for k, v in d.items()}",
        "input": "dict(a=1)",
        "output": "{1: 'a'}",
        "id": "s4",
    },
    {
        "code": "base = [1, 2]\ndef f(xs, p):\n    return tuple(filter(p, xs))",
        "input": "base[:], lambda x: x > 1",
        "output": "(2,)",
        "id": "sample_6",
    },
    {"code": "def f(x):\n    return x > 0", "input": "5", "output": "True", "id": "sample_8"},
]


@pytest.fixture
def files(tmp_path):
    cladder = tmp_path / "cladder.json"
    cladder.write_text(json.dumps(CLADDER))
    crux = tmp_path / "cruxeval.jsonl"
    crux.write_text("".join(json.dumps(row) + "\n" for row in CRUXEVAL))
    return {"cladder": cladder, "cruxeval-o": crux, "cruxeval-i": crux}


def answer(text: str) -> str:
    return f"Let me think.\n<answer>{text}</answer>"


def test_parse_external():
    assert parse_external("cladder=/x/c.json") == ("cladder", "/x/c.json")
    assert parse_external("cruxeval-i=hf:cruxeval-org/cruxeval") == ("cruxeval-i", "hf:cruxeval-org/cruxeval")
    assert parse_external("id") is None and parse_external("data/suite.jsonl") is None
    assert parse_external("other=thing") is None
    with pytest.raises(ValueError, match="cladder="):
        parse_external("cladder=")


def test_loaders(files):
    cladder = load_external("cladder", files["cladder"])
    assert [item["id"] for item in cladder] == ["cladder/1", "cladder/2", "cladder/7"]
    assert cladder[0]["gold"] == "no" and cladder[0]["suite"] == "cladder"
    assert cladder[0]["prompt_text"].startswith(
        "We know that husband causes wife. husband or wife causes alarm. Would"
    )
    assert "<answer>yes</answer> or <answer>no</answer>" in cladder[0]["question"]
    out = load_external("cruxeval-o", files["cruxeval-o"])
    assert out[1]["id"] == "cruxeval-o/sample_2" and out[1]["gold"] == "'abab'"
    assert "What does f('ab', 2) return?" in out[1]["prompt_text"]
    inp = load_external("cruxeval-i", files["cruxeval-i"])
    assert inp[1]["gold"] == "'ab', 2" and "f(...) == 'abab'" in inp[1]["prompt_text"]
    assert inp[1]["prompt_text"].startswith(CRUXEVAL[1]["code"])


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("cladder", None, r"cladder.json: no such file"),
        ("cladder", "{not json", r"cladder.json: not JSON"),
        ("cladder", '{"a": 1}', r"expected a JSON list"),
        ("cladder", json.dumps([CLADDER[1], {**CLADDER[2], "answer": None}]), r"row 1: field 'answer' must be str"),
        ("cladder", json.dumps([{k: v for k, v in CLADDER[1].items() if k != "question"}]), r"row 0: missing field"),
        ("cladder", json.dumps([{**CLADDER[1], "answer": "Yes"}]), r"row 0: field 'answer' must be 'yes' or 'no'"),
        ("cruxeval-o", json.dumps(CRUXEVAL[0]) + "\n{oops\n", r"cruxeval.jsonl: line 2: not JSON"),
        ("cruxeval-i", "\n" + json.dumps({**CRUXEVAL[0], "output": "f(1)"}), r"line 2: field 'output' is not"),
        ("cruxeval-o", json.dumps({k: v for k, v in CRUXEVAL[0].items() if k != "id"}), r"line 1: missing field 'id'"),
        ("cruxeval-o", "[1]\n", r"line 1: expected an object"),
    ],
)
def test_bad_files(tmp_path, name, content, message):
    path = tmp_path / ("cladder.json" if name == "cladder" else "cruxeval.jsonl")
    if content is not None:
        path.write_text(content)
    with pytest.raises(ValueError, match=message) as info:
        load_external(name, path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_hub_failure_is_one_line(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"^hf:no-such-org/no-such-set: cannot load from the Hub: ") as info:
        load_external("cruxeval-o", "hf:no-such-org/no-such-set")
    assert "\n" not in str(info.value) and time.perf_counter() - start < 30


def test_gold_scores_one_and_wrong_scores_zero(files):
    items = {name: load_external(name, path) for name, path in files.items()}
    wrong = {"cladder": lambda gold: {"yes": "no", "no": "yes"}[gold], "cruxeval-o": lambda gold: "0"}
    wrong["cruxeval-i"] = lambda gold: "[7, 7, 7], 0"  # a TypeError or a wrong value for every sample function
    for name, suite in items.items():
        for item in suite:
            gold = score_external(item, answer(item["gold"]), **LIMITS)
            assert gold == {"answer": gold["answer"], "em": 1.0, "format": 1.0, "error": None}, item["id"]
            assert score_external(item, answer(wrong[name](item["gold"])), **LIMITS)["em"] == 0.0, item["id"]


def test_reading_answers(files):
    cladder = load_external("cladder", files["cladder"])[1]  # gold yes
    for text, em, fmt in [
        ("<answer>Yes.</answer>", 1, 1),
        ("<answer> **YES** </answer>", 1, 1),
        ("<answer>The answer is yes, it would.</answer>", 1, 1),
        ("<answer>no</answer> wait <answer>yes</answer>", 1, 0),  # the last answer counts; two blocks: bad format
        ("<answer>yes or no</answer>", 0, 0),
        ("<answer>yesterday</answer>", 0, 0),
        ("yes", 0, 0),  # no tag, no answer
        ("<answer>" + "yes " * 5000 + "</answer>", 0, 0),  # over 10,000 characters
    ]:
        scores = score_external(cladder, text)
        assert (scores["em"], scores["format"]) == (em, fmt), text
    assert score_external(cladder, [{"role": "assistant", "content": "<answer>yes</answer>"}])["em"] == 1.0
    for junk in ([], None, 3, [{"role": "assistant"}]):
        assert score_external(cladder, junk)["em"] == 0.0

    out = load_external("cruxeval-o", files["cruxeval-o"])
    assert score_external(out[4], answer("1"))["em"] == 1.0  # True == 1, as CRUXEval's `assert` sees it
    assert score_external(out[1], answer("```python\n'abab'\n```"))["em"] == 1.0
    assert score_external(out[1], answer("'ab' * 2")) == {"answer": None, "em": 0.0, "format": 0.0, "error": None}
    assert score_external(out[0], answer("[" * 300 + "]" * 300))["em"] == 0.0
    assert score_external(out[0], answer("9" * 5000))["format"] == 0.0
    assert answer_content("<answer> `x` </answer>") == "x" and answer_content("</answer><answer>") is None

    inp = load_external("cruxeval-i", files["cruxeval-i"])
    assert score_external(inp[1], answer("f('abab', 1)"), **LIMITS)["em"] == 1.0  # CRUXEval's own whole-call form
    assert score_external(inp[1], answer("'a', 4"), **LIMITS)["em"] == 0.0  # runs, returns 'aaaa'
    assert score_external(inp[1], answer("'ab', 2)"), **LIMITS)["format"] == 0.0
    assert score_external(inp[1], answer("g('ab', 2)"), **LIMITS)["format"] == 1.0  # the arguments of f(g(...))


def test_hostile_predictions_score_zero(files):
    item = load_external("cruxeval-i", files["cruxeval-i"])[0]  # f(nums) == [1, 3]
    pwned = Path(f"/tmp/cftrain_pwned_{uuid.uuid4().hex}")
    hostile = [
        "any(x for x in iter(int, 1))",  # loops forever: CPU limit
        "(lambda: [0 for x in iter(int, 1)])()",  # loops and grows: CPU or memory limit
        "[0] * 10**10",  # 80 GB: address-space limit
        "__import__('os').fork()",  # refused: a name starting with _
        "__import__('socket').create_connection(('127.0.0.1', 9))",
        "[].__class__.__base__.__subclasses__()",
        f"open('{pwned}', 'w')",  # not among the safe builtins
        "type('A', (), {'__eq__': lambda s, o: True})()",  # would equal anything
        "exec('import os')",
        "[(g := (g.gi_frame.f_back.f_globals for x in [1]))]",  # frames lead to f's globals: refused
        "[1, 3], *(lambda: 1)()",  # a TypeError inside the call
    ]
    # each hostile answer is followed by the gold one: the sandbox must still work after it
    completions = [answer(text) for prediction in hostile for text in (prediction, item["gold"])]
    start = time.perf_counter()
    rows = score_items([item], [completions], **LIMITS)
    assert time.perf_counter() - start < LIMITS["wall_seconds"] + 3
    assert [row["em"] for row in rows] == [0.0, 1.0] * len(hostile), [(r["answer"], r["error"]) for r in rows]
    assert not pwned.exists()


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("import os\n    return os.fork()", "PermissionError"),
        ("import os\n    return os.system('true')", "PermissionError"),
        ("import subprocess\n    return subprocess.run(['true'])", "ModuleNotFoundError"),
        ("import socket\n    return socket.create_connection(('127.0.0.1', 9))", "ModuleNotFoundError"),
        ("return open(PWNED, 'w')", "PermissionError"),
        ("import os\n    return os.remove(PWNED)", "PermissionError"),
        ('print(\'{"em": true, "error": null}\')\n    return 0', None),  # stdout cannot fake the verdict
        ("class A:\n        def __eq__(self, other): return True\n    return A()", None),  # not a plain value
        ("import time\n    time.sleep(60)", "timeout"),  # wall-clock limit
    ],
)
def test_guards_hold_for_the_function_code(body, error):
    """The function's code runs with full builtins: the runner's guards and limits are what stop it."""
    pwned = Path(f"/tmp/cftrain_pwned_{uuid.uuid4().hex}")
    if "remove" in body:
        pwned.write_text("keep me")
    code = f"PWNED = {str(pwned)!r}\ndef f(x):\n    {body}"
    start = time.perf_counter()
    em, message = run_call(code, "f(1)", "[1]", cpu_seconds=1, wall_seconds=1.0)
    assert em is False and time.perf_counter() - start < 3
    assert (message or "").startswith(error) if error else message is None
    assert pwned.exists() == ("remove" in body)
    pwned.unlink(missing_ok=True)


@pytest.mark.train
def test_killing_the_parent_is_blocked():
    """Run in a sacrificial interpreter: if the guard ever fails, that process dies, not pytest."""
    script = (
        "from cftrain.external import run_call\n"
        "code = 'import os\\ndef f(x):\\n    os.kill(os.getppid(), 9)\\n    os.killpg(os.getpgid(os.getppid()), 9)'\n"
        "print(run_call(code, 'f(1)', '1', cpu_seconds=1, wall_seconds=2.0))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=20,
                          env=subprocess_env(), cwd=ROOT)  # fmt: skip
    assert done.returncode == 0 and done.stdout.startswith("(False, 'PermissionError"), done.stdout + done.stderr


def test_score_items_and_metrics(files):
    items = [item for name, path in files.items() for item in load_external(name, path)]
    completions = [[answer(item["gold"]), "no answer"] for item in items]
    start = time.perf_counter()
    rows = score_items(items, completions, **LIMITS)
    crux_i = sum(item["suite"] == "cruxeval-i" for item in items)
    per_call = (time.perf_counter() - start) / crux_i
    print(f"\nCRUXEval-I: {per_call * 1000:.0f} ms per checked call (2 workers, whole batch)")
    assert per_call < 1.0
    assert [(r["id"], r["sample"]) for r in rows[:2]] == [("cladder/1", 0), ("cladder/1", 1)]
    assert [r["em"] for r in rows] == [1.0, 0.0] * len(items)
    metrics = external_metrics(rows)
    assert metrics["cladder/n"] == 3 and metrics["cladder/em"] == 0.5 and metrics["cladder/format"] == 0.5
    assert metrics["cladder/pass@2"] == 1.0 and metrics["cladder/constant_em"] == pytest.approx(2 / 3)
    assert metrics["cruxeval-o/constant_em"] == pytest.approx(1 / 5) and "cruxeval-i/constant_em" not in metrics
    assert metrics["cruxeval-i/n"] == 5 and metrics["cruxeval-i/em"] == 0.5
    with pytest.raises(ValueError, match="items"):
        score_items(items, completions[:-1])


REAL = os.environ.get("CFTRAIN_EXTERNAL")


@pytest.mark.skipif(not REAL, reason="set CFTRAIN_EXTERNAL to the folder holding cladder/ and cruxeval/")
def test_real_gold_answers_score_100():
    folder = Path(REAL)
    suites = {
        "cladder": folder / "cladder" / "cladder-det-counterfactual.json",
        "cruxeval-o": folder / "cruxeval" / "cruxeval.jsonl",
        "cruxeval-i": folder / "cruxeval" / "cruxeval.jsonl",
    }
    for name, path in suites.items():
        items = load_external(name, path)
        rows = score_items(items, [[answer(item["gold"])] for item in items])
        failed = [(r["id"], r["error"]) for r in rows if r["em"] != 1.0 or r["format"] != 1.0]
        assert not failed, failed[:5]
    assert external_metrics(rows)["cruxeval-i/n"] == len(items)


@pytest.mark.train
def test_eval_and_report_show_external_suites(files, tmp_path):
    """`cftrain eval --suite if_else cladder=PATH cruxeval-i=PATH` scores both kinds; the report has its own table."""
    from cftrain.cli import main
    from cftrain.data import read_jsonl
    from cftrain.models import resolve_model

    out = tmp_path / "eval"
    specs = [f"{name}={path}" for name, path in files.items()]
    argv = ["eval", "--model", resolve_model("cftrain:micro"), "--suite", "if_else", *specs, "--n", "2"]
    assert main([*argv, "--variants", "counterfactual", "--max-new-tokens", "4", "--out", str(out)]) == 0
    result = json.loads((out / "metrics.json").read_text())
    rows = read_jsonl(out / "external_samples.jsonl")
    assert len(rows) == 3 * 2 and {r["suite"] for r in rows} == set(SUITES)
    assert all(r["prompt"] and isinstance(r["len"], int) for r in rows)
    assert external_metrics(rows) == result["external"]["metrics"]
    assert set(result["external"]["suites"]) == set(SUITES) and result["metrics"]["if_else/counterfactual/n"] == 2
    assert main(["report", str(out), "--out", str(tmp_path / "report")]) == 0
    report = (tmp_path / "report" / "report.md").read_text()
    assert "## External benchmarks" in report and "| *constant answer* | 50.0 |" in report
