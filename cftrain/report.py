"""Metrics files -> report.md + PNG plots. It renders; every number comes from metrics.json / metrics.jsonl.

`cftrain report DIR [DIR ...] --out OUT [--names ...]`. Each DIR is an eval folder (`metrics.json`, written by
`cftrain eval`) or a run folder (`metrics.jsonl` from training, and/or `eval*/metrics.json`, merged: see
`merge_evals`). The report shows, per model: exact match (and F1) per family x variant with in-distribution and
out-of-distribution families apart and the constant-answer baseline next to them, the interventional -
counterfactual gap, trace-step fractions, pass@k and the alignment diagnostic when present, and training curves.

Tests: `pytest tests/test_report.py`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from cftrain.data import ID_FAMILIES, OOD_FAMILIES, read_jsonl, slug
from cftrain.external import SUITES as EXTERNAL_SUITES
from cftrain.problems import VARIANTS

TRACE_COLUMNS = {
    "abduction": "abduction",
    "intervention": "intervention",
    "prediction": "prediction",
    "in_order": "in order",
    "right_reason": "right answer + right set",
    "planning_error": "planning err.*",
    "execution_error": "execution err.*",
}
_EVAL_KEY = re.compile(r"^eval/(?P<group>[^/]+)/(?P<variant>[^/]+)/em$")


@dataclass
class Entry:
    """One model's numbers: its evals' metrics.json (merged) and/or a run's metrics.jsonl."""

    name: str
    folder: Path
    eval_paths: list[Path] = field(default_factory=list)
    eval: dict = field(default_factory=dict)
    log: list[dict] = field(default_factory=list)
    generations: list[dict] = field(default_factory=list)  # each eval's generation settings, in eval_paths' order

    @property
    def metrics(self) -> dict:
        return self.eval.get("metrics", {})

    @property
    def external(self) -> dict:
        return self.eval.get("external", {}).get("metrics", {})


def merge_evals(evals: list[dict]) -> dict:
    """Several evals of one model (e.g. `eval_id/` and `eval_ood/`) as one: a later eval's numbers win, and the
    `all/...` numbers are dropped when the evals cover different families (each would describe only its part)."""
    merged = {**evals[-1], "metrics": {}}
    for evaluation in evals:
        merged["metrics"].update(evaluation.get("metrics", {}))
        if "alignment" in evaluation:
            merged["alignment"] = evaluation["alignment"]
        if "external" in evaluation:
            merged.setdefault("external", {"metrics": {}})["metrics"].update(evaluation["external"].get("metrics", {}))
    families = {frozenset(k.split("/")[0] for k in e.get("metrics", {}) if k.endswith("/em")) for e in evals}
    if len(families) > 1:
        merged["metrics"] = {k: v for k, v in merged["metrics"].items() if not k.startswith("all/")}
    return merged


def _read_metrics(path: Path) -> dict:
    """An eval's metrics.json, or ValueError naming the file (and line and column of a JSON syntax error)."""
    try:
        value = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: cannot read: {e}") from None
    if not isinstance(value, dict) or not isinstance(value.get("metrics", {}), dict):
        raise ValueError(f"{path}: expected a JSON object with a `metrics` mapping (written by `cftrain eval`)")
    return value


