"""Rule-based detectors of the three counterfactual steps in a completion, tied to the record's own values.

For each completion `analyse_trace` answers, by looking for the *numbers* the steps must produce (so it works on
the programmatic rationales of `cftrain.prompts.rationale` and on free-form text alike, headers or not):

- `abduction`: the trace states the consistent hidden values, exactly: a claim such as `consistent r={2, 5}`,
  `r ∈ {2, 5}`, `r must be 2 or 5`, `r = 2 or r = 5`, `(r1,r2,r3)=(1,3,2)` or `r1=1, r2=3, r3=2` whose value
  set equals the consistent set (for `interventional`, the revealed value). Any one such claim is enough.
- `intervention`: the changed input is named with its new value: `x=7`, `x = 7`, `x := 7`, `x had been 7`,
  `set x to 7`, or a call of the function with the new input (`f(7, 2)`). None for the `abduction` variant.
- `prediction`: every predicted output (the program run at the changed input for each consistent hidden value,
  i.e. the gold answer) appears as a number after the intervention is named and before the final answer.
  None for the `abduction` variant.
- `in_order`: the steps the variant needs (counterfactual: all three; interventional: intervention and
  prediction; abduction: abduction) are all detected, with abduction before intervention.
- `right_reason`: the answer is right *and* the consistent set was stated (the rate that exposed reward gaming
  in the tiny-model runs, where EM alone did not: docs/learning-facts.md).
- `error` (wrong answers only): `planning` when a needed step is missing or out of order, judged by whether the
  step was *attempted* at all (a claim about the hidden variable, the changed input with some new value, a value
  computed after it), else `execution` (all steps attempted in order, but some value is wrong).

These are heuristics over text: a trace that tries r=5, rejects it and never concludes can still count as
stating {5}. They are meant for fractions over many completions, not for judging one. An LLM judge (the paper
scores planning and execution 1-5) could be plugged in through the same generation backend as evaluation
(`cftrain.generation.generate`): render a judging prompt per completion and parse its scores next to these flags.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping

from cftrain.execution import load_program
from cftrain.problems.truth import worlds

_INT = re.compile(r"(?<!\w)-?\d+(?!\d)")
_SENTENCE_END = re.compile(r"\n|[.!?;](?=\s|$)")
# Words and symbols that join a variable to the value(s) claimed for it.
_CONNECT = (
    r"(?:\s*(?:=|==|:=|∈|≡|:|->|→|←|\bin\b|\bis\b|\bare\b|\bwas\b|\bwere\b|\bequals\b|\bmust\s+be\b|\bcould\s+be\b"
    r"|\bcan\s+be\b|\bmight\s+be\b|\beither\b|\bbe\b|\bbeen\b|\bhad\b|\bto\b|\bof\b|\bnow\b|\bbecomes\b|\binstead\b))+\s*"
)
_ABDUCTION_WORDS = re.compile(r"consistent|abduct", re.IGNORECASE)
_INTERVENTION_WORDS = re.compile(r"intervention|intervene", re.IGNORECASE)
FLAGS = ("abduction", "intervention", "prediction", "in_order", "right_reason")


def _ints(text: str, start: int = 0, end: int | None = None) -> set[int]:
    return {int(m.group()) for m in _INT.finditer(text, start, len(text) if end is None else end)}


def _sentences(text: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        spans.append((start, m.end()))
        start = m.end()
    return [*spans, (start, len(text))]


def _answer_start(text: str) -> int:
    """Where the final answer begins (the same tag `rewards.parse_answer` reads), so steps are looked for before it."""
    close = text.rfind("</answer>")
    start = text.rfind("<answer>", 0, close) if close != -1 else -1
    if start == -1:
        start = text.rfind("\\boxed{")
    return len(text) if start == -1 else start


def _value(v: int) -> str:
    return rf"(?<![\w-]){re.escape(str(v))}(?!\d)"


class _Claims:
    """Every claim of values for the hidden variables: (position, set of value tuples in `names` order)."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        name = "|".join(re.escape(n) for n in names)
        if len(names) == 1:
            n = re.escape(names[0])
            number = r"-?\d+(?!\d)"
            run = rf"\{{[^{{}}\n]*\}}|\[[^\[\]\n]*\]|{number}(?:(?:\s*(?:,|;|\bor\b|\band\b))+\s*(?:{n}\s*=\s*)?{number})*"
            self.single = re.compile(rf"(?<![\w.]){n}(?:\s+values?)?{_CONNECT}(?P<run>{run})")
            self.strip = re.compile(rf"(?<![\w.]){n}\s*=")
        else:
            tup = r"\(\s*-?\d+(?:\s*,\s*-?\d+)*\s*\)"
            header = r"\(\s*" + r"\s*,\s*".join(re.escape(n) for n in names) + r"\s*\)"
            self.tuples = re.compile(rf"{header}{_CONNECT}\{{?(?P<run>{tup}(?:(?:\s|,|;|\bor\b|\band\b)*{tup})*)")
            self.tuple = re.compile(tup)
        self.assign = re.compile(rf"(?<![\w.])(?P<name>{name})\s*(?:=|==|:|\bis\b)\s*(?P<v>-?\d+)(?!\d)")

    def find(self, text: str, start: int, end: int) -> list[tuple[int, frozenset[tuple[int, ...]]]]:
        """Claims in text[start:end]: each match alone, plus each sentence's matches together."""
        found = []
        for s, e in _sentences(text[start:end]):
            s, e = s + start, e + start
            in_sentence = []
            if len(self.names) == 1:
                for m in self.single.finditer(text, s, e):
                    values = _ints(self.strip.sub(" ", m.group("run")))
                    in_sentence.append((m.start(), frozenset((v,) for v in values)))
            else:
                for m in self.tuples.finditer(text, s, e):
                    groups = [tuple(_ints_ordered(t.group())) for t in self.tuple.finditer(m.group("run"))]
                    in_sentence.append((m.start(), frozenset(g for g in groups if len(g) == len(self.names))))
                in_sentence += self._assignments(text, s, e)
            found += in_sentence
            if len(in_sentence) > 1:
                found.append((in_sentence[0][0], frozenset().union(*(c for _, c in in_sentence))))
        return found

    def _assignments(self, text: str, start: int, end: int) -> list[tuple[int, frozenset[tuple[int, ...]]]]:
        """`r1=1, r2=3, r3=2`: one tuple each time every hidden variable has been given a value."""
        out, current, first = [], {}, None
        for m in self.assign.finditer(text, start, end):
            if m.group("name") in current:
                current, first = {}, None
            first = m.start() if first is None else first
            current[m.group("name")] = int(m.group("v"))
            if len(current) == len(self.names):
                out.append((first, frozenset([tuple(current[n] for n in self.names)])))
                current, first = {}, None
        return out


