"""`cftrain study`: SmolLM2-135M-Instruct, base vs SFT vs SFT -> GRPO vs a matched-compute SFT-only control, in and
out of distribution and on external benchmarks, with resume. The stages are the ordinary recipes in
`recipes/smollm2-study/`; each is a `cftrain train` run, so it resumes from its last checkpoint.

    cftrain study [--out runs/study] [--seed 0] [--external DIR] [--stages all|sft,grpo,control,eval,report]
                  [--budget-minutes 180]

1. pilot   a few steps of SFT and GRPO and one eval batch (`<out>/pilot/`), timed; the plan is sized from them so
           the whole study fits `--budget-minutes`: the eval first (EVAL_SHARE), then the training time split by
           TRAIN_SHARES (SFT a quarter, GRPO and the control three eighths each), each stage at most an hour. The
           plan is written to `<out>/study.json` once; a rerun reuses it (a resumed stage keeps its step count).
2. sft     LoRA SFT on programmatic rationales for if_else (train structures); merged to `sft/merged`.
3. grpo    GRPO from `sft/merged` on if_else counterfactual answers (new items), for its planned minutes: the
           pilot's GRPO steps run from the base model to the token limit, so the stage times its own first steps
           and plans as many as fit (runs.Deadline, the learning-rate schedule rescaled to them).
4. control SFT from `sft/merged` on new rationale items for as much compute as GRPO took: max_steps = GRPO's training
           CPU seconds / SFT's CPU seconds per step (both from their metrics.jsonl; CPU time, not wall time, so
           pausing the study or sharing the cores does not change it). SFT + control = SFT + GRPO in compute.
5. eval    base, sft, grpo, control on the frozen suites (ID if_else: held-out structures; every OOD family),
           counterfactual and interventional, and the external suites when `--external DIR` holds
           `cladder/cladder-det-counterfactual.json` and `cruxeval/cruxeval.jsonl`; plus the pass@k alignment
           diagnostic of the SFT model (before RL). Greedy, the same prompts (the study's template) for every model.
6. report  `cftrain report` over the four models: EM tables, intervals, gap, alignment, curves.

A stage whose output exists (`final/`, an eval's `metrics.json`) is skipped. `study.json` holds the plan, the pilot
timings and per stage its wall time and steps.

Eval sizes (EVAL_SIZES, the most the plan uses): a 95% binomial interval has half-width ~1.96 sqrt(p(1-p)/n), +-10
points at n=100 and p=0.5, +-7 at n=200. ID: all 200 held-out items per variant (+-7); OOD: 100 per family x variant
(+-10 per cell, +-5 pooled over the 4 families); CLadder all 264 (+-6); CRUXEval-O and -I 200 each (+-7). When the
pilot's eval speed cannot fit these in EVAL_SHARE of the budget, the plan scales them down to EVAL_FLOOR at least and
writes the resulting half-widths into the plan. Differences between models are paired (same items), so their
intervals are narrower than these when the models agree on most items.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path

from cftrain.recipes import Recipe, load_recipe
from cftrain.report import kept_rows
from cftrain.yamlfile import read_yaml

RECIPES = Path(__file__).resolve().parent.parent / "recipes" / "smollm2-study"
STAGES = ("sft", "grpo", "control", "eval", "report")
MODELS = ("base", "sft", "grpo", "control")
# The report's paired differences: what SFT taught, what GRPO added, and GRPO against SFT for the same compute.
COMPARE = [("sft", "base"), ("grpo", "sft"), ("control", "sft"), ("grpo", "control")]
MODEL = "cftrain:smollm2"
VARIANTS = ["counterfactual", "interventional"]
EVAL_SIZES = {"id": 200, "ood": 100, "external": 200, "cladder": 264, "alignment": 32}
EXTERNAL_FILES = {"cladder": "cladder/cladder-det-counterfactual.json", "cruxeval": "cruxeval/cruxeval.jsonl"}
# The eval's floor: below these a cell's interval is wider than +-14 points (ID, external) / +-20 (each OOD cell).
EVAL_FLOOR = {"id": 50, "ood": 25, "external": 50, "cladder": 50, "alignment": 16}
EVAL_SHARE = 0.35  # of the budget after the pilot: four models x every suite, greedy
MAX_NEW_TOKENS = 256
EXTERNAL_NEW_TOKENS = 128  # CLadder's yes/no and CRUXEval's one value or input need no 256-token rationale
EVAL_BATCH = 64  # SmolLM2 greedy on 2 cores: 0.13 items/s at batch 16, 0.95 at batch 48 (128 tokens, load ~3)
# Of the training time: SFT is the shared start; GRPO and the control (matched to GRPO's compute) are compared.
TRAIN_SHARES = {"sft": 0.25, "grpo": 0.375, "control": 0.375}
GRPO_STEPS_BOUND = 4  # x the pilot's GRPO steps: the most the GRPO stage may plan in its minutes
PILOT_STEPS = 3  # the first step warms up and is not timed: 2 timed steps (a GRPO step on a loaded CPU: ~10 min)
STAGE_CAP_MINUTES = 60.0
MIN_STEPS = 2


# ---------------------------------------------------------------- planning (pure)


def parse_stages(spec: str) -> list[str]:
    """`all` or a comma list of stages, returned in pipeline order."""
    wanted = STAGES if spec.strip() == "all" else [s.strip() for s in spec.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in STAGES]
    if unknown or not wanted:
        raise ValueError(f"--stages {spec!r}: expected all or a comma list of {', '.join(STAGES)}")
    return [s for s in STAGES if s in wanted]


def eval_items(external: bool, sizes: dict[str, int] = EVAL_SIZES) -> dict[str, int]:
    """Generations per eval pass: per model (greedy, every suite) and for the alignment diagnostic (SFT only)."""
    ours = 2 * sizes["id"] + 2 * 4 * sizes["ood"]  # 2 variants; 4 OOD families
    # at EXTERNAL_NEW_TOKENS, half the token limit: counted as half an item each
    theirs = (
        math.ceil((sizes["cladder"] + 2 * sizes["external"]) * EXTERNAL_NEW_TOKENS / MAX_NEW_TOKENS) if external else 0
    )
    return {"per_model": ours + theirs, "alignment": sizes["alignment"] * (1 + 16)}


def fit_eval_sizes(
    items_per_s: float, minutes: float, external: bool, sizes: dict[str, int] = EVAL_SIZES
) -> dict[str, int]:
    """`sizes` scaled down (never up, never below EVAL_FLOOR) so that the eval of every model fits `minutes`."""
    items = eval_items(external, sizes)
    needed = len(MODELS) * items["per_model"] + items["alignment"]
    scale = min(1.0, items_per_s * minutes * 60 / needed)
    return {k: min(v, max(EVAL_FLOOR.get(k, 1), math.floor(v * scale))) for k, v in sizes.items()}


def half_width(n: int) -> float:
    """The 95% binomial interval's half-width in points at p=0.5, the widest: 1.96 sqrt(0.25 / n)."""
    return round(100 * 1.96 * math.sqrt(0.25 / n), 1)