def load_entry(folder: str | Path, name: str | None = None) -> Entry:
    """Read an eval folder or a run folder; ValueError when it holds neither."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a folder")
    paths = [folder / "metrics.json"] if (folder / "metrics.json").is_file() else []
    # Oldest first, so that the newest eval of the same suites wins the merge.
    paths = paths or sorted(folder.glob("eval*/metrics.json"), key=lambda p: p.stat().st_mtime)
    log_path = folder / "metrics.jsonl"
    if not paths and not log_path.is_file():
        raise ValueError(f"{folder}: holds no metrics.json, eval*/metrics.json or metrics.jsonl")
    evals = [_read_metrics(p) for p in paths]
    evaluation = merge_evals(evals) if evals else {}
    generations = [e["generation"] for e in evals if isinstance(e.get("generation"), dict)]
    try:
        log = read_jsonl(log_path) if log_path.is_file() else []
    except json.JSONDecodeError as e:
        raise ValueError(f"{log_path}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{log_path}: cannot read: {e}") from None
    if not all(isinstance(row, dict) for row in log):
        raise ValueError(f"{log_path}: every line must be a JSON object")
    default = folder.resolve().parent.name if folder.name.startswith("eval") else folder.resolve().name
    return Entry(name or default, folder, paths, evaluation, kept_rows(log), generations)


def kept_rows(rows: list[dict]) -> list[dict]:
    """The rows of a metrics.jsonl that led to the final model. A launch that starts at step S (0 for a fresh start,
    the checkpoint's step on a resume) drops what earlier launches logged after S: those steps were trained, then
    lost with the interrupted process, and trained again.

    >>> [r["step"] for r in kept_rows([{"step": 0, "event": "start"}, {"step": 5}, {"step": 10},
    ...                                 {"step": 5, "event": "start"}, {"step": 10}])]
    [0, 5, 5, 10]
    """
    kept: list[dict] = []
    for row in rows:
        if row.get("event") == "start" and isinstance(row.get("step"), int):
            kept = [r for r in kept if not isinstance(r.get("step"), int | float) or r["step"] <= row["step"]]
        kept.append(row)
    return kept


def families(entries: list[Entry]) -> tuple[list[str], list[str]]:
    """Families present in any eval, split into in-distribution and out-of-distribution, in the suites' order."""
    present = {key.split("/")[0] for e in entries for key in e.metrics if key.endswith("/em")} - {"id", "ood", "all"}
    ood = [f for f in OOD_FAMILIES if f in present] + sorted(present - set(ID_FAMILIES) - set(OOD_FAMILIES))
    return [f for f in ID_FAMILIES if f in present], ood


def variants(entries: list[Entry]) -> list[str]:
    present = {key.split("/")[1] for e in entries for key in e.metrics if key.count("/") == 2}
    return [v for v in VARIANTS if v in present]


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [_row(header), _row(["---"] * len(header)), *(_row(r) for r in rows), ""]


# ---------------------------------------------------------------- markdown


def em_tables(entries: list[Entry]) -> list[str]:
    ind, ood = families(entries)
    columns = [(f, f"{f} (ID)") for f in ind]
    columns += [("id", "ID mean")] if ind else []
    columns += [(f, f"**{f} (OOD)**") for f in ood]
    columns += [("ood", "**OOD mean**")] if ood else []
    lines = [
        "## Exact match by family",
        "",
        "Cells: exact set match % / set F1 %. **Bold** columns are out-of-distribution families (never trained on).",
        "The *constant answer* row is the EM of guessing the single most common gold set for every item of that",
        "family x variant: an EM near it means nothing was learned.",
        "",
    ]
    shown = [e for e in entries if e.metrics]
    for variant in variants(entries):
        rows = []
        for e in shown:
            m = e.metrics
            rows.append(
                [
                    e.name,
                    *(f"{_pct(m.get(f'{g}/{variant}/em'))} / {_pct(m.get(f'{g}/{variant}/f1'))}" for g, _ in columns),
                ]
            )
        # One baseline row per distinct suite (usually one: every model saw the same items).
        baselines: dict[tuple, list[str]] = {}
        for e in shown:
            cells = tuple(
                "" if g in ("id", "ood") else _pct(e.metrics.get(f"{g}/{variant}/constant_em")) for g, _ in columns
            )
            baselines.setdefault(cells, []).append(e.name)
        for cells, names in baselines.items():
            label = "*constant answer*" if len(baselines) == 1 else f"*constant answer ({', '.join(names)})*"
            rows.append([label, *cells])
        # `all/*` is dropped when evals are merged, so count from the per-family item counts.
        n = sorted({sum(e.metrics.get(f"{f}/{variant}/n", 0) for f in ind + ood) for e in shown} - {0})
        lines += [f"### {variant} (items per model: {', '.join(map(str, n)) or '-'})", ""]
        lines += _table(["model", *(label for _, label in columns)], rows)
    return lines


def external_table(entries: list[Entry]) -> list[str]:
    """Benchmarks written by others (evaluation only): EM % / format % per model, and their baselines."""
    shown = [e for e in entries if e.external]
    suites = [s for s in EXTERNAL_SUITES if any(f"{s}/em" in e.external for e in shown)]
    if not suites:
        return []
    rows = [[e.name, *(f"{_pct(e.external.get(f'{s}/em'))} / {_pct(e.external.get(f'{s}/format'))}" for s in suites)]
            for e in shown]  # fmt: skip
    rows.append(["*constant answer*", *(_pct(shown[0].external.get(f"{s}/constant_em")) for s in suites)])
    n = [", ".join(sorted({str(e.external.get(f"{s}/n", "–")) for e in shown})) for s in suites]
    lines = [
        "## External benchmarks",
        "",
        "Written by others, never trained on. Cells: EM % / readable-answer %. CLadder is yes/no (constant answer",
        "50%); CRUXEval-O asks for f(input), CRUXEval-I for an input that f maps to the output (run in a sandbox).",
        f"Items per suite: {'; '.join(f'{s} {k}' for s, k in zip(suites, n))}.",
        "",
    ]
    return lines + _table(["model", *suites], rows)


def gap_table(entries: list[Entry]) -> list[str]:
    ind, ood = families(entries)
    groups = [*ind, *(["id"] if ind else []), *ood, *(["ood"] if ood else []), "all"]
    groups = [g for g in groups if any(f"{g}/gap" in e.metrics for e in entries)]
    if not groups:
        return []
    labels = [
        {"id": "ID mean", "ood": "**OOD mean**", "all": "all"}.get(g, f"**{g}**" if g in ood else g) for g in groups
    ]
    rows = [
        [e.name, *("–" if f"{g}/gap" not in e.metrics else f"{100 * e.metrics[f'{g}/gap']:+.1f}" for g in groups)]
        for e in entries
        if e.metrics
    ]
    return [
        "## Interventional − counterfactual gap",
        "",
        "EM points lost when the hidden value must be inferred (abduction) rather than given. Smaller is better.",
        "",
        *_table(["model", *labels], rows),
    ]


def trace_table(entries: list[Entry]) -> list[str]:
    ind, ood = families(entries)
    rows = []
    for e in entries:
        for group in [*ind, *ood, "all"]:
            prefix = f"{group}/counterfactual"
            if f"{prefix}/abduction" in e.metrics:
                rows.append([e.name, group, *(_pct(e.metrics.get(f"{prefix}/{k}")) for k in TRACE_COLUMNS)])
    if not rows:
        return []
    return [
        "## Reasoning steps in the traces (counterfactual variant, %)",
        "",
        "Rule-based detectors (cftrain/traces.py): does the trace state the consistent hidden values, name the",
        "changed input, and compute the predicted outputs after it? *Error columns are shares of the wrong answers:",
        "planning = a step missing or out of order, execution = steps in order but a wrong value.",
        "",
        *_table(["model", "family", *TRACE_COLUMNS.values()], rows),
    ]


def _ks(metrics: dict, prefix: str) -> list[int]:
    return sorted(int(key.rsplit("@", 1)[1]) for key in metrics if key.startswith(f"{prefix}/pass@"))


def pass_tables(entries: list[Entry]) -> list[str]:
    ind, ood = families(entries)
    lines = []
    sampled = [e for e in entries if len(_ks(e.metrics, "all/all")) > 1]
    sources = [("pass@k of the evaluation's own samples (all variants)", sampled, lambda e: e.metrics)]
    aligned = [e for e in entries if "alignment" in e.eval]
    sources.append(
        (
            "Model-task alignment: pass@k before RL (16 samples at temperature 1.0, all variants). "
            "High pass@16 with low pass@1 predicts that RL on this task will help; pass@16 near 0 means RL gets "
            "no reward signal",
            aligned,
            lambda e: e.eval["alignment"]["metrics"],
        )
    )
    for title, chosen, get in sources:
        if not chosen:
            continue
        ks = sorted({k for e in chosen for k in _ks(get(e), "all/all")})
        rows = [
            [e.name, g, *(_pct(get(e).get(f"{g}/all/pass@{k}")) for k in ks)]
            for e in chosen
            for g in [*ind, *ood, "id", "ood", "all"]
            if f"{g}/all/pass@1" in get(e)
        ]
        lines += [
            f"## {title.split(':')[0]}",
            "",
            f"{title}.",
            "",
            *_table(["model", "family", *(f"pass@{k} %" for k in ks)], rows),
        ]
    return lines


def sources_table(entries: list[Entry]) -> list[str]:
    rows = []
    for e in entries:
        # Each eval's own settings (a model's evals may differ, e.g. shorter answers for the external suites).
        texts = [
            f"{gen.get('samples')} sample(s), T={gen.get('temperature')}, {gen.get('max_new_tokens')} new tokens"
            for gen in e.generations
            if gen
        ]
        settings = "<br>".join(dict.fromkeys(texts)) or "–"
        prompt = e.eval.get("prompt", {})
        rows.append(
            [
                e.name,
                "<br>".join(f"`{p}`" for p in e.eval_paths or [e.folder / "metrics.jsonl"]),
                f"`{e.eval.get('base_model', '–')}`",
                f"`{e.eval.get('adapter') or '–'}`",
                f"{prompt.get('template', '–')}, scaffold {prompt.get('scaffold', '–')}" if prompt else "–",
                settings,
            ]
        )
    return ["## Models", "", *_table(["model", "numbers from", "base model", "adapter", "prompt", "generation"], rows)]


# ---------------------------------------------------------------- intervals


def _cells(row: dict) -> list[str]:
    """The table cells a sample row counts in: its suite (external), or family/variant and, OOD, the pooled ood/variant."""
    if "suite" in row:
        return [row["suite"]]
    pooled = [f"ood/{row['variant']}"] if row["family"] in OOD_FAMILIES else []
    return [f"{row['family']}/{row['variant']}", *pooled]


def item_scores(entry: Entry) -> dict[str, dict[str, float]]:
    """Per cell: item id -> EM (mean over its samples), from the samples.jsonl and external_samples.jsonl beside each
    of the entry's metrics.json. A later eval of a cell replaces an earlier one, as in `merge_evals`."""
    scores: dict[str, dict[str, float]] = {}
    for path in entry.eval_paths:
        cells: dict[str, dict[str, list[float]]] = {}
        for name in ("samples.jsonl", "external_samples.jsonl"):
            if (path.parent / name).is_file():
                for row in read_jsonl(path.parent / name):
                    for cell in _cells(row):
                        cells.setdefault(cell, {}).setdefault(row["id"], []).append(float(row["em"]))
        scores.update({cell: {i: sum(v) / len(v) for i, v in items.items()} for cell, items in cells.items()})
    return scores


def _cell_order(cell: str) -> tuple[int, int]:
    groups = [*ID_FAMILIES, *OOD_FAMILIES, "ood", *EXTERNAL_SUITES]
    group, _, variant = cell.partition("/")
    rank = groups.index(group) if group in groups else len(groups)
    return rank, VARIANTS.index(variant) if variant in VARIANTS else 0


def interval_tables(
    entries: list[Entry], pairs: list[tuple[str, str]] | None = None, n_boot: int = 2000, seed: int = 0
) -> list[str]:
    """EM with a 95% bootstrap interval per model x cell, and for each (a, b) in `pairs` (default: each model and
    the first) a − b on the items both answered, with a paired bootstrap interval, from the eval folders' sample
    files (cftrain.stats)."""
    from cftrain.stats import bootstrap_ci, paired_bootstrap

    scored = [(e, s) for e in entries if (s := item_scores(e))]
    if not scored:
        return []
    cells = sorted({c for _, s in scored for c in s}, key=lambda c: (_cell_order(c), c))
    scores = {e.name: s for e, s in scored}
    pairs = [(e.name, scored[0][0].name) for e, _ in scored[1:]] if pairs is None else pairs
    for pair in pairs:
        for name in pair:
            if name not in scores:
                raise ValueError(
                    f"compare {pair[0]}:{pair[1]}: no model {name!r} with samples; models: {', '.join(scores)}"
                )
    rows, diffs = [], []
    for cell in cells:
        row = [cell]
        for _, s in scored:
            values = list(s.get(cell, {}).values())
            lo, hi = bootstrap_ci(values, n_boot, seed) if values else (None, None)
            mean = sum(values) / len(values) if values else None
            row.append("–" if mean is None else f"{_pct(mean)} [{_pct(lo)}, {_pct(hi)}] (n={len(values)})")
        rows.append(row)
        diff_row = [cell]
        for a, b in pairs:
            sa, sb = scores[a].get(cell, {}), scores[b].get(cell, {})
            shared = sorted(set(sa) & set(sb))
            if not shared:
                diff_row.append("–")
                continue
            d, lo, hi = paired_bootstrap([sb[i] for i in shared], [sa[i] for i in shared], n_boot, seed)
            diff_row.append(f"{100 * d:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]")
        diffs.append(diff_row)
    lines = [
        "## Exact match with 95% intervals",
        "",
        f"EM % [95% percentile bootstrap over items, {n_boot} resamples] (items). `ood/<variant>` pools the OOD",
        "families. Then model minus model on the items both answered: a paired bootstrap (the same items",
        "resampled for both), so an interval that excludes 0 is a difference these items support.",
        "",
        *_table(["suite", *(e.name for e, _ in scored)], rows),
    ]
    if pairs:
        lines += _table(["suite", *(f"{a} − {b}" for a, b in pairs)], diffs)
    return lines


# ---------------------------------------------------------------- plots


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path, rect: tuple[float, float, float, float] = (0, 0, 1, 1)) -> Path:
    fig.tight_layout(rect=rect)
    fig.savefig(path, dpi=110)
    _plt().close(fig)
    return path