def _ints_ordered(text: str) -> list[int]:
    return [int(m.group()) for m in _INT.finditer(text)]


def _consistent(record: Mapping) -> tuple[list[str], frozenset[tuple[int, ...]]]:
    names = sorted(record["latent_domain"])
    return names, frozenset(tuple(latent[n] for n in names) for latent in worlds(record))


def _calls(entry: str) -> re.Pattern:
    return re.compile(rf"(?<![\w.]){re.escape(entry)}\(([^()]*)\)")


def _intervention_mentions(record: Mapping, text: str, end: int, exact: bool) -> list[tuple[int, int]]:
    """Spans where every changed input has been named: with its new value when `exact`, else with any value other
    than the observed one. A call of the function with the changed input counts too."""
    program = load_program(record["program"], record["entry"])
    observed = record["observation"]["inputs"]
    new_inputs = {**observed, **record["intervention"]}
    per_name = []
    for name, value in record["intervention"].items():
        value_re = _value(value) if exact else r"(?P<v>-?\d+)(?!\d)"
        pattern = rf"(?<![\w.]){re.escape(name)}{_CONNECT}{value_re}"
        if len(name) > 1:  # word problems: "with 82 players" (never for x: "3 x 4" is a product)
            pattern += rf"|{value_re.replace('?P<v>', '?P<w>')}\s+{re.escape(name)}\b"
        pattern = re.compile(pattern)
        per_name.append(
            [m.span() for m in pattern.finditer(text, 0, end) if exact or int(m["v"] or m["w"]) != observed[name]]
        )
    spans = []
    if all(per_name):
        # Several changed inputs: a mention starts at one name and completes where the last of the others appears.
        for start in sorted({s for hits in per_name for s, _ in hits}):
            later = [min((h for h in hits if h[0] >= start), default=None) for hits in per_name]
            if None not in later:
                spans.append((start, max(e for _, e in later)))
    for m in _calls(program.entry).finditer(text, 0, end):
        raw = [a.strip() for a in m.group(1).split(",")]
        if len(raw) != len(program.params):
            continue
        args = dict(zip(program.params, raw))
        if exact:
            ok = all(args[n] == str(v) for n, v in new_inputs.items())
        else:
            ok = any(_is_int(args[n]) and int(args[n]) != observed[n] for n in record["intervention"])
        if ok:
            spans.append(m.span())
    return sorted(set(spans))