def plan_study(
    pilot: dict[str, float], budget_minutes: float, external: bool, sizes: dict[str, int] = EVAL_SIZES
) -> dict:
    """Steps per stage and eval sizes from pilot timings (`sft_s_per_step`, `grpo_s_per_step`, `eval_items_per_s`,
    `pilot_s`).

    The eval gets EVAL_SHARE of the budget left after the pilot, its sizes scaled down to fit (`fit_eval_sizes`);
    the rest is split by TRAIN_SHARES between SFT, GRPO and the control, each capped at an hour. GRPO's steps are
    an upper bound: the pilot times GRPO from the base model, whose completions run to the token limit, so the GRPO
    stage plans its own steps from its first measured steps to fit `minutes["grpo"]` (runs.Deadline). The control's
    steps here are an estimate: the study sets them from GRPO's measured compute.
    """
    if budget_minutes <= 0:
        raise ValueError(f"--budget-minutes must be > 0; got {budget_minutes}")
    for key in ("sft_s_per_step", "grpo_s_per_step", "eval_items_per_s"):
        if not pilot.get(key, 0) > 0:
            raise ValueError(f"pilot: {key} must be > 0; got {pilot.get(key)}")
    left = budget_minutes - pilot.get("pilot_s", 0.0) / 60
    sizes = fit_eval_sizes(pilot["eval_items_per_s"], EVAL_SHARE * left, external, sizes)
    items = eval_items(external, sizes)
    eval_minutes = (len(MODELS) * items["per_model"] + items["alignment"]) / pilot["eval_items_per_s"] / 60
    train_minutes = max(0.0, left - eval_minutes)
    stage = {k: min(STAGE_CAP_MINUTES, share * train_minutes) for k, share in TRAIN_SHARES.items()}
    sft_steps = max(MIN_STEPS, math.floor(stage["sft"] * 60 / pilot["sft_s_per_step"]))
    grpo_steps = max(MIN_STEPS, math.floor(stage["grpo"] * 60 / pilot["grpo_s_per_step"]))
    control_steps = max(MIN_STEPS, round(stage["control"] * 60 / pilot["sft_s_per_step"]))
    minutes = {
        "sft": sft_steps * pilot["sft_s_per_step"] / 60,
        "grpo": stage["grpo"],
        "control": control_steps * pilot["sft_s_per_step"] / 60,
        "eval": eval_minutes,
    }
    return {
        "budget_minutes": budget_minutes,
        "steps": {"sft": sft_steps, "grpo": grpo_steps, "control": control_steps},
        "minutes": {k: round(v, 1) for k, v in minutes.items()},
        "total_minutes": round(sum(minutes.values()) + pilot.get("pilot_s", 0.0) / 60, 1),
        "fits": min(stage.values()) >= MIN_STAGE_MINUTES,
        "eval_items": items,
        "eval_sizes": sizes,
        "half_width_points": {k: half_width(n) for k, n in sizes.items() if k != "alignment"},
    }


