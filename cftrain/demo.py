"""`cftrain demo`: the whole pipeline on a laptop CPU, no network: build the embedded model, generate an easy
curriculum, SFT warm start (worked rationales for abduction and intervention, counterfactual items mostly answer-only),
GRPO from the SFT model on answer-only counterfactual items, evaluate base / SFT / GRPO in and out of distribution,
and write the report. The stages are the ordinary recipes in `recipes/demo/`.

    cftrain demo [--out runs/demo] [--minutes 15] [--seed 0]
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from cftrain.data import Source, read_jsonl, write_jsonl
from cftrain.datacard import data_card
from cftrain.recipes import load_recipe
from cftrain.runs import Deadline

RECIPES = Path(__file__).resolve().parent.parent / "recipes" / "demo"
MODEL = "cftrain:tiny"


def _stage(title: str) -> float:
    print(f"\n=== {title} " + "=" * max(0, 70 - len(title)), flush=True)
    return time.time()


# Measured on the developer machine (2 cores, idle; see the README) with the full plan: seconds per step of each stage
# and of the whole eval. They turn the SFT stage's first measured steps into an estimate of the whole demo here.
REFERENCE = {"sft_s_per_step": 0.40, "grpo_s_per_step": 1.98, "eval_s": 36.0}
EVAL_SHARE = 0.12  # of the budget, kept for eval and report (~5% on the developer machine)
SFT_SHARE = 0.67  # of the training time: SFT's share of the full plan's training seconds there
REDUCED = 0.5  # below this share of a stage's steps the demo says its results are not the full demo's


def _recipe(name: str, out: Path, seed: int, **overrides: str):
    """A demo recipe with its output folder and seed set."""
    return load_recipe(RECIPES / name, {"output_dir": str(out), "seed": seed, **overrides})


def matmul_gflops(size: int = 256, seconds: float = 0.3) -> float:
    """One-thread float32 matmul throughput: a figure that says how fast this machine is, printed with the timings."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        a, b = torch.randn(size, size), torch.randn(size, size)
        a @ b
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            a @ b
            n += 1
        return round(2 * size**3 * n / (time.perf_counter() - start) / 1e9, 1)
    finally:
        torch.set_num_threads(threads)


def _full_minutes(sft_s_per_step: float, sft_steps: int, grpo_steps: int, elapsed: float) -> float:
    """The whole demo's minutes on this machine at the full plan, from SFT's measured step time."""
    speed = sft_s_per_step / REFERENCE["sft_s_per_step"]  # > 1: slower than the developer machine
    rest = sft_steps * sft_s_per_step + grpo_steps * REFERENCE["grpo_s_per_step"] * speed + REFERENCE["eval_s"] * speed
    return (elapsed + rest) / 60


def main(out: str | Path = "runs/demo", minutes: float = 15.0, seed: int = 0) -> Path:
    from cftrain import grpo, sft
    from cftrain.models import resolve_model
    from cftrain.report import write_report

    if not 0 < minutes < float("inf"):
        raise ValueError(f"--minutes must be a number > 0; got {minutes}")
    out, began = Path(out), time.time()
    budget = minutes * 60
    train_end = began + (1 - EVAL_SHARE) * budget  # SFT and GRPO end by then; eval and report take the rest
    timings: dict[str, float] = {}
    gflops = matmul_gflops()
    print(f"budget {minutes:g} min; this machine: {gflops} GFLOP/s one-thread float32 matmul", flush=True)

    start = _stage("1/5 model: the embedded default, built offline")
    base = resolve_model(MODEL)
    print(base)
    timings["model"] = time.time() - start

    start = _stage("2/5 SFT warm start: sub-skill rationales, counterfactuals mostly answer-only")
    sft_recipe = _recipe("sft.yaml", out / "sft", seed)
    grpo_steps = load_recipe(RECIPES / "grpo.yaml").trainer["max_steps"]
    sft_end = start + SFT_SHARE * (train_end - start)
    sft_clock = SFTDeadline(sft_end, began, grpo_steps, minutes)
    sft_final = sft.main(sft_recipe, callbacks=[sft_clock])
    timings["sft"] = time.time() - start

    start = _stage("3/5 GRPO from the SFT model: counterfactual items, exact-set-match reward")
    grpo_recipe = _recipe("grpo.yaml", out / "grpo", seed, **{"model.name_or_path": str(sft_final)})
    grpo_clock = Deadline(train_end, "GRPO", probe=2)
    grpo_final = grpo.main(grpo_recipe, callbacks=[grpo_clock])
    timings["grpo"] = time.time() - start

    start = _stage("4/5 evaluate base / SFT / GRPO, in and out of distribution")
    # ID: held-out items of the training distribution, on program structures training never saw.
    (out / "data").mkdir(parents=True, exist_ok=True)
    easy = sft_recipe.data.train[0].knobs
    id_suite = out / "data" / "id_heldout.jsonl"
    scale = min(1.0, minutes / 15.0)  # a small budget evaluates fewer items
    id_items, ood_items = max(10, round(100 * scale)), max(2, round(10 * scale))
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
        evaluate(models[name], folder, id_suite, ood_items, prompt)
    timings["eval"] = time.time() - start

    start = _stage("5/5 report")
    report = write_report(list(folders.values()), out / "report", list(folders))
    timings["report"] = time.time() - start
    summary = {**_summary(folders, timings), "id_heldout_overlap": id_card["overlap"], "seed": seed}
    summary["eval"] = {"id_suite": str(id_suite), "ood_items": ood_items}
    summary["budget"] = {
        "minutes": minutes, "wall_minutes": round((time.time() - began) / 60, 2), "machine_gflops": gflops,
        "full_plan_minutes": None if sft_clock.full_minutes is None else round(sft_clock.full_minutes, 1),
        "sft": sft_clock.summary(), "grpo": grpo_clock.summary(),
        "reduced": any(c.steps_run < c.full for c in (sft_clock, grpo_clock)),
    }  # fmt: skip
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    _print_summary(summary)
    print(f"\nreport: {report}")
    return report