def _is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()


def analyse_trace(record: Mapping, completion: str, correct: bool) -> dict:
    """Step flags for one completion of `record` (see the module docstring); `correct` is its exact match."""
    variant = record["variant"]
    end = _answer_start(completion)
    names, consistent = _consistent(record)
    claims = _Claims(names).find(completion, 0, end)
    right_claims = [pos for pos, values in claims if values == consistent]
    abduction = bool(right_claims)
    anchor = right_claims[0] if right_claims else -1

    intervention = prediction = None
    mention = None
    if variant != "abduction":
        mentions = _intervention_mentions(record, completion, end, exact=True)
        intervention = bool(mentions)
        # The intervention that follows the abduction claim, if the trace restated the question first.
        mention = next((m for m in mentions if m[0] > anchor), mentions[0]) if mentions else None
        # Call arguments are inputs, not outputs: f(7,2)=11 predicts 11, not 7 or 2.
        region = _calls(record["entry"]).sub(" ", completion[mention[1] : end]) if mention else ""
        prediction = bool(mention) and set(record["answer"]) <= _ints(region)
    if variant == "counterfactual":
        in_order = abduction and prediction and anchor < mention[0]
    elif variant == "interventional":
        in_order = prediction
    else:
        in_order = abduction
    return {
        "abduction": abduction,
        "intervention": intervention,
        "prediction": prediction,
        "in_order": bool(in_order),
        "right_reason": bool(correct and abduction),
        "error": None if correct else _error_kind(record, completion, end, claims),
    }


def _error_kind(record: Mapping, text: str, end: int, claims: list) -> str:
    """`planning` when a step the variant needs was never attempted or came out of order, else `execution`."""
    variant = record["variant"]
    words = [m.start() for m in _ABDUCTION_WORDS.finditer(text, 0, end)]
    abduction = min([pos for pos, _ in claims] + words, default=None)
    if variant == "abduction" or (variant == "counterfactual" and abduction is None):
        return "execution" if abduction is not None else "planning"
    after = -1 if variant == "interventional" else abduction
    spans = _intervention_mentions(record, text, end, exact=False)
    spans += [m.span() for m in _INTERVENTION_WORDS.finditer(text, 0, end)]
    mention = min((s for s in spans if s[0] > after), default=None)
    if mention is None:
        return "planning"
    # A value computed after the intervention: `f(7,2)=11`, `result = 11`, `4 + 7 = 11`, not `x = 7` itself.
    names = "|".join(re.escape(n) for n in record["intervention"])
    computed = re.compile(rf"(?:\)|\b(?!(?:{names})\b)\w+)\s*=\s*-?\d|predict", re.IGNORECASE)
    return "execution" if computed.search(text, mention[1], end) else "planning"


def trace_metrics(rows: Iterable[Mapping]) -> dict[str, float]:
    """Fractions over completions of each step flag (rows where it applies), and the split of wrong answers
    into `planning_error` / `execution_error` (fractions of the wrong answers; absent when none is wrong)."""
    rows = list(rows)
    out = {}
    for flag in FLAGS:
        values = [row["trace"][flag] for row in rows if row["trace"][flag] is not None]
        if values:
            out[flag] = math.fsum(map(float, values)) / len(values)
    errors = [row["trace"]["error"] for row in rows if row["trace"]["error"] is not None]
    if errors:
        out["planning_error"] = errors.count("planning") / len(errors)
        out["execution_error"] = errors.count("execution") / len(errors)
    return out
