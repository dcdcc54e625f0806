r"""Answer parsing and TRL-signature reward functions.

The answer is the content of the last ``<answer>...</answer>`` (the last closing tag and the last opening tag
before it), else of the last ``\boxed{...}`` (braces balanced), searched only *outside* the reasoning, as
R1-style parsers do: text inside ``<think>...</think>``, after a ``<think>`` never closed, and before a first
``</think>`` that no ``<think>`` opens (the chat template opened the block in the prompt) is ignored, so an answer
written while thinking does not count. That content is read as a set of integers:

- Integers are ASCII digits with an optional minus sign. A ``-`` is a sign only when a digit follows it and no
  letter or digit precedes it, so ``3-5`` and ``x-1`` are not negative numbers (they are prose, see below).
- Order, duplicates, whitespace, ``,`` ``;``, the words ``or``/``and``, brackets ``{}[]()``, ``$`` and LaTeX
  ``\{ \} \left \right`` do not matter. Content made only of these (``{}``, empty) is the empty set.
- Prose is tolerated only in front of the set: the set is the longest run of the syntax above at the end of the
  content (after trailing ``.``, ``*``, backticks and spaces). The prose must hand over cleanly: it ends in ``=``,
  ``:``, ``∈``, ``*`` or a backtick (``r = 3``, ``**Answer:** {1, 2}``), or in a letter not glued to a number
  (``the answer is 3``, ``\boxed{1, 2}``). Prose touching a number (``3-5``, ``3 - 5``, ``2.5``, ``>= 3``,
  ``≥ 3``, ``x2``, ``٣``) makes the answer None, since a set cannot be told apart from an expression there; so
  does prose with no integer after it (``{1, 2} is the answer``). Prose is not understood: ``not 3`` reads as {3}.
- An integer of more than 18 significant digits makes the answer None: no gold answer is that large, and
  skipping it would let a model pad a correct set with junk.
- A set run longer than 10,000 characters is None, and a ``\boxed{`` not closed within 10,000 characters counts
  as never closed (None; earlier boxes are not used). No gold set comes close, and the bound keeps the Python-level
  work per completion small whatever its length.

Parsing never raises and stays linear in the text's length: think blocks are cut by one lazy regex, tags are
found with ``str.rfind`` and the set by one anchored regex over the reversed tail of the content. A completion
that is not text (a chat message without a string ``content``, an empty list) reads as "" and scores 0. Tests: ``python -m pytest tests/test_rewards.py``.
"""

import json
import re
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache

from cftrain import steps

Completion = str | list[dict[str, str]]

_MAX_DIGITS = 18
_MAX_SET_CHARS = 10_000
_TRAILING = " \t\r\n.*`"
_INTRODUCERS = "=:∈*`"
# Matched on the reversed content so that re.match (anchored, no rescans) finds the trailing set in linear time;
# nothing follows the loop, so the greedy first try always succeeds and never backtracks. Reversed, a sign "-"
# comes right after its digits and must not be followed by a letter or digit.
_SET_RUN_REVERSED = re.compile(r"(?:[\s0-9,;{}\[\]()$\\]+|(?<=[0-9])-(?!\w)|(?i:ro|dna)(?![^\W\d_])|tfel\\|thgir\\)*")
_INT = re.compile(r"-?[0-9]+")
_BRACE = re.compile(r"[{}]")
# Lazy: a block ends at its first </think>, or at the end of the text when never closed.
_THINK = re.compile(r"<think>.*?(?:</think>|\Z)", re.DOTALL)