class SFTDeadline(Deadline):
    """The SFT stage's deadline, which also tells from SFT's measured steps what the full demo needs here."""

    def __init__(self, deadline: float, began: float, grpo_steps: int, minutes: float) -> None:
        super().__init__(deadline, "SFT", probe=10)
        self.began, self.grpo_steps, self.minutes = began, grpo_steps, minutes
        self.full_minutes: float | None = None

    def announce(self) -> None:
        super().announce()
        overhead = time.time() - self.began - self.steps_run * self.s_per_step  # model, data, trainer set-up
        self.full_minutes = _full_minutes(self.s_per_step, self.full, self.grpo_steps, overhead)
        print(f"the full demo needs ~{self.full_minutes:.0f} min on this machine; the budget is {self.minutes:g} min",
              flush=True)  # fmt: skip
        if self.planned < REDUCED * self.full:
            print(f"warning: this machine is too slow for the full demo in {self.minutes:g} min, so it runs a reduced "
                  f"plan (SFT {self.planned} of {self.full} steps) that learns less than the README's results; "
                  f"--minutes {math.ceil(self.full_minutes)} runs the full plan", flush=True)  # fmt: skip


def evaluate(model: str, folder: Path, id_suite: Path, ood_items: int, prompt) -> None:
    """The demo's eval of one model into `folder/eval_id` and `folder/eval_ood`: greedy, counterfactual and
    interventional, on the held-out ID suite and `ood_items` items per OOD family (scripts/demo_arms.py reuses it)."""
    from cftrain.evaluate import run_eval
    from cftrain.generation import GenerationSettings

    settings = GenerationSettings(max_new_tokens=200, batch_size=50, temperature=0.0, prompt=prompt)
    for suite, n, tag in ((str(id_suite), None, "id"), ("ood", ood_items, "ood")):
        run_eval(model=model, adapter=None, suites=[suite], n=n, variants=["counterfactual", "interventional"],
                 out=folder / f"eval_{tag}", settings=settings)  # fmt: skip


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
    return {"models": {name: model_row(folder) for name, folder in folders.items()}, "seconds": timings}


def model_row(folder: Path) -> dict:
    """One model's line of the summary, from its eval folders and training log."""
    id_m, ood_m = _metrics(folder, "id"), _metrics(folder, "ood")
    rewards = _rewards(folder)
    return {
        "id_cf_em": id_m.get("if_else/counterfactual/em"),
        "id_int_em": id_m.get("if_else/interventional/em"),
        "id_cf_reasoned": _reasoned(folder),
        "id_cf_abduction": id_m.get("if_else/counterfactual/abduction"),
        "id_cf_right_reason": id_m.get("if_else/counterfactual/right_reason"),
        "id_constant_baseline": id_m.get("if_else/counterfactual/constant_em"),
        "ood_cf_em": ood_m.get("ood/counterfactual/em"),
        "ood_int_em": ood_m.get("ood/interventional/em"),
        "reward_first": sum(rewards[:3]) / len(rewards[:3]) if rewards else None,
        "reward_last": sum(rewards[-3:]) / len(rewards[-3:]) if rewards else None,
    }


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
    b = summary["budget"]
    steps = ", ".join(f"{name.upper()} {b[name]['steps_run']} of {b[name]['steps_full']} steps"
                      for name in ("sft", "grpo"))  # fmt: skip
    plan = "a REDUCED plan: not the full demo's result" if b["reduced"] else "the full plan"
    print(f"budget {b['minutes']:g} min, wall time {b['wall_minutes']:.1f} min; ran {steps} ({plan}); machine: "
          f"{b['machine_gflops']} GFLOP/s one-thread matmul")  # fmt: skip
