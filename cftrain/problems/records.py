"""The record gate: every record read from a file is checked here before eval, training or distill trust it.

`check_record` checks the schema (required fields, JSON types, bounded sizes), loads the program in the
sandbox (`cftrain.execution.load_program`) and recomputes the answer (`cftrain.problems.truth.solve`): a record
whose stored `answer` is not what its program gives is refused, so a tampered answer can neither score a wrong
completion as correct in eval nor become a GRPO reward. `read_records` reads a records `.jsonl` with bounded
lines and checks each record. Every failure is one `ValueError` line: `{file}:{line}: field {name}: expected
..., got ...`, with the offending value shortened.

Bounds (a generated record is far below each): ints within the sandbox's MAX_ABS, a program of at most
MAX_PROGRAM_CHARS, a question or trace of at most MAX_TEXT_CHARS, at most MAX_DOMAIN hidden assignments (solve
runs the program once or twice per assignment, each run capped at MAX_STEPS loop steps), a line of at most
MAX_LINE_BYTES. Fields beyond the schema are refused, so a misspelt optional field (`traec`) is not ignored.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from cftrain.execution import MAX_ABS, ExecutionError, UnsafeProgram, load_program
from cftrain.problems.registry import FAMILIES
from cftrain.problems.truth import solve

MAX_LINE_BYTES = 1_000_000
MAX_PROGRAM_CHARS = 32_000
MAX_TEXT_CHARS = 64_000
MAX_ID_CHARS = 512
MAX_NAME_CHARS = 64
MAX_NAMES = 32
MAX_DOMAIN = 1_000  # the families use at most 64; solve runs the program twice per assignment
MAX_ANSWER = MAX_DOMAIN
_SHOW_CHARS = 80

REQUIRED = (
    "id", "family", "variant", "program", "entry", "latent_domain", "observation", "intervention", "revealed",
    "answer", "question",
)  # fmt: skip
# meta: generator bookkeeping; target: "answer" marks an answer-only SFT record; trace/provenance: from distill.
OPTIONAL = ("meta", "target", "trace", "provenance")
TARGETS = ("answer",)


def _show(value: Any) -> str:
    """A short description of a JSON value for an error message (never the whole of a big value)."""
    if isinstance(value, dict):
        return f"an object with {len(value)} keys"
    if isinstance(value, list):
        return f"a list of {len(value)} items"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**_SHOW_CHARS:
        return "an integer of more than 80 digits"
    kind = {bool: "a bool", int: "an int", float: "a float", str: "a string", type(None): "null"}[type(value)]
    text = json.dumps(value[: _SHOW_CHARS + 1] if isinstance(value, str) else value)
    if len(text) > _SHOW_CHARS:
        text = text[:_SHOW_CHARS] + "..."
    return f"{kind} {text}" + (f" ({len(value)} chars)" if isinstance(value, str) and len(value) > 40 else "")


class _Checker:
    """Field checks that raise one-line ValueErrors prefixed with `where`."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, name: str, expected: str, got: str) -> None:
        raise ValueError(f"{self.where}: field {name}: expected {expected}, got {got}")

    def integer(self, name: str, value: Any) -> int:
        if type(value) is not int:  # bool is a subclass of int, and True is not a number here
            self.fail(name, "an integer", _show(value))
        if abs(value) > MAX_ABS:
            self.fail(name, f"an integer within +-{MAX_ABS:.0e}", _show(value))
        return value

    def text(self, name: str, value: Any, limit: int) -> str:
        if not isinstance(value, str):
            self.fail(name, "a string", _show(value))
        if len(value) > limit:
            self.fail(name, f"a string of at most {limit} chars", f"{len(value)} chars")
        return value

    def obj(self, name: str, value: Any) -> dict:
        if not isinstance(value, dict):
            self.fail(name, "an object", _show(value))
        return value

    def ident(self, name: str, value: Any) -> str:
        self.text(name, value, MAX_NAME_CHARS)
        if not value.isidentifier() or not value.isascii() or value.startswith("_"):
            self.fail(name, "a Python name (ASCII, not starting with _)", _show(value))
        return value

    def int_map(self, name: str, value: Any) -> dict[str, int]:
        """An object of variable name -> integer."""
        self.obj(name, value)
        if len(value) > MAX_NAMES:
            self.fail(name, f"at most {MAX_NAMES} names", _show(value))
        for key, item in value.items():
            self.ident(f"{name} key", key)
            self.integer(f"{name}.{key}", item)
        return value