def _labels(groups: list[str], ind: list[str]) -> list[str]:
    return [f"{g}\n(ID)" if g in ind else f"{g}\n(OOD)" for g in groups]


def plot_em(entries: list[Entry], path: Path) -> Path | None:
    """Grouped bars of EM per family per model, one panel per variant; OOD shaded; constant baseline dashed."""
    plt = _plt()
    ind, ood = families(entries)
    groups, shown = [*ind, *ood], [e for e in entries if e.metrics]
    vs = variants(entries)
    if not groups or not shown or not vs:
        return None
    fig, axes = plt.subplots(1, len(vs), figsize=(1.2 + 1.3 * len(groups) * len(vs), 5), sharey=True, squeeze=False)
    width = 0.8 / len(shown)
    for ax, variant in zip(axes[0], vs):
        if ood:
            ax.axvspan(len(ind) - 0.5, len(groups) - 0.5, color="0.92", zorder=0)
            ax.text(len(ind) - 0.4, 103, "out of distribution →", fontsize=8, color="0.35", va="bottom")
        for i, e in enumerate(shown):
            values = [100 * e.metrics.get(f"{g}/{variant}/em", float("nan")) for g in groups]
            xs = [x - 0.4 + width * (i + 0.5) for x in range(len(groups))]
            ax.bar(xs, values, width, label=e.name, color=f"C{i}", zorder=2)
        for x, g in enumerate(groups):
            key = f"{g}/{variant}/constant_em"
            values = [e.metrics[key] for e in shown if key in e.metrics]
            if values:
                ax.hlines(
                    100 * max(values), x - 0.45, x + 0.45, colors="black", linestyles="--", linewidth=1.2, zorder=3
                )
        ax.set_xticks(range(len(groups)), _labels(groups, ind), fontsize=8)
        ax.set_ylim(0, 110)
        ax.set_title(f"{variant}")
        ax.grid(axis="y", alpha=0.3, zorder=1)
    axes[0][0].set_ylabel("exact set match (%)")
    axes[0][0].plot([], [], "k--", linewidth=1.2, label="constant-answer baseline")
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="lower center", ncol=len(shown) + 1, fontsize=9)
    fig.suptitle("Exact match per family and model (ID left, OOD shaded)")
    return _save(fig, path, rect=(0, 0.07, 1, 1))