def completion_text(completion: Completion) -> str:
    """The text of a completion: a string, or the content of the last message of a chat-format completion.

    Never raises: anything else (no message, no ``content``, ``content: None``) is "", which scores 0.

    >>> completion_text([{"role": "assistant", "content": "<answer>3</answer>"}]), completion_text([{"content": None}])
    ('<answer>3</answer>', '')
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        content = completion[-1].get("content")
        return content if isinstance(content, str) else ""
    return ""


def _outside_think(text: str) -> str:
    """The text with the reasoning cut out (rules: module doc); each cut becomes a space so no tokens are glued."""
    close = text.find("</think>")
    if close != -1 and text.find("<think>", 0, close) == -1:
        text = text[close + len("</think>") :]
    return _THINK.sub(" ", text) if "<think>" in text else text


def _boxed_content(text: str) -> str | None:
    start = text.rfind("\\boxed{")
    if start == -1:
        return None
    begin = start + len("\\boxed{")
    depth = 1
    # The window bounds the Python-level brace loop on adversarial input such as "\boxed{" + "{}" * 10**6.
    for brace in _BRACE.finditer(text, begin, begin + _MAX_SET_CHARS):
        depth += 1 if brace.group() == "{" else -1
        if depth == 0:
            return text[begin : brace.start()]
    return None


def _introduces(prose: str, run: str) -> bool:
    # Comparisons end in "=" too, but "x >= 3" is a range, not the set {3}.
    if prose.endswith(("<=", ">=", "!=")):
        return False
    return prose[-1] in _INTRODUCERS or (prose[-1].isalpha() and run[0] not in "-0123456789")


def _parse_set(content: str) -> frozenset[int] | None:
    content = content.rstrip(_TRAILING)
    # Only the tail can hold an admissible set, so a huge content costs a slice, not a scan.
    size = _SET_RUN_REVERSED.match(content[-_MAX_SET_CHARS - 1 :][::-1]).end()
    if size > _MAX_SET_CHARS:
        return None
    split = len(content) - size
    prose, run = content[:split], content[split:]
    tokens = set(_INT.findall(run))
    if not tokens:
        return None if prose else frozenset()
    if prose and not _introduces(prose, run):
        return None
    if max(map(len, tokens)) > _MAX_DIGITS:
        # Rare path: leading zeros or a huge number; int() would also refuse strings past 4300 digits.
        tokens = {("-" if t[0] == "-" else "") + (t.lstrip("-0") or "0") for t in tokens}
        if max(len(t.lstrip("-")) for t in tokens) > _MAX_DIGITS:
            return None
    return frozenset(map(int, tokens))


def parse_answer(text: str) -> frozenset[int] | None:
    r"""The set of integers a completion answers, or None when it gives no readable answer (rules: module doc).

    >>> sorted(parse_answer("<think>maybe {1}</think> <answer>{7, 3, 3}</answer>"))
    [3, 7]
    >>> sorted(parse_answer(r"so r is 2 or 5, and the result is \boxed{\{-1, 4\}}"))
    [-1, 4]
    >>> parse_answer("<answer>3-5</answer>") is None, parse_answer("<think><answer>{1}</answer></think>") is None
    (True, True)
    """
    text = _outside_think(text)
    close = text.rfind("</answer>")
    start = text.rfind("<answer>", 0, close) if close != -1 else -1
    if start != -1:
        return _parse_set(text[start + len("<answer>") : close])
    boxed = _boxed_content(text)
    return None if boxed is None else _parse_set(boxed)


def exact_match(pred: frozenset[int] | None, gold: Iterable[int]) -> float:
    """1.0 when the predicted set equals the gold set, else 0.0 (also for an unreadable answer).

    >>> exact_match(frozenset({3, 7}), [3, 7]), exact_match(None, [3])
    (1.0, 0.0)
    """
    return float(pred is not None and pred == frozenset(gold))


def set_f1(pred: frozenset[int] | None, gold: Iterable[int]) -> float:
    """Set F1 between the predicted and gold sets; 0.0 for an unreadable answer, 1.0 when both are empty.

    >>> set_f1(frozenset({3, 7}), [3, 8])
    0.5
    """
    if pred is None:
        return 0.0
    gold = frozenset(gold)
    if pred == gold:
        return 1.0
    return 2 * len(pred & gold) / (len(pred) + len(gold))


def answer_reward(completions: list[Completion], answer: list[list[int]], **kwargs) -> list[float]:
    """Set exact match against the ``answer`` column: the RL reward.

    >>> answer_reward(["<answer>{3, 7}</answer>", "<answer>{3}</answer>", "no answer"], [[3, 7], [3, 7], [3]])
    [1.0, 0.0, 0.0]
    """
    return [exact_match(parse_answer(completion_text(c)), gold) for c, gold in zip(completions, answer, strict=True)]


def f1_reward(completions: list[Completion], answer: list[list[int]], **kwargs) -> list[float]:
    """Set F1 against the ``answer`` column: partial credit.

    >>> f1_reward([[{"role": "assistant", "content": "<answer>3, 8</answer>"}]], [[3, 7]])
    [0.5]
    """
    return [set_f1(parse_answer(completion_text(c)), gold) for c, gold in zip(completions, answer, strict=True)]


def _well_formatted(text: str) -> bool:
    if text.count("<answer>") != 1 or text.count("</answer>") != 1:
        return False
    start, close = text.find("<answer>"), text.find("</answer>")
    if close < start or _parse_set(text[start + len("<answer>") : close]) is None:
        return False
    thinks = (text.count("<think>"), text.count("</think>"))
    return thinks == (0, 0) or (thinks == (1, 1) and text.find("<think>") < text.find("</think>") < start)


def format_reward(completions: list[Completion], **kwargs) -> list[float]:
    """1.0 for exactly one readable ``<answer>`` block, after at most one ``<think>`` block; other text is free.

    >>> format_reward(["<think>r is 2</think><answer>{3}</answer>", "<answer>1</answer><answer>2</answer>"])
    [1.0, 0.0]
    """
    return [float(_well_formatted(completion_text(c))) for c in completions]


def answer_start(text: str) -> int:
    r"""Where the answer `parse_answer` reads begins in `text` (its ``<answer>`` or ``\boxed{``), else len(text).

    >>> answer_start("<think><answer>1</answer></think> r={2} <answer>{2}</answer>")
    40
    """
    # The same cuts as _outside_think, but blanked to spaces so positions stay those of `text`.
    close = text.find("</think>")
    if close != -1 and text.find("<think>", 0, close) == -1:
        text = " " * (close + len("</think>")) + text[close + len("</think>") :]
    if "<think>" in text:
        text = _THINK.sub(lambda m: " " * len(m.group()), text)
    close = text.rfind("</answer>")
    start = text.rfind("<answer>", 0, close) if close != -1 else -1
    if start == -1:
        start = text.rfind("\\boxed{")
    return len(text) if start == -1 else start


# ---------------------------------------------------------------- step rewards (parsing rules: cftrain.steps)


@lru_cache(maxsize=4096)
def _truth_from_json(text: str) -> steps.Truth:
    return steps.parse_truth(json.loads(text))


def _truths(truth: list[str | Mapping] | None, n: int) -> list[steps.Truth]:
    if truth is None or len(truth) != n:
        raise ValueError(
            "step rewards need the dataset's `truth` column: json.dumps(cftrain.steps.step_truth(record))"
        )
    return [_truth_from_json(t) if isinstance(t, str) else steps.parse_truth(t) for t in truth]


def _reasoning(completion: Completion) -> str | None:
    """The text before the final answer, or None when the completion is too long to be scored."""
    text = completion_text(completion)
    return None if len(text) > steps.MAX_CHARS else text[: answer_start(text)]


def _abduction_claim(text: str | None, truth: steps.Truth) -> frozenset | None:
    return None if text is None else steps.final_value(steps.abduction_claims(text, truth))


def abduction_reward(completions: list[Completion], truth: list[str] | None = None, **kwargs) -> list[float | None]:
    """1.0 when the last claim of the hidden values before the answer equals the consistent set; None for the
    ``interventional`` variant (its hidden values are given). Rules: `cftrain.steps`.

    >>> t = {"variant": "counterfactual", "entry": "f", "params": ["x", "r"], "latents": ["r"], "worlds": [[3], [6]],
    ...      "new_inputs": {"x": 8}, "intervention": {"x": 8}, "outcomes": [7, 7]}
    >>> abduction_reward(["consistent r={3, 6}", "r={3} r={6} r={3, 6}", "if r = 3, ... so r is 3 or 6"], [t] * 3)
    [1.0, 0.0, 1.0]
    """
    truths = _truths(truth, len(completions))
    out = []
    for c, t in zip(completions, truths):
        out.append(None if t.variant == "interventional" else float(_abduction_claim(_reasoning(c), t) == t.worlds))
    return out


def abduction_f1_reward(completions: list[Completion], truth: list[str] | None = None, **kwargs) -> list[float | None]:
    """Set F1 between the last claimed hidden values and the consistent set (graded `abduction`).

    >>> t = {"variant": "abduction", "entry": "f", "params": ["x", "r"], "latents": ["r"], "worlds": [[3], [6]],
    ...      "new_inputs": {"x": 8}, "intervention": {"x": 8}, "outcomes": []}
    >>> abduction_f1_reward(["r ∈ {3}", "r ∈ {1, ..., 6}"], [t, t])
    [0.6666666666666666, 0.0]
    """
    truths = _truths(truth, len(completions))
    out = []
    for c, t in zip(completions, truths):
        claim = None if t.variant == "interventional" else _abduction_claim(_reasoning(c), t)
        out.append(None if t.variant == "interventional" else set_f1(claim, t.worlds))
    return out


def _prediction(text: str | None, truth: steps.Truth) -> float:
    if text is None:
        return 0.0
    point = steps.intervention_point(text, truth)
    return 0.0 if point is None else steps.prediction_share(steps.predictions(text[point:], truth), truth)


def prediction_reward(completions: list[Completion], truth: list[str] | None = None, **kwargs) -> list[float | None]:
    """Share of the consistent worlds whose output at the changed inputs is predicted right, after the change is
    stated; None for the ``abduction`` variant (nothing to predict). Rules: `cftrain.steps`.

    >>> t = {"variant": "counterfactual", "entry": "f", "params": ["x", "r"], "latents": ["r"], "worlds": [[3], [6]],
    ...      "new_inputs": {"x": 8}, "intervention": {"x": 8}, "outcomes": [7, 5]}
    >>> prediction_reward(["x=8 f(8,3)=7 f(8,6)=5", "x=8 f(8,3)=7", "x=8 f(8,3)=7 f(8,6)=5 f(8,1)=2"], [t] * 3)
    [1.0, 0.5, 0.6666666666666666]
    """
    truths = _truths(truth, len(completions))
    return [None if t.variant == "abduction" else _prediction(_reasoning(c), t) for c, t in zip(completions, truths)]


def _steps(text: str | None, truth: steps.Truth) -> bool:
    if text is None:
        return False
    start = 0
    if truth.variant != "interventional":
        claims = steps.abduction_claims(text, truth)
        if steps.final_value(claims) != truth.worlds:
            return False
        start = claims[-1].end
        if truth.variant == "abduction":
            return True
    calls = steps.predictions(text, truth)
    if not calls or calls[0][0].start < start:
        return False
    first = calls[0][0].start
    return steps.intervention_ok(text, truth, start, first) and steps.prediction_share(calls, truth) == 1.0


def steps_reward(completions: list[Completion], truth: list[str] | None = None, **kwargs) -> list[float]:
    r"""1.0 when the variant's steps are all right and in order: abduction (not for ``interventional``), then the
    intervention, then the prediction (not for ``abduction``). Rules: `cftrain.steps`.

    >>> t = {"variant": "counterfactual", "entry": "f", "params": ["x", "r"], "latents": ["r"], "worlds": [[3], [6]],
    ...      "new_inputs": {"x": 8}, "intervention": {"x": 8}, "outcomes": [7, 5]}
    >>> steps_reward(["consistent r={3, 6}\nx=8\nf(8,3)=7 f(8,6)=5", "x=8 f(8,3)=7 f(8,6)=5 consistent r={3, 6}"], [t] * 2)
    [1.0, 0.0]
    """
    truths = _truths(truth, len(completions))
    return [float(_steps(_reasoning(c), t)) for c, t in zip(completions, truths)]


REWARDS: dict[str, Callable[..., list[float]]] = {
    "answer": answer_reward,
    "f1": f1_reward,
    "format": format_reward,
    "abduction": abduction_reward,
    "abduction_f1": abduction_f1_reward,
    "prediction": prediction_reward,
    "steps": steps_reward,
}
