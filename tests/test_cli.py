"""The CLI: byte-identical generation, one-line errors with exit code 2, no torch import for data commands.
Run: pytest tests/test_cli.py"""

import subprocess
import sys

import pytest

from cftrain.cli import main


def run(*args):
    return subprocess.run([sys.executable, "-m", "cftrain", *args], capture_output=True, text=True)


def test_generate_is_byte_identical(tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for out in (a, b):
        assert (
            main(["generate", "--family", "while", "--variant", "all", "--n", "5", "--seed", "3", "--out", str(out)])
            == 0
        )
    assert a.read_bytes() == b.read_bytes()
    assert len(a.read_text().splitlines()) == 15


@pytest.mark.parametrize(
    "args, message",
    [
        (["--family", "nope"], "unknown family 'nope'; families: if_else"),
        (["--family", "if_else", "--set", "bogus=1"], "unknown knob 'bogus'"),
        (["--family", "if_else", "--set", "r_min=9", "--set", "r_max=2"], "r_min <= r_max"),
        (["--family", "if_else", "--set", "x_max"], "expected knob=value"),
        (["--family", "multi_r", "--variant", "abduction"], "multi_r offers counterfactual, interventional"),
        (["--family", "if_else", "--n", "0"], "--n must be > 0"),
    ],
)
@pytest.mark.train
def test_bad_input_is_one_line_exit_2(tmp_path, args, message):
    out = tmp_path / "x.jsonl"
    argv = (
        ["generate", "--n", "2", "--out", str(out), *args]
        if "--n" not in args
        else ["generate", "--out", str(out), *args]
    )
    result = run(*argv)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.train
def test_unwritable_output(tmp_path):
    result = run("generate", "--family", "if_else", "--n", "2", "--out", str(tmp_path / "missing" / "x.jsonl"))
    assert result.returncode == 2 and "does not exist or is not writable" in result.stderr


def test_data_commands_do_not_import_torch(tmp_path):
    code = (
        "import sys; from cftrain.cli import main; "
        f"main(['generate', '--family', 'if_else', '--n', '3', '--out', r'{tmp_path / 'a.jsonl'}']); "
        "main(['families']); "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_build_data_and_families(tmp_path):
    result = run("build-data", "--train", "if_else:20:counterfactual", "--test", "while:5", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "manifest.json").exists()
    assert run("build-data", "--train", "if_else:x", "--out", str(tmp_path)).returncode == 2
    listing = run("families").stdout
    assert "math_word" in listing and "r_max=10" in listing