def check_record(record: Any, where: str) -> dict:
    """Return `record` when its schema holds and its `answer` is what its program gives; else raise ValueError.

    `where` prefixes the message, e.g. "suite.jsonl:12". Checks run cheapest first: types and bounds, then the
    sandbox's allow-list, then execution.
    """
    c = _Checker(where)
    if not isinstance(record, dict):
        raise ValueError(f"{where}: expected a JSON object (a record), got {_show(record)}")
    for key in record:
        if key not in REQUIRED + OPTIONAL:
            c.fail(_shorten(key), f"only the record fields {', '.join(REQUIRED + OPTIONAL)}", "an unknown field")
    for key in REQUIRED:
        if key not in record:
            c.fail(key, "a value", "none (the field is missing)")

    c.text("id", record["id"], MAX_ID_CHARS)
    family = c.text("family", record["family"], MAX_NAME_CHARS)
    if family not in FAMILIES:
        c.fail("family", f"one of {', '.join(FAMILIES)}", _show(family))
    variants = FAMILIES[family].variants
    if c.text("variant", record["variant"], MAX_NAME_CHARS) not in variants:
        c.fail("variant", f"one of {', '.join(variants)} for family {family}", _show(record["variant"]))
    variant = record["variant"]
    entry = c.ident("entry", record["entry"])
    source = c.text("program", record["program"], MAX_PROGRAM_CHARS)
    c.text("question", record["question"], MAX_TEXT_CHARS)

    latents = _check_domain(c, record["latent_domain"], variant)
    observation = c.obj("observation", record["observation"])
    if set(observation) != {"inputs", "output"}:
        c.fail("observation", 'an object with keys "inputs" and "output"', f"keys {_shorten(', '.join(observation))}")
    inputs = c.int_map("observation.inputs", observation["inputs"])
    c.integer("observation.output", observation["output"])
    intervention = c.int_map("intervention", record["intervention"])
    if not set(intervention) <= set(inputs):
        extra = ", ".join(sorted(set(intervention) - set(inputs)))
        c.fail("intervention", "only names of observation.inputs", _shorten(extra))
    revealed = c.int_map("revealed", record["revealed"])
    if variant == "interventional":
        if set(revealed) != set(latents):
            c.fail("revealed", f"a value for each hidden variable ({', '.join(latents)})", _show(revealed))
        for name, value in revealed.items():
            if not latents[name][0] <= value <= latents[name][1]:
                c.fail(f"revealed.{name}", f"a value in latent_domain {latents[name]}", _show(value))
    elif revealed:
        c.fail("revealed", f"{{}} for the {variant} variant (the hidden values are not given)", _show(revealed))
    answer = record["answer"]
    if not isinstance(answer, list) or len(answer) > MAX_ANSWER:
        c.fail("answer", f"a list of at most {MAX_ANSWER} integers", _show(answer))
    for i, value in enumerate(answer):
        c.integer(f"answer[{i}]", value)
    if answer != sorted(set(answer)):
        c.fail("answer", "sorted integers without duplicates", _show_list(answer))
    _check_optional(c, record)

    try:
        program = load_program(source, entry)
    except UnsafeProgram as e:
        c.fail("program", "a function the sandbox accepts", _shorten(str(e)))
    if set(program.params) != set(inputs) | set(latents) or set(inputs) & set(latents):
        c.fail(
            "program",
            f"parameters = observation.inputs + latent_domain names ({_shorten(', '.join([*inputs, *latents]))})",
            _shorten(", ".join(program.params)),
        )
    try:
        gold = solve(record)
        # An observation no hidden value explains makes the question vacuous: counterfactual and abduction
        # answers would be the empty set, and interventional revealed values would contradict it.
        if variant == "interventional":
            explained = program.table(inputs, [revealed]) == [observation["output"]]
        else:
            explained = bool(gold)
            if not explained:  # solve skips runs that fail: say so when one does, e.g. a loop over the step cap
                program.table(inputs, [{name: low for name, (low, _) in latents.items()}])
    except ExecutionError as e:
        c.fail("program", "a program that runs on every hidden value", _shorten(str(e)))
    if not explained:
        c.fail("observation.output", "an output the program gives for the hidden values", _show(observation["output"]))
    if gold != answer:
        c.fail("answer", f"the program's answer {_show_list(gold)}", _show_list(answer))
    return record


