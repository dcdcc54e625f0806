"""`cftrain demo`: the whole pipeline on a laptop CPU, no network: build the embedded model, generate an easy
curriculum, SFT warm start (worked rationales for abduction and intervention, counterfactual items mostly answer-only),
GRPO from the SFT model on answer-only counterfactual items, evaluate base / SFT / GRPO in and out of distribution,
and write the report. The stages are the ordinary recipes in `recipes/demo/`.

    cftrain demo [--out runs/demo] [--minutes 15] [--seed 0]
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from cftrain.data import Source, read_jsonl, write_jsonl
from cftrain.datacard import data_card
from cftrain.recipes import load_recipe

RECIPES = Path(__file__).resolve().parent.parent / "recipes" / "demo"
MODEL = "cftrain:tiny"


def _stage(title: str) -> float:
    print(f"\n=== {title} " + "=" * max(0, 70 - len(title)), flush=True)
    return time.time()


def _recipe(name: str, scale: float, out: Path, seed: int, **overrides: str):
    """A demo recipe with its output folder, seed and step count (scaled to the time budget) set."""
    path = RECIPES / name
    steps = max(2, round(load_recipe(path).trainer["max_steps"] * scale))
    return load_recipe(path, {"output_dir": str(out), "seed": seed, "trainer.max_steps": steps, **overrides})


def main(out: str | Path = "runs/demo", minutes: float = 15.0, seed: int = 0) -> Path:
    from cftrain import grpo, sft
    from cftrain.evaluate import run_eval
    from cftrain.models import resolve_model
    from cftrain.report import write_report

    if minutes <= 0:
        raise ValueError(f"--minutes must be > 0; got {minutes}")
    out = Path(out)
    scale = minutes / 15.0  # the recipes' step counts fit 15 minutes on 2 CPU cores
    timings: dict[str, float] = {}

    start = _stage("1/5 model: the embedded default, built offline")
    base = resolve_model(MODEL)
    print(base)
    timings["model"] = time.time() - start

    start = _stage("2/5 SFT warm start: sub-skill rationales, counterfactuals mostly answer-only")
    sft_recipe = _recipe("sft.yaml", scale, out / "sft", seed)
    sft_final = sft.main(sft_recipe)
    timings["sft"] = time.time() - start

    start = _stage("3/5 GRPO from the SFT model: counterfactual items, exact-set-match reward")
    grpo_recipe = _recipe("grpo.yaml", scale, out / "grpo", seed, **{"model.name_or_path": str(sft_final)})
    grpo_final = grpo.main(grpo_recipe)
    timings["grpo"] = time.time() - start

    start = _stage("4/5 evaluate base / SFT / GRPO, in and out of distribution")
    # ID: held-out items of the training distribution, on program structures training never saw.
    (out / "data").mkdir(parents=True, exist_ok=True)
    easy = sft_recipe.data.train[0].knobs
    id_suite = out / "data" / "id_heldout.jsonl"
    id_items, ood_items = max(10, round(100 * min(scale, 1.0))), max(2, round(10 * min(scale, 1.0)))
    held_out = Source("if_else", id_items, ["counterfactual", "interventional"], 10_000 + seed, easy)
    write_jsonl(held_out.records("test"), id_suite)
    # Checked, not assumed: the share of held-out records on a (canonical) structure that SFT or GRPO trained on.
    trained = [r for stage in ("sft", "grpo") for r in read_jsonl(out / stage / "data" / "train.jsonl")]
    id_card = data_card(read_jsonl(id_suite), against=trained)
    (out / "data" / "id_heldout_card.json").write_text(json.dumps(id_card, indent=2) + "\n")
    print(f"ID held-out: {id_card['structures']} structures, {100 * id_card['overlap']:.1f}% of records on a "
          "trained structure")  # fmt: skip
    prompt = sft_recipe.prompt  # base, SFT and GRPO all see the prompts the demo trains on
    folders = {"base": out / "base", "sft": out / "sft", "grpo": out / "grpo"}
    models = {"base": base, "sft": str(sft_final), "grpo": str(grpo_final)}
    for name, folder in folders.items():
        print(f"-- {name}")
        for suite, n in ((str(id_suite), None), ("ood", ood_items)):
            tag = "id" if suite.endswith(".jsonl") else "ood"
            run_eval(models[name], None, [suite], n, ["counterfactual", "interventional"], 1, folder / f"eval_{tag}",
                     max_new_tokens=200, batch_size=50, temperature=0.0, prompt=prompt)  # fmt: skip
    timings["eval"] = time.time() - start

    start = _stage("5/5 report")
    report = write_report(list(folders.values()), out / "report", list(folders))
    timings["report"] = time.time() - start
    summary = {**_summary(folders, timings), "id_heldout_overlap": id_card["overlap"]}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    _print_summary(summary)
    print(f"\nreport: {report}")
    return report


def _metrics(folder: Path, tag: str) -> dict:
    return json.loads((folder / f"eval_{tag}" / "metrics.json").read_text())["metrics"]


def _reasoned(folder: Path) -> float | None:
    """Share of ID counterfactual completions that reason before answering: an `<answer>` with text before it."""
    path = folder / "eval_id" / "samples.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    cf = [r["completion"].lstrip() for r in rows if r["variant"] == "counterfactual"]
    return sum(c.find("<answer>") > 0 for c in cf) / len(cf) if cf else None


def _rewards(folder: Path) -> list[float]:
    path = folder / "metrics.jsonl"
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [r["rewards/answer_reward/mean"] for r in rows if "rewards/answer_reward/mean" in r]


def _summary(folders: dict[str, Path], timings: dict[str, float]) -> dict:
    rows = {}
    for name, folder in folders.items():
        id_m, ood_m = _metrics(folder, "id"), _metrics(folder, "ood")
        rewards = _rewards(folder)
        rows[name] = {
            "id_cf_em": id_m.get("if_else/counterfactual/em"),
            "id_int_em": id_m.get("if_else/interventional/em"),
            "id_cf_reasoned": _reasoned(folder),
            "id_constant_baseline": id_m.get("if_else/counterfactual/constant_em"),
            "ood_cf_em": ood_m.get("ood/counterfactual/em"),
            "ood_int_em": ood_m.get("ood/interventional/em"),
            "reward_first": sum(rewards[:3]) / len(rewards[:3]) if rewards else None,
            "reward_last": sum(rewards[-3:]) / len(rewards[-3:]) if rewards else None,
        }
    return {"models": rows, "seconds": timings}


def _print_summary(summary: dict) -> None:
    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:5.1f}"

    print(
        "\n| model | ID CF EM % | ID CF reasoned % | ID interv EM % | OOD CF EM % | OOD interv EM % "
        "| answer reward first -> last |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, r in summary["models"].items():
        reward = "-" if r["reward_first"] is None else f"{r['reward_first']:.2f} -> {r['reward_last']:.2f}"
        cells = [pct(r["id_cf_em"]), pct(r["id_cf_reasoned"]), pct(r["id_int_em"]), pct(r["ood_cf_em"])]
        cells += [pct(r["ood_int_em"]), reward]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("\nwall time per stage: " + ", ".join(f"{k} {v:.0f}s" for k, v in summary["seconds"].items()))
