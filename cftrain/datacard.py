"""The data card: what a set of records asks, per family x variant, and how much of it a shortcut answers.

    cftrain data-card FILE|SUITE [--against TRAIN] [--json]

Columns (every share is over the records of one family x variant):
- records; structures: distinct canonical program structures (`cftrain.structure`, recomputed from each
  program, never read from `meta`);
- set-valued: share whose answer has 2 or more values; mean size: mean number of values in the answer;
- constant: share answered by the group's most common answer set (the best constant answer);
- echo: share whose answer is exactly the observed output, `[observation.output]`;
- abduction needed: share whose answer differs from the answer ignoring the observation, computed by execution:
  for counterfactual records the outputs under the intervention over the whole hidden domain, for abduction
  records the whole domain of the hidden variable (interventional records reveal the hidden values: blank);
- overlap: with `against` (training records), the share of records whose structure appears there.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping

from cftrain.execution import structure_hash
from cftrain.problems.truth import answer_ignoring_observation

COLUMNS = (
    ("records", "records"),
    ("structures", "structures"),
    ("set_valued", "set-valued"),
    ("mean_answer_size", "mean size"),
    ("constant_baseline", "constant"),
    ("echo_baseline", "echo"),
    ("abduction_necessary", "abduction needed"),
    ("overlap", "overlap"),
)
_SHARES = frozenset({"set_valued", "constant_baseline", "echo_baseline", "abduction_necessary", "overlap"})


def record_structure(record: Mapping) -> str:
    """The canonical structure hash of a record's program (recomputed: a stored `meta.structure` may be stale)."""
    return structure_hash(record["program"], record.get("entry", "f"))


def structures(records: Iterable[Mapping]) -> set[str]:
    return {record_structure(r) for r in records}


def _share(flags: list[bool]) -> float | None:
    return round(sum(flags) / len(flags), 4) if flags else None


def data_card(records: Iterable[Mapping], against: Iterable[Mapping] | None = None) -> dict:
    """Per family x variant statistics of `records` (see the module docstring); `against`: training records.

    >>> rec = {"family": "f", "variant": "counterfactual", "program": "def f(x, r):\\n    return (x + r) % 3",
    ...        "latent_domain": {"r": [0, 5]}, "observation": {"inputs": {"x": 0}, "output": 1},
    ...        "intervention": {"x": 1}, "answer": [2]}
    >>> row = data_card([rec])["rows"][0]
    >>> row["records"], row["echo_baseline"], row["abduction_necessary"]
    (1, 0.0, 1.0)
    """
    groups: dict[tuple[str, str], list[Mapping]] = defaultdict(list)
    for record in records:
        groups[record["family"], record["variant"]].append(record)
    seen = structures(against) if against is not None else None
    rows = []
    all_structures: set[str] = set()
    for (family, variant), group in sorted(groups.items()):
        hashes = [record_structure(r) for r in group]
        all_structures.update(hashes)
        answers = [tuple(r["answer"]) for r in group]
        ignoring = [answer_ignoring_observation(r) for r in group]
        needed = [list(a) != i for a, i in zip(answers, ignoring) if i is not None]
        rows.append({
            "family": family,
            "variant": variant,
            "records": len(group),
            "structures": len(set(hashes)),
            "set_valued": _share([len(a) >= 2 for a in answers]),
            "mean_answer_size": round(sum(map(len, answers)) / len(answers), 4),
            "constant_baseline": round(Counter(answers).most_common(1)[0][1] / len(answers), 4),
            "echo_baseline": _share([list(a) == [r["observation"]["output"]] for a, r in zip(answers, group)]),
            "abduction_necessary": _share(needed),
            "overlap": _share([h in seen for h in hashes]) if seen is not None else None,
        })  # fmt: skip
    total = sum(row["records"] for row in rows)
    overlap = None
    if seen is not None and total:
        overlap = round(sum(row["overlap"] * row["records"] for row in rows) / total, 4)
    return {"records": total, "structures": len(all_structures), "overlap": overlap, "rows": rows}


def render_card(card: Mapping) -> str:
    """The card as a markdown table (shares in %; a blank cell is not defined for that variant)."""

    def cell(key: str, value: object) -> str:
        if value is None:
            return "-"
        if key in _SHARES:
            return f"{100 * value:.1f}%"
        return f"{value:.2f}" if isinstance(value, float) else str(value)

    lines = [
        "| family | variant | " + " | ".join(title for _, title in COLUMNS) + " |",
        "|---|---|" + "---:|" * len(COLUMNS),
    ]
    for row in card["rows"]:
        cells = [row["family"], row["variant"], *(cell(key, row[key]) for key, _ in COLUMNS)]
        lines.append("| " + " | ".join(cells) + " |")
    summary = f"{card['records']} records, {card['structures']} distinct structures"
    if card["overlap"] is not None:
        summary += f", {100 * card['overlap']:.1f}% of records on a structure of TRAIN"
    return "\n".join([*lines, "", summary])