MIN_STAGE_MINUTES = 5.0  # below this a stage trains too little to compare anything: the plan says so


def control_steps(grpo_train_s: float, sft_s_per_step: float) -> int:
    """The matched-compute control's steps: as many SFT steps as fit in the time GRPO trained."""
    if not (grpo_train_s > 0 and sft_s_per_step > 0):
        raise ValueError(f"control: need GRPO seconds and SFT s/step > 0; got {grpo_train_s}, {sft_s_per_step}")
    return max(MIN_STEPS, round(grpo_train_s / sft_s_per_step))


def train_timing(metrics_jsonl: str | Path) -> dict[str, float]:
    """Training seconds and steps of a run from its metrics.jsonl: per launch, last log time - start time, summed
    (a resumed run does not count the time it was down, nor the steps an interrupted launch trained after its last
    checkpoint: report.kept_rows). `s_per_step` is seconds / steps; `steady_s_per_step` leaves
    out the first logged step of the last launch (model loading, warm-up), for the pilot's few steps. `cpu_s` is the
    same span in CPU seconds of the training process (None for logs written before cftrain logged it): unlike wall
    time it does not grow when the run is paused or shares the cores with other jobs."""
    rows = kept_rows([json.loads(line) for line in Path(metrics_jsonl).read_text().splitlines() if line.strip()])
    launches: list[list[dict]] = []
    for row in (r for r in rows if "time" in r and "step" in r):
        if row.get("event") == "start" or not launches:
            launches.append([])
        launches[-1].append(row)
    if not launches or not any(len(rows_) > 1 for rows_ in launches):
        raise ValueError(f"{metrics_jsonl}: no timed training steps")
    seconds = sum(rows_[-1]["time"] - rows_[0]["time"] for rows_ in launches)
    steps = max(rows_[-1]["step"] for rows_ in launches)
    cpu = None
    if all("cpu_s" in r for rows_ in launches for r in rows_):
        cpu = round(sum(rows_[-1]["cpu_s"] - rows_[0]["cpu_s"] for rows_ in launches), 2)
    logged = [r for r in launches[-1] if r.get("event") != "start"]
    steady = seconds / steps
    if len(logged) >= 2 and logged[-1]["step"] > logged[0]["step"]:
        steady = (logged[-1]["time"] - logged[0]["time"]) / (logged[-1]["step"] - logged[0]["step"])
    return {"seconds": round(seconds, 2), "steps": steps, "s_per_step": round(seconds / steps, 3),
            "steady_s_per_step": round(steady, 3), "cpu_s": cpu,
            "cpu_s_per_step": None if cpu is None else round(cpu / steps, 3)}  # fmt: skip