def _check_domain(c: _Checker, domain: Any, variant: str) -> dict[str, list[int]]:
    c.obj("latent_domain", domain)
    if not domain or len(domain) > MAX_NAMES:
        c.fail("latent_domain", f"1 to {MAX_NAMES} hidden variables", _show(domain))
    if variant == "abduction" and len(domain) != 1:
        c.fail("latent_domain", "exactly one hidden variable for the abduction variant", _show(domain))
    size = 1
    for name, bounds in domain.items():
        c.ident("latent_domain key", name)
        field = f"latent_domain.{name}"
        if not isinstance(bounds, list) or len(bounds) != 2:
            c.fail(field, "a [low, high] pair of integers", _show(bounds))
        low, high = c.integer(field, bounds[0]), c.integer(field, bounds[1])
        if low > high:
            c.fail(field, "low <= high", _show(bounds))
        # Checked before anything is enumerated: [0, 3e8] is refused here, not by running out of memory.
        size *= high - low + 1
        if size > MAX_DOMAIN:
            c.fail("latent_domain", f"at most {MAX_DOMAIN} hidden assignments in all", f"{size} or more")
    return domain


def _check_optional(c: _Checker, record: Mapping) -> None:
    if "meta" in record:
        c.obj("meta", record["meta"])
    if "provenance" in record:
        c.obj("provenance", record["provenance"])
    if "trace" in record:
        c.text("trace", record["trace"], MAX_TEXT_CHARS)
    if "target" in record and record["target"] not in TARGETS:
        c.fail("target", f"one of {', '.join(TARGETS)} (or no target field)", _show(record["target"]))


def _shorten(text: str) -> str:
    return text if len(text) <= _SHOW_CHARS else text[:_SHOW_CHARS] + "..."


def _show_list(values: list[int]) -> str:
    return _shorten(json.dumps(values))


def json_lines(path: str | Path, max_line_bytes: int | None = MAX_LINE_BYTES) -> Iterator[tuple[str, Any]]:
    """Yield (`file:line`, parsed JSON) for each non-blank line; one-line ValueErrors name the file and line.

    A line longer than `max_line_bytes` is refused after reading at most that many bytes of it (None: no limit).
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: no such file")
    if not path.is_file():
        raise ValueError(f"{path}: not a file")
    limit = -1 if max_line_bytes is None else max_line_bytes + 1
    with path.open("rb") as f:
        number = 0
        while raw := f.readline(limit):
            number += 1
            where = f"{path}:{number}"
            if max_line_bytes is not None and len(raw) > max_line_bytes:
                raise ValueError(f"{where}: line longer than {max_line_bytes} bytes")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"{where}: not UTF-8 text (byte {e.start + 1} of the line)") from None
            if not text.strip():
                continue
            try:
                yield where, json.loads(text)
            except json.JSONDecodeError as e:
                raise ValueError(f"{where}: not valid JSON ({e.msg} at column {e.colno})") from None
            except (ValueError, RecursionError) as e:  # e.g. an int of over 4300 digits, or [[[[... nested deep
                raise ValueError(f"{where}: not valid JSON ({_shorten(str(e))})") from None


def read_records(path: str | Path) -> list[dict]:
    """The checked records of a `.jsonl` file (see `check_record`); the first bad line raises ValueError."""
    return [check_record(record, where) for where, record in json_lines(path)]
