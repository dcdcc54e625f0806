r"""Step rewards' parsing: the abduction, intervention and prediction a completion states, read strictly.

`cftrain.traces` finds steps for evaluation and accepts any one matching claim. A reward must not: a policy would
learn to state every candidate. Here one rule holds for every step: **the last statement counts, and a step with
more than MAX_CANDIDATES distinct stated values earns nothing**. Integers are ASCII digits with an optional ``-``
(``٣`` is not a digit); a value that cannot be read (``{1, ..., 10}``, ``3-6``, ``7 or 8`` for one output) is a
stated value that is wrong. Only the text before the final answer is read (the ``<answer>`` or ``\boxed{}`` that
`cftrain.rewards.parse_answer` reads, ``<think>`` blocks included: that is where the steps are written; the whole
completion when it has no answer). A completion longer than MAX_CHARS earns no step reward.

- **Abduction claim**: a hidden variable, a connector (``=``, ``==``, ``∈``, ``:``, ``in``, ``is``, ``are``,
  ``equals``, ``must/could/can/might/should/would be``, then optionally ``either`` or ``one of``) and its values:
  a braced or bracketed set, or a bare run ``3, 6 or 9`` (a repeated ``r =`` inside is fine: ``r = 3 or r = 6``).
  Several hidden variables: a tuple header in any order and tuples, ``(r1,r2,r3)=(1,1,3) (2,1,3)`` or
  ``(r1, r2, r3) ∈ {(1, 1, 3), (2, 1, 3)}``. The gold rationale writes ``consistent r={3, 6, 9}``. A claim right
  after ``if``, ``when``, ``for``, ``with``, ``try``, ``suppose``, ``assume``, ``let``, ``check``, ``test``,
  ``where`` or ``at`` (``if r = 2, ...``) is a trial, not a claim.
- **Intervention statement**: a changed input, a connector (``=``, ``:=``, ``->``, ``→``, ``is``, ``to``,
  ``becomes``, ``now``) and one integer: ``x=8``, ``set x to 8``.
- **Prediction**: a call of the program with the changed inputs and one world's hidden values, then ``=``, ``==``,
  ``->``, ``→``, ``is``, ``returns``, ``gives`` or ``yields`` and one integer: ``f(8,3)=7`` (arguments positional
  or ``name=value``). Calls with other inputs (the abduction's trial runs at the observed input) are not predictions.

What the rewards compute from these (`cftrain.rewards`): `abduction` is 1 when the last abduction claim equals the
consistent set; `prediction` is, over the calls after the changed inputs are first stated with their new values,
the share of consistent worlds whose last predicted output is right, with each world outside the consistent set that
gets a prediction counting as one more wrong world; `steps` is 1 when the steps the variant has are all right and in
order: the last abduction claim, then (before the first prediction) intervention statements whose last value is
the new one, then predictions, none of them before the abduction claim, with `prediction` 1.

Linear time: each pattern is one regex pass with bounded sets, tuples and arguments; sets and claims are compared
as Python sets. Nothing here raises on any text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from cftrain.execution import load_program
from cftrain.problems.truth import new_inputs, worlds

MAX_CANDIDATES = 2
MAX_CHARS = 100_000
_MAX_BRACED = 2_000
_MAX_DIGITS = 18

_NUM = r"-?[0-9]+"
_SEP = r"(?:\s*[,;]\s*(?:(?:or|and)\s+)?|\s+(?:or|and)\s+|\s+)"
_SET_BODY = re.compile(rf"\s*(?:{_NUM}(?:{_SEP}{_NUM})*)?\s*")
_TUPLE = rf"\(\s*{_NUM}(?:\s*,\s*{_NUM})*\s*\)"
_TUPLES_BODY = re.compile(rf"\s*(?:{_TUPLE}(?:{_SEP}?{_TUPLE})*)?\s*")
_INTS = re.compile(_NUM)
_CLAIM_CONNECT = (
    r"\s*(?:==?|∈|:|\b(?:in|is|are|equals|(?:must|could|can|might|should|would)\s+be)\b)"
    r"(?:\s*\b(?:either|one\s+of)\b)?\s*"
)
_STATE_CONNECT = r"\s*(?::=|=|->|→|\b(?:is|to|becomes|now)\b)\s*"
_CALL_CONNECT = r"\s*(?:==?|->|→|\b(?:is|returns|gives|yields)\b)\s*"
_TRIAL = re.compile(
    r"\b(?:if|when|whenever|for|with|try|trying|suppose|supposing|assume|assuming|let|check|checking|test|testing"
    r"|where|at)[\s(\[$*`]*$",
    re.IGNORECASE,
)
# After a bare value, an operator, a range or a glued character means the value is part of an expression.
# A `<` that opens a tag (`</think>`) is not an operator.
_NOT_A_VALUE_END = re.compile(r"[ \t]*(?:[-+*/^%>=≤≥≠|]|<(?![/a-z])|\.\.|…|\.[0-9]|or\b)|\w")


@dataclass(frozen=True)
class Truth:
    """What a record's steps must state: the `truth` column, as built by `step_truth`."""

    variant: str
    entry: str
    params: tuple[str, ...]
    latents: tuple[str, ...]  # sorted hidden-variable names; worlds are tuples in this order
    worlds: frozenset[tuple[int, ...]]  # consistent hidden values (the revealed ones for `interventional`)
    new_inputs: dict[str, int]  # the observed inputs with the intervention applied
    intervention: dict[str, int]
    outcomes: dict[tuple[int, ...], int]  # world -> program output at new_inputs (empty for `abduction`)