def _trained_seconds(log: Path) -> float:
    """Wall seconds an interrupted stage already trained (0 when it never logged a step)."""
    try:
        return train_timing(log)["seconds"]
    except (FileNotFoundError, ValueError):  # not started, or killed before its first logged step
        return 0.0


def check_external(folder: str | Path | None) -> dict[str, str]:
    """The external suite specs (`cladder=PATH`, ...) for `cftrain eval`, from a folder holding both benchmarks."""
    if folder is None:
        return {}
    folder = Path(folder)
    missing = [name for name in EXTERNAL_FILES.values() if not (folder / name).is_file()]
    if missing:
        raise ValueError(f"--external {folder}: missing {', '.join(missing)}")
    cruxeval = str(folder / EXTERNAL_FILES["cruxeval"])
    return {"cladder": str(folder / EXTERNAL_FILES["cladder"]), "cruxeval-o": cruxeval, "cruxeval-i": cruxeval}


# ---------------------------------------------------------------- running


def _banner(title: str) -> float:
    print(f"\n=== {title} " + "=" * max(0, 70 - len(title)), flush=True)
    return time.time()


def stage_recipe(name: str, out: Path, seed: int, model: str, **overrides: object) -> Recipe:
    """A study recipe with its output folder, seed and base model set (and any dotted `overrides`)."""
    folder = "control" if name == "sft_control" else name
    values = {"output_dir": str(out / folder), "seed": seed, "model.name_or_path": model}
    return load_recipe(RECIPES / f"{name}.yaml", {**values, **overrides})


def _few_items(name: str, n: int = 64) -> dict[str, list]:
    """A `data.train` override with `n` items per source: the pilot times steps, it needs no more data."""
    raw = read_yaml(RECIPES / f"{name}.yaml")
    return {"data.train": [{**source, "n": n} for source in raw["data"]["train"]]}