def plot_gap(entries: list[Entry], path: Path) -> Path | None:
    """Grouped bars of the interventional − counterfactual EM gap per family per model."""
    plt = _plt()
    ind, ood = families(entries)
    groups = [g for g in [*ind, *ood] if any(f"{g}/gap" in e.metrics for e in entries)]
    shown = [e for e in entries if e.metrics]
    if not groups:
        return None
    fig, ax = plt.subplots(figsize=(1.5 + 1.4 * len(groups), 4.4))
    width = 0.8 / len(shown)
    if ood:
        ax.axvspan(
            sum(g in ind for g in groups) - 0.5, len(groups) - 0.5, color="0.92", zorder=0, label="OOD families"
        )
    for i, e in enumerate(shown):
        values = [100 * e.metrics.get(f"{g}/gap", float("nan")) for g in groups]
        ax.bar([x - 0.4 + width * (i + 0.5) for x in range(len(groups))], values, width, label=e.name, color=f"C{i}")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(groups)), _labels(groups, ind), fontsize=8)
    ax.set_ylabel("interventional EM − counterfactual EM\n(percentage points)")
    ax.set_title("Cost of abduction per family (lower is better)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


_REWARD_KEY = re.compile(r"rewards/(\w+?)(?:_reward)?/mean")


def _curve_key(key: str) -> bool:
    """Eval-hook keys worth a line: each family x variant, and the overall EM (the averages would crowd it)."""
    m = _EVAL_KEY.match(key)
    return bool(m) and m["group"] not in ("id", "ood") and (m["variant"] == "all") == (m["group"] == "all")


def plot_curves(entry: Entry, path: Path) -> Path | None:
    """Training curves of one run: reward, loss, and the eval hook's EM per family x variant, against step."""
    plt = _plt()
    log = [row for row in entry.log if "step" in row]
    panels = [key for key in ("reward", "loss") if any(key in row for row in log)]
    evals = sorted({k for row in log for k in row if _curve_key(k)})
    if evals:
        panels.append("eval")
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        if panel == "eval":
            groups = sorted({_EVAL_KEY.match(k)["group"] for k in evals})
            styles = dict(zip(VARIANTS, ("-", "--", ":")))
            for key in evals:
                m = _EVAL_KEY.match(key)
                points = [(row["step"], 100 * row[key]) for row in log if key in row]
                overall = m["group"] == "all"
                ax.plot(
                    *zip(*points),
                    marker="o",
                    markersize=3,
                    linestyle=styles.get(m["variant"], "-."),
                    color="black" if overall else f"C{groups.index(m['group']) % 10}",
                    label="overall" if overall else f"{m['group']} / {m['variant']}",
                )
            ax.set_ylabel("eval exact match (%)")
            ax.set_ylim(0, 100)
            ax.set_title("Held-out exact match during training")
            ax.legend(fontsize=7, ncol=2 if len(evals) > 6 else 1)
        else:
            points = [(row["step"], row[panel]) for row in log if panel in row]
            ax.plot(*zip(*points), color="C0" if panel == "reward" else "C3", label="total (weighted)")
            ax.set_ylabel("mean reward per completion" if panel == "reward" else "training loss")
            ax.set_title(f"Training {panel}")
            parts = sorted({k for row in log for k in row if _REWARD_KEY.fullmatch(k)}) if panel == "reward" else []
            for i, key in enumerate(parts):  # each reward function's own mean (unweighted): answer, abduction, ...
                part = [(row["step"], row[key]) for row in log if row.get(key) is not None]
                label = _REWARD_KEY.fullmatch(key)[1]
                ax.plot(*zip(*part), color=f"C{i + 1}", linewidth=0.9, linestyle="--", label=label)
            if parts:
                ax.legend(fontsize=7)
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
    fig.suptitle(f"Training curves: {entry.name}")
    return _save(fig, path)


def plot_alignment(entries: list[Entry], path: Path) -> Path | None:
    """pass@k against k for every model with an alignment diagnostic (all families and variants together)."""
    plt = _plt()
    aligned = [e for e in entries if "alignment" in e.eval]
    if not aligned:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for i, e in enumerate(aligned):
        m = e.eval["alignment"]["metrics"]
        ks = _ks(m, "all/all")
        ax.plot(ks, [100 * m[f"all/all/pass@{k}"] for k in ks], marker="o", color=f"C{i}", label=e.name)
    ax.set_xscale("log", base=2)
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_xlabel("k (samples per item, temperature 1.0)")
    ax.set_ylabel("pass@k (%)")
    ax.set_ylim(0, 100)
    ax.set_title("Model-task alignment before RL: pass@k")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


# ---------------------------------------------------------------- the report


def write_report(
    folders: list[str | Path],
    out: str | Path,
    names: list[str] | None = None,
    compare: list[tuple[str, str]] | None = None,
) -> Path:
    """Write `out`/report.md and its PNGs from eval/run folders; return the report's path. `compare` lists the
    (a, b) model names whose paired difference a − b is tabled (default: each model minus the first)."""
    if names and len(names) != len(folders):
        raise ValueError(f"--names: got {len(names)} names for {len(folders)} folders")
    entries = [load_entry(f, n) for f, n in zip(folders, names or [None] * len(folders))]
    seen: dict[str, int] = {}
    for e in entries:  # two folders both called `eval` must not share a column
        seen[e.name] = seen.get(e.name, 0) + 1
        if seen[e.name] > 1:
            e.name = f"{e.name} ({seen[e.name]})"
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lines = ["# cftrain report", ""]
    lines += sources_table(entries)
    plots = [plot_em(entries, out / "em_by_family.png"), plot_gap(entries, out / "gap.png")]
    plots.append(plot_alignment(entries, out / "alignment.png"))
    if any(e.metrics for e in entries):
        lines += em_tables(entries)
        if plots[0]:
            lines += ["![Exact match per family and model](em_by_family.png)", ""]
        lines += gap_table(entries)
        if plots[1]:
            lines += ["![Interventional minus counterfactual gap](gap.png)", ""]
        lines += trace_table(entries)
        lines += pass_tables(entries)
        if plots[2]:
            lines += ["![pass@k before RL](alignment.png)", ""]
    lines += external_table(entries)
    lines += interval_tables(entries, compare)
    curves = [(e, plot_curves(e, out / f"curves_{slug(e.name) or 'run'}.png")) for e in entries if e.log]
    if curves:
        lines += ["## Training curves", ""]
        for e, png in curves:
            # The last logged value of each (TRL's final row holds run totals, not step values).
            last = {
                k: row[k] for row in e.log for k in ("step", "reward", "loss") if isinstance(row.get(k), float | int)
            }
            summary = (
                ", ".join(f"last {k} {last[k]:.4g}" for k in ("reward", "loss") if k in last) or "no reward or loss"
            )
            lines += [f"**{e.name}**: {len(e.log)} log rows up to step {last.get('step', '–')}; {summary}.", ""]
            if png:
                lines += [f"![Training curves of {e.name}]({png.name})", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines).rstrip() + "\n")
    return path