def step_truth(record: Mapping) -> dict:
    """What the step rewards need from a record, computed by executing its program (JSON-ready; for the dataset's
    `truth` column as ``json.dumps(step_truth(record))``).

    Keys: variant, entry, params (in call order), latents (sorted), worlds (consistent hidden values, one list per
    world in `latents` order; the revealed values for `interventional`), new_inputs, intervention, and outcomes
    (the output for each world at new_inputs; empty for `abduction`, which has no prediction).
    """
    program = load_program(record["program"], record["entry"])
    names = sorted(record["latent_domain"])
    latents = worlds(record, program)
    changed = new_inputs(record)
    outcomes = [] if record["variant"] == "abduction" else program.table(changed, latents)
    return {
        "variant": record["variant"],
        "entry": record["entry"],
        "params": list(program.params),
        "latents": names,
        "worlds": [[latent[n] for n in names] for latent in latents],
        "new_inputs": changed,
        "intervention": dict(record["intervention"]),
        "outcomes": outcomes,
    }


def parse_truth(truth: Mapping) -> Truth:
    worlds = [tuple(w) for w in truth["worlds"]]
    return Truth(
        variant=truth["variant"],
        entry=truth["entry"],
        params=tuple(truth["params"]),
        latents=tuple(truth["latents"]),
        worlds=frozenset(worlds),
        new_inputs=dict(truth["new_inputs"]),
        intervention=dict(truth["intervention"]),
        outcomes=dict(zip(worlds, truth["outcomes"])),
    )


@dataclass(frozen=True)
class Statement:
    start: int
    end: int
    value: object  # None when unreadable


def _int(token: str) -> int | None:
    return int(token) if len(token.lstrip("-").lstrip("0")) <= _MAX_DIGITS else None


def _ints(text: str) -> list[int] | None:
    values = [_int(t) for t in _INTS.findall(text)]
    return None if None in values else values


def _is_trial(text: str, start: int) -> bool:
    return _TRIAL.search(text[max(0, start - 24) : start]) is not None


def _bare_end_ok(text: str, end: int) -> bool:
    return _NOT_A_VALUE_END.match(text, end) is None


@lru_cache(maxsize=256)
def _claim_pattern(latents: tuple[str, ...]) -> re.Pattern:
    if len(latents) == 1:
        n = re.escape(latents[0])
        bare = rf"{_NUM}(?:(?:{_SEP}){n}\s*=\s*{_NUM}|{_SEP}{_NUM})*"
        head = rf"(?<![\w.]){n}(?:\s+values?)?"
        body = rf"\{{[^{{}}\n]{{0,{_MAX_BRACED}}}\}}|\[[^\[\]\n]{{0,{_MAX_BRACED}}}\]|(?P<bare>{bare})"
    else:
        name = "|".join(re.escape(n) for n in latents)
        head = rf"(?P<header>\(\s*(?:{name})(?:\s*,\s*(?:{name}))*\s*\))"
        body = rf"\{{[^{{}}\n]{{0,{_MAX_BRACED}}}\}}|(?P<bare>{_TUPLE}(?:{_SEP}?{_TUPLE})*)"
    return re.compile(rf"{head}{_CLAIM_CONNECT}(?P<body>{body})")


def abduction_claims(text: str, truth: Truth) -> list[Statement]:
    """Every claim of the hidden values in `text` (rules: module doc); a value is a frozenset of world tuples."""
    claims = []
    calls = [m.span("args") for m in _call_pattern(truth.entry, bare=True).finditer(text)] + [(len(text) + 1,) * 2]
    i = 0
    for m in _claim_pattern(truth.latents).finditer(text):
        while calls[i][1] < m.start():
            i += 1
        # `f(x=8, r=3)` passes arguments, it claims nothing.
        if _is_trial(text, m.start()) or calls[i][0] <= m.start():
            continue
        value = None
        if len(truth.latents) == 1:
            body = m["body"] if m["bare"] else m["body"][1:-1]
            readable = _bare_end_ok(text, m.end()) if m["bare"] else _SET_BODY.fullmatch(body) is not None
            body = re.sub(rf"(?<![\w.]){re.escape(truth.latents[0])}\s*=", " ", body) if m["bare"] else body
            values = _ints(body) if readable else None
            value = None if values is None else frozenset((v,) for v in values)
        else:
            value = _tuples(m["header"], m["body"] if m["bare"] else m["body"][1:-1], truth.latents)
        claims.append(Statement(m.start(), m.end(), value))
    return claims