class Study:
    """The state of one study folder: its plan and stage records in `study.json`, written after every stage."""

    def __init__(
        self, out: Path, seed: int, external: dict[str, str], budget_minutes: float, model: str, sizes: dict[str, int]
    ) -> None:
        self.out, self.seed, self.external, self.model, self.sizes = out, seed, external, model, sizes
        self.path = out / "study.json"
        self.state = json.loads(self.path.read_text()) if self.path.is_file() else {}
        self.state.setdefault("seed", seed)
        self.state.setdefault("model", model)
        self.state.setdefault("budget_minutes", budget_minutes)
        self.state.setdefault("stages", {})
        if self.state["seed"] != seed or self.state["model"] != model:
            raise ValueError(
                f"{self.path}: this folder holds a study of {self.state['model']} seed {self.state['seed']}; "
                f"use another --out for {model} seed {seed}"
            )

    def save(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.state, indent=2) + "\n")
        os.replace(tmp, self.path)

    def record(self, stage: str, started: float, **info: object) -> None:
        self.state["stages"][stage] = {**self.state["stages"].get(stage, {}), "wall_s": round(time.time() - started, 1),
                                       **info}  # fmt: skip
        self.save()

    # ---- pilot and plan

    def plan(self) -> dict:
        if "plan" in self.state:
            return self.state["plan"]
        pilot = self.state.get("pilot")
        if pilot is None:
            started = _banner("pilot: a few timed steps of SFT and GRPO, one eval batch")
            pilot = self.pilot()
            pilot["pilot_s"] = round(time.time() - started, 1)
        elif pilot.get("eval_batch") != EVAL_BATCH:  # a pilot timed at another eval batch: re-time the eval only
            _banner(f"pilot: re-timing the eval at batch {EVAL_BATCH}")
            pilot = {**pilot, **self.time_eval()}
        self.state["pilot"] = pilot
        self.state["plan"] = plan_study(pilot, self.state["budget_minutes"], bool(self.external), self.sizes)
        self.save()
        return self.state["plan"]

    def pilot(self) -> dict[str, float]:
        from cftrain import grpo, sft

        folder = self.out / "pilot"
        small = {"trainer.max_steps": PILOT_STEPS, "trainer.logging_steps": 1, "trainer.save_steps": 10_000}
        sft_recipe = stage_recipe("sft", folder, self.seed, self.model, **small, **_few_items("sft"))
        sft.main(sft_recipe, resume=False)
        grpo_recipe = stage_recipe("grpo", folder, self.seed, self.model, **small, **_few_items("grpo"))
        grpo.main(grpo_recipe, resume=False)
        return {
            "sft_s_per_step": train_timing(folder / "sft" / "metrics.jsonl")["steady_s_per_step"],
            "grpo_s_per_step": train_timing(folder / "grpo" / "metrics.jsonl")["steady_s_per_step"],
            **self.time_eval(),
        }

    def time_eval(self) -> dict[str, float]:
        """Greedy eval speed, one batch of the base model: it never writes </answer>, so every sequence runs to the
        token limit (the slowest case)."""
        from cftrain.evaluate import run_eval
        from cftrain.generation import GenerationSettings

        prompt = stage_recipe("sft", self.out / "pilot", self.seed, self.model).prompt
        folder = self.out / "pilot" / f"eval_batch{EVAL_BATCH}"
        shutil.rmtree(folder, ignore_errors=True)
        started = time.time()
        settings = GenerationSettings(max_new_tokens=MAX_NEW_TOKENS, batch_size=EVAL_BATCH, prompt=prompt)
        run_eval(model=self.model, adapter=None, suites=["if_else"], n=EVAL_BATCH // 2, variants=VARIANTS,
                 out=folder, settings=settings, progress=False)  # fmt: skip
        return {"eval_items_per_s": round(EVAL_BATCH / (time.time() - started), 3), "eval_batch": EVAL_BATCH,
                "load_average": round(os.getloadavg()[0], 2)}  # fmt: skip

    # ---- training stages

    def train(self, stage: str, recipe: Recipe, minutes: float | None = None) -> Path:
        """Train one stage (resuming); with `minutes`, its steps are planned to fit that wall time (runs.Deadline),
        less the time an interrupted launch already trained, and `trainer.max_steps` is only an upper bound."""
        from cftrain.recipes import train_function
        from cftrain.runs import Deadline

        final = Path(recipe.output_dir) / "final"
        if final.is_dir():
            print(f"{stage}: {final} exists, skipped", flush=True)
            return final
        steps = recipe.trainer["max_steps"]
        callbacks = []
        if minutes is not None:
            done = _trained_seconds(Path(recipe.output_dir) / "metrics.jsonl")
            callbacks.append(Deadline(time.time() + minutes * 60 - done, stage, probe=2))
        plan = f"up to {steps} steps in ~{minutes:.0f} min" if minutes is not None else f"{steps} steps"
        started = _banner(f"{stage}: {recipe.method}, {plan} -> {recipe.output_dir}")
        train_function(recipe.method)(recipe, resume=True, **({"callbacks": callbacks} if callbacks else {}))
        timing = train_timing(Path(recipe.output_dir) / "metrics.jsonl")
        self.record(stage, started, **timing)
        return final

    def merged_sft(self) -> Path:
        """The SFT adapter folded into the base: GRPO and the control train a new LoRA adapter on top of it."""
        from cftrain.models import merge_adapter

        merged, final = self.out / "sft" / "merged", self.out / "sft" / "final"
        if not final.is_dir():
            raise ValueError(f"{final} is missing: run the sft stage first (--stages sft)")
        if not (merged / "config.json").is_file():
            tmp = self.out / "sft" / ".merged.partial"
            shutil.rmtree(tmp, ignore_errors=True)  # left by an interrupted merge
            merge_adapter(final, tmp)
            os.replace(tmp, merged)
        return merged

    def control_steps(self) -> int:
        if "control_steps" in self.state:
            return self.state["control_steps"]
        grpo_log, sft_log = self.out / "grpo" / "metrics.jsonl", self.out / "sft" / "metrics.jsonl"
        if not (self.out / "grpo" / "final").is_dir():
            raise ValueError(f"{self.out / 'grpo' / 'final'} is missing: the control's length is GRPO's time")
        grpo, sft = train_timing(grpo_log), train_timing(sft_log)
        clock = "cpu_s" if grpo["cpu_s"] and sft["cpu_s"] else "seconds"  # CPU seconds: robust to a shared machine
        per_step = sft["cpu_s_per_step"] if clock == "cpu_s" else sft["s_per_step"]
        self.state["control_steps"] = control_steps(grpo[clock], per_step)
        self.state["control_basis"] = {"clock": clock, "grpo_train": grpo[clock], "sft_per_step": per_step}
        self.save()
        return self.state["control_steps"]

    # ---- eval and report

    def models(self) -> dict[str, str]:
        models = {"base": self.model}
        for name in MODELS[1:]:
            final = self.out / name / "final"
            if not final.is_dir():
                raise ValueError(f"{final} is missing: run the {name} stage before eval")
            models[name] = str(final)
        return models

    def evaluate(self, prompt) -> None:
        from cftrain.generation import GenerationSettings

        sizes = self.state["plan"]["eval_sizes"]
        started = _banner("eval: base, sft, grpo, control; ID, OOD, external; pass@k of sft")
        settings = GenerationSettings(samples=1, max_new_tokens=MAX_NEW_TOKENS, batch_size=EVAL_BATCH, temperature=0.0,
                                      seed=self.seed, prompt=prompt)  # fmt: skip
        jobs = [("eval_id", ["if_else"], sizes["id"]), ("eval_ood", ["ood"], sizes["ood"])]
        if self.external:
            specs = [f"{name}={path}" for name, path in self.external.items()]
            jobs += [("eval_cladder", specs[:1], sizes["cladder"]), ("eval_cruxeval", specs[1:], sizes["external"])]
        seconds = {}
        for name, model in self.models().items():
            begun = time.time()
            if name == "sft":  # pass@1/4/16 before RL, on its own items; oldest, so eval_id's numbers win the merge
                self._eval(model, self.out / "eval" / name / "eval_alignment", ["if_else"], sizes["alignment"],
                           ["counterfactual"], settings=settings, alignment=True, oldest=True)  # fmt: skip
            for folder, suites, n in jobs:
                ours = not folder.startswith(("eval_cladder", "eval_cruxeval"))
                job = settings if ours else replace(settings, max_new_tokens=EXTERNAL_NEW_TOKENS)
                self._eval(
                    model, self.out / "eval" / name / folder, suites, n, VARIANTS if ours else None, settings=job
                )
            seconds[name] = round(time.time() - begun, 1)
        self.record("eval", started, per_model_s=seconds)

    def _eval(self, model: str, out: Path, suites: list[str], n: int, variants, *, settings, oldest: bool = False,
              alignment: bool = False) -> None:  # fmt: skip
        from cftrain.evaluate import run_eval

        if (out / "metrics.json").is_file():
            print(f"eval: {out} exists, skipped", flush=True)
            return
        print(f"-- {model}: {' '.join(suites)} (n={n}) -> {out}", flush=True)
        run_eval(model=model, adapter=None, suites=suites, n=n, variants=variants, out=out, settings=settings,
                 alignment=alignment)  # fmt: skip
        if oldest:
            os.utime(out / "metrics.json", (0, 0))  # report.merge_evals: older evals are overridden by newer ones

    def report(self) -> Path:
        from cftrain.report import write_report

        started = _banner("report")
        folders = [self.out / "eval" / name for name in MODELS]
        runs = [self.out / name for name in MODELS[1:]]  # their metrics.jsonl: the training curves
        names = [*MODELS, *(f"{name} (training)" for name in MODELS[1:])]
        path = write_report([*folders, *runs], self.out / "report", names, COMPARE)
        self.record("report", started)
        return path


