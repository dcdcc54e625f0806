"""GRPO arms from the demo's own SFT checkpoints, compared over seeds: the demo's GRPO stage (the answer reward) vs
other GRPO recipes from the same start, e.g. answer + the verified abduction reward (recipes/demo/grpo_steps.yaml).

    cftrain demo --out runs/demo-s0 --seed 0          # and --seed 1, --seed 2
    python scripts/demo_arms.py runs/demo-s0 runs/demo-s1 runs/demo-s2 --arm recipes/demo/grpo_steps.yaml

For each demo folder and each --arm recipe: GRPO from `<demo>/sft/final` with the demo's seed into
`<demo>/<recipe stem>` (skipped when its `final/` exists; an interrupted run resumes from its last checkpoint), then
the demo's own eval (its held-out ID suite, the same OOD items, greedy, the same prompt). Prints one table: per arm,
the mean and the sample standard deviation over seeds, then every seed's value; writes it to `<first demo>/arms.md`.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from cftrain import grpo
from cftrain.demo import evaluate, model_row
from cftrain.recipes import load_recipe

COLUMNS = {
    "id_cf_em": "ID CF EM %",
    "id_int_em": "ID interv EM %",
    "id_cf_abduction": "ID CF abduction %",
    "id_cf_right_reason": "ID CF right reason %",
    "ood_cf_em": "OOD CF EM %",
    "ood_int_em": "OOD interv EM %",
}


def run_arm(demo: Path, recipe_path: Path) -> Path:
    """Train and evaluate one arm in one demo folder; return the arm's folder."""
    summary = json.loads((demo / "summary.json").read_text())
    folder = demo / recipe_path.stem
    overrides = {"output_dir": str(folder), "seed": summary["seed"], "model.name_or_path": str(demo / "sft" / "final")}
    recipe = load_recipe(recipe_path, overrides)
    final = folder / "final"
    if not final.is_dir():
        grpo.main(recipe)
    if not (folder / "eval_ood" / "metrics.json").is_file():
        sft_prompt = load_recipe(demo / "sft" / "recipe.yaml").prompt
        evaluate(str(final), folder, Path(summary["eval"]["id_suite"]), summary["eval"]["ood_items"], sft_prompt)
    return folder


def cell(values: list[float | None]) -> str:
    values = [100 * v for v in values if v is not None]
    if not values:
        return "-"
    spread = f" ± {statistics.stdev(values):.1f}" if len(values) > 1 else ""
    return f"{statistics.fmean(values):.1f}{spread} ({' / '.join(f'{v:.0f}' for v in values)})"


def table(demos: list[Path], arms: list[str]) -> str:
    lines = ["| arm | seeds | " + " | ".join(COLUMNS.values()) + " |", "|---" * (len(COLUMNS) + 2) + "|"]
    for arm in arms:
        rows = [model_row(demo / arm) for demo in demos]
        cells = [cell([row[key] for row in rows]) for key in COLUMNS]
        lines.append(f"| {arm} | {len(rows)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("demos", nargs="+", type=Path, help="folders written by `cftrain demo`, one per seed")
    parser.add_argument("--arm", action="append", type=Path, default=[], help="a GRPO recipe (repeatable)")
    args = parser.parse_args()
    for demo in args.demos:
        if not (demo / "summary.json").is_file():
            parser.error(f"{demo}: no summary.json; run `cftrain demo --out {demo}` first")
    for recipe in args.arm:
        if not recipe.is_file():
            parser.error(f"--arm {recipe}: no such recipe file")
    for demo in args.demos:
        for recipe in args.arm:
            print(f"== {demo}: {recipe}", flush=True)
            run_arm(demo, recipe)
    arms = ["sft", "grpo", *(recipe.stem for recipe in args.arm)]
    text = f"Demo arms over {len(args.demos)} seeds: mean ± sample std (per seed)\n\n" + table(args.demos, arms)
    print(text)
    (args.demos[0] / "arms.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