def _tuples(header: str, body: str, latents: tuple[str, ...]) -> frozenset[tuple[int, ...]] | None:
    order = re.findall(r"[^\s(),]+", header)
    if sorted(order) != list(latents) or _TUPLES_BODY.fullmatch(body) is None:
        return None
    worlds = set()
    for t in re.finditer(_TUPLE, body):
        values = _ints(t.group())
        if values is None or len(values) != len(order):
            return None
        by_name = dict(zip(order, values))
        worlds.add(tuple(by_name[n] for n in latents))
    return frozenset(worlds)


def final_value(statements: list[Statement]) -> object:
    """The last stated value, or None when there is none or more than MAX_CANDIDATES distinct values were stated."""
    if not statements or len({s.value for s in statements}) > MAX_CANDIDATES:
        return None
    return statements[-1].value


def intervention_statements(text: str, truth: Truth, name: str) -> list[Statement]:
    """`x=8`, `set x to 8`: each statement of a changed input's value (None when not one plain integer)."""
    pattern = re.compile(rf"(?<![\w.]){re.escape(name)}{_STATE_CONNECT}(?P<v>{_NUM})")
    return [
        Statement(m.start(), m.end(), _int(m["v"]) if _bare_end_ok(text, m.end()) else None)
        for m in pattern.finditer(text)
    ]


@lru_cache(maxsize=256)
def _call_pattern(entry: str, bare: bool = False) -> re.Pattern:
    """A call of the program with its output (`f(8,3)=11`), or with `bare` any call (`f(x=8, r=3)`)."""
    call = rf"(?<![\w.]){re.escape(entry)}\((?P<args>[^()\n]{{0,500}})\)"
    return re.compile(call if bare else rf"{call}{_CALL_CONNECT}(?P<y>{_NUM})")


def predictions(text: str, truth: Truth) -> list[tuple[Statement, tuple[int, ...]]]:
    """Calls at the changed inputs, in order: (statement of the output, world). Other calls are skipped."""
    out = []
    for m in _call_pattern(truth.entry).finditer(text):
        args = _call_args(m["args"], truth.params)
        if args is None or any(args[p] != v for p, v in truth.new_inputs.items()):
            continue
        y = _int(m["y"]) if _bare_end_ok(text, m.end()) else None
        out.append((Statement(m.start(), m.end(), y), tuple(args[n] for n in truth.latents)))
    return out


def _call_args(text: str, params: tuple[str, ...]) -> dict[str, int] | None:
    raw = [a.strip() for a in text.split(",")]
    if len(raw) != len(params):
        return None
    args = {}
    for param, arg in zip(params, raw):
        name, eq, value = arg.rpartition("=")
        if eq and name.strip() not in params:
            return None
        if not re.fullmatch(_NUM, value.strip()):
            return None
        args[name.strip() if eq else param] = _int(value.strip())
    return args if len(args) == len(params) and None not in args.values() else None


def prediction_share(calls: list[tuple[Statement, tuple[int, ...]]], truth: Truth) -> float:
    """Share of consistent worlds whose last prediction is right; each other world predicted is one more wrong."""
    per_world: dict[tuple[int, ...], list[Statement]] = {}
    for statement, world in calls:
        per_world.setdefault(world, []).append(statement)
    right = sum(1 for w, y in truth.outcomes.items() if w in per_world and final_value(per_world[w]) == y)
    extra = sum(1 for w in per_world if w not in truth.outcomes)
    total = len(truth.outcomes) + extra
    return right / total if total else 0.0


def intervention_point(text: str, truth: Truth) -> int | None:
    """Where every changed input has been stated with its new value (end of the last first such statement)."""
    ends = []
    for name, value in truth.intervention.items():
        end = next((s.end for s in intervention_statements(text, truth, name) if s.value == value), None)
        if end is None:
            return None
        ends.append(end)
    return max(ends, default=None)


def intervention_ok(text: str, truth: Truth, start: int, end: int) -> bool:
    """Every changed input is stated in text[start:end], its last statement there giving the new value."""
    window = text[:end]
    for name, value in truth.intervention.items():
        stated = [s for s in intervention_statements(window, truth, name) if s.start >= start]
        if final_value(stated) != value:
            return False
    return bool(truth.intervention)