def print_plan(state: dict) -> None:
    pilot, plan = state["pilot"], state["plan"]
    print(
        f"pilot (load average {pilot['load_average']}): SFT {pilot['sft_s_per_step']} s/step, GRPO "
        f"{pilot['grpo_s_per_step']} s/step, eval {pilot['eval_items_per_s']} items/s (base model, slowest case)"
    )
    sizes = ", ".join(f"{k} {n} (+-{plan['half_width_points'].get(k, '-')})" for k, n in plan["eval_sizes"].items())
    print(f"eval items per cell (95% half-width in points at p=0.5): {sizes}")
    print("plan: " + ", ".join(f"{k} {v} steps ~{plan['minutes'][k]} min" for k, v in plan["steps"].items())
          + f", eval ~{plan['minutes']['eval']} min; total ~{plan['total_minutes']} of {plan['budget_minutes']} min")  # fmt: skip
    if not plan["fits"]:
        print(f"warning: under {MIN_STAGE_MINUTES:.0f} minutes per training stage; the comparison will say little")


def main(
    out: str | Path = "runs/study",
    seed: int = 0,
    external: str | Path | None = None,
    stages: str = "all",
    budget_minutes: float = 180.0,
    model: str = MODEL,
    eval_sizes: dict[str, int] = EVAL_SIZES,
) -> Path:
    """Run the chosen stages (see the module doc); return the report's path. `model` and `eval_sizes` are for tests."""
    chosen = parse_stages(stages)
    study = Study(Path(out), seed, check_external(external), budget_minutes, model, eval_sizes)
    study.plan()
    print_plan(study.state)
    steps = study.state["plan"]["steps"]
    sft_recipe = stage_recipe("sft", study.out, seed, model, **{"trainer.max_steps": steps["sft"]})
    if "sft" in chosen:
        study.train("sft", sft_recipe)
    if "grpo" in chosen:
        bound = {"trainer.max_steps": GRPO_STEPS_BOUND * steps["grpo"]}  # the stage plans its steps in its minutes
        grpo_recipe = stage_recipe("grpo", study.out, seed, str(study.merged_sft()), **bound)
        study.train("grpo", grpo_recipe, minutes=study.state["plan"]["minutes"]["grpo"])
    if "control" in chosen:
        control = {"trainer.max_steps": study.control_steps()}
        study.train("control", stage_recipe("sft_control", study.out, seed, str(study.merged_sft()), **control))
    if "eval" in chosen:
        study.evaluate(sft_recipe.prompt)
    report = study.out / "report" / "report.md"
    if "report" in chosen:
        report = study.report()
        print(f"\nreport: {report}")
    print("stage wall times: " + ", ".join(f"{k} {v['wall_s']:.0f}s" for k, v in study.state["stages"].items()))
    return report
