"""`cftrain ...`: argument parsing and dispatch only. Heavy libraries are imported by the commands that need them.

Bad input of any kind is one line on stderr and exit code 2, before anything is written; outputs appear complete
or not at all (a temp sibling renamed into place); SIGTERM runs the same clean-up as Ctrl-C (exit code 143).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit code 2, no traceback."""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: `cftrain SUB: error: ...` and exit code 2, without the usage lines."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {one_line(message)}\n")


def one_line(message: object, limit: int = 1000) -> str:
    text = " ".join(str(message).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


@contextmanager
def bad_input() -> Iterator[None]:
    """Inside this block a ValueError is a validation error of the user's input (configs raise it)."""
    try:
        yield
    except ValueError as e:
        raise UsageError(str(e)) from None


def _writable_file(path: str) -> Path:
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise UsageError(f"--out {path}: folder {parent} does not exist or is not writable")
    if p.is_dir():
        raise UsageError(f"--out {path}: is a folder, expected a .jsonl file path")
    return p


def _writable_folder(path: str, flag: str = "--out") -> Path:
    """`path` is an existing writable folder, or can be created (its nearest existing ancestor is a writable folder)."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UsageError(f"{flag} {path}: exists and is not a folder")
    ancestor = next(a for a in (p.resolve(), *p.resolve().parents) if a.exists())
    if not ancestor.is_dir():
        raise UsageError(f"{flag} {path}: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {path}: folder {ancestor} is not writable")
    return p


@contextmanager
def staged(out: Path) -> Iterator[Path]:
    """Build a folder in a temp sibling and move it into `out` once complete: a failure, Ctrl-C or SIGTERM leaves
    `out` as it was (a SIGKILL leaves `.NAME.partial-PID-*`, removed by the next run for the same `out`)."""
    from cftrain.data import partial_prefix, remove_stale_partials

    out = out.resolve()
    ancestor = next((a for a in out.parents if a.exists()), out)
    if not os.access(ancestor, os.W_OK) and out.is_dir():
        ancestor = out  # `--out .` under a read-only parent: stage inside
    remove_stale_partials(ancestor / out.name)
    tmp = Path(tempfile.mkdtemp(prefix=partial_prefix(out), dir=ancestor))
    try:
        os.chmod(tmp, 0o755)
        yield tmp
        if out.is_dir():
            _move_into(tmp, out)
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _move_into(src: Path, dst: Path) -> None:
    for entry in src.iterdir():
        target = dst / entry.name
        if entry.is_dir() and target.is_dir():
            _move_into(entry, target)
        else:
            os.replace(entry, target)


def _positive(name: str, value: float | None) -> None:
    if value is not None and not (value > 0 and math.isfinite(value)):
        raise UsageError(f"{name} must be > 0; got {value}")


def _knobs(pairs: list[str]) -> dict[str, str]:
    knobs = {}
    for pair in pairs:
        if "=" not in pair:
            raise UsageError(f"--set {pair!r}: expected knob=value")
        key, value = pair.split("=", 1)
        knobs[key.strip()] = value.strip()
    return knobs


def cmd_families(args: argparse.Namespace) -> None:
    from cftrain.problems import FAMILIES

    for family in FAMILIES.values():
        print(f"{family.name}: {family.description}")
        print(f"  variants: {', '.join(family.variants)}")
        for name, default, help_ in family.knobs():
            print(f"  {name + '=' + str(default):<24} {help_}")


def cmd_generate(args: argparse.Namespace) -> None:
    from tqdm import tqdm

    from cftrain.data import write_jsonl
    from cftrain.problems import generate, get_family

    with bad_input():
        family = get_family(args.family)
        cfg = family.make_config(**_knobs(args.set))
        if args.n <= 0:
            raise UsageError(f"--n must be > 0; got {args.n}")
        if args.workers <= 0:
            raise UsageError(f"--workers must be >= 1; got {args.workers}")
        if args.variant != "all" and args.variant not in family.variants:
            raise UsageError(f"--variant {args.variant!r}: {family.name} offers {', '.join(family.variants)}, all")
    out = _writable_file(args.out)
    per_item = len(family.variants) if args.variant == "all" else 1
    records = generate(family, args.variant, args.n, args.seed, cfg, workers=args.workers)
    bar = tqdm(records, total=args.n * per_item, unit="rec", disable=args.n < 1000, file=sys.stderr)
    with bad_input():  # knobs no item can satisfy fail while generating
        write_jsonl(bar, out)
    print(f"wrote {args.n * per_item} records to {out}", file=sys.stderr)


def _source(spec: str, seed: int):
    from cftrain.data import Source

    parts = spec.split(":")
    if len(parts) not in (2, 3) or not parts[1].isdigit():
        raise UsageError(f"{spec!r}: expected FAMILY:N or FAMILY:N:VARIANT[,VARIANT]")
    variants = parts[2].split(",") if len(parts) == 3 else "all"
    return Source(parts[0], int(parts[1]), variants, seed)


def cmd_build_data(args: argparse.Namespace) -> None:
    from cftrain.data import build_mixture

    out = _writable_folder(args.out)
    with bad_input():
        if args.recipe:
            from cftrain.recipes import load_recipe

            data = load_recipe(args.recipe).data
            train, test = data.train, data.test
        else:
            train = [_source(s, args.seed) for s in args.train]
            test = [_source(s, args.seed + 1) for s in args.test]
        if not train and not test:
            raise UsageError("nothing to build: give --train/--test FAMILY:N or --recipe FILE")
        with staged(out) as tmp:
            manifest = build_mixture(train, test, tmp)
    print(json.dumps({k: manifest[k]["counts"] for k in ("train", "test")}, indent=2))
    for suite, overlap in manifest["suite_overlap"].items():
        if overlap["structures_shared"]:  # recorded in the manifest; said here too, never silently
            print(f"note: train shares {overlap['structures_shared']} structures with frozen suite {suite} "
                  f"({overlap['records_shared']} of its {overlap['records']} records)", file=sys.stderr)  # fmt: skip


def cmd_data_card(args: argparse.Namespace) -> None:
    from cftrain.data import records_or_suite
    from cftrain.datacard import data_card, render_card

    with bad_input():
        records = records_or_suite(args.records)
        against = records_or_suite(args.against, "--against") if args.against else None
        card = data_card(records, against)
    print(json.dumps(card, indent=2) if args.json else render_card(card))


def cmd_suites(args: argparse.Namespace) -> None:
    from cftrain.data import write_suites

    with staged(_writable_folder(args.out)) as tmp:
        manifest = write_suites(tmp)
    for path, entry in manifest["files"].items():
        print(f"{path}: {sum(entry['counts'].values())} records, sha256 {entry['sha256'][:12]}")


def cmd_tiny_model(args: argparse.Namespace) -> None:
    from cftrain.models import TINY_SIZES, build_tiny_model, default_corpus

    if args.size not in TINY_SIZES:
        raise UsageError(f"--size must be one of {', '.join(TINY_SIZES)}; got {args.size!r}")
    out = _writable_folder(args.out)
    with staged(out) as tmp:
        build_tiny_model(tmp, default_corpus(), size=args.size, seed=args.seed)
    print(out)


def _started(metrics: Path, size_before: int) -> bool:
    """Training began in this invocation: the metrics logger appended its `start` line."""
    return metrics.exists() and metrics.stat().st_size > size_before


def cmd_train(args: argparse.Namespace) -> None:
    from cftrain.recipes import check_run, load_recipe, parse_overrides, recipe_dict, train_function

    with bad_input():
        recipe = load_recipe(args.recipe, parse_overrides(args.overrides))
        # The same checks with and without --dry-run (a dry run does not require this machine's hardware).
        check_run(recipe, hardware=not args.dry_run)
    out = _writable_folder(recipe.output_dir, "output_dir")
    if args.dry_run:
        import yaml

        from cftrain.data import counts

        print(yaml.safe_dump(recipe_dict(recipe), sort_keys=False), end="")
        with bad_input():
            train = [r for s in recipe.data.train for r in s.records("train")]
        print(yaml.safe_dump({"data_manifest": {"train": counts(train)}}, sort_keys=False), end="")
        return
    train = train_function(recipe.method)
    created = not out.exists()
    metrics = out / "metrics.jsonl"
    size_before = metrics.stat().st_size if metrics.exists() else 0
    try:
        final = train(recipe, resume=not args.no_resume)
    except BaseException as e:
        if _started(metrics, size_before):
            raise  # a failure while training: the run folder stays, resumable from its checkpoints
        # Setup failed before the first step: remove the run folder this invocation created; bad data is bad input.
        if created and int(os.environ.get("RANK", "0")) == 0:
            shutil.rmtree(out, ignore_errors=True)
        if isinstance(e, ValueError):
            raise UsageError(str(e)) from None
        raise
    print(f"saved {final}", file=sys.stderr)
    _close_process_group()


def _close_process_group() -> None:
    """Destroy the process group of a launched multi-process run while the interpreter is still whole: left to
    interpreter exit, Gloo's worker threads can abort a process that has finished and saved (SIGABRT, "terminate
    called without an active exception"), failing `accelerate launch`."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def cmd_eval(args: argparse.Namespace) -> None:
    from cftrain.evaluate import run_eval
    from cftrain.generation import GenerationSettings
    from cftrain.models import check_model
    from cftrain.prompts import PromptConfig
    from cftrain.targets import default_out

    with bad_input():
        check_model(args.model, "--model")  # a cftrain: name, a folder, or a Hub id (cached when offline)
    if args.adapter and not Path(args.adapter).is_dir():
        raise UsageError(f"--adapter {args.adapter}: no such folder")
    for name in ("n", "samples", "max_new_tokens", "batch_size"):
        _positive(f"--{name.replace('_', '-')}", getattr(args, name))
    if not (args.temperature >= 0 and math.isfinite(args.temperature)):
        raise UsageError(f"--temperature must be >= 0; got {args.temperature}")
    out = _writable_folder(str(args.out or default_out(args.model, args.adapter)))
    with bad_input():
        settings = GenerationSettings(
            samples=args.samples or 1,
            max_new_tokens=args.max_new_tokens,
            batch_size=args.batch_size,
            temperature=args.temperature,
            backend=args.backend,
            seed=args.seed,
            prompt=PromptConfig(template=args.template) if args.template else None,
        )
        result = run_eval(
            model=args.model,
            adapter=args.adapter,
            suites=args.suite,
            n=args.n,
            variants=args.variants,
            out=out,
            settings=settings,
            alignment=args.alignment,
        )
    metrics = result["metrics"]
    groups = sorted(k[:-3] for k in metrics if k.endswith("/em") and "/all/" not in k and not k.startswith("all/"))
    for group in [*groups, "all/all"] if metrics else []:
        print(f"{group:<32} EM {100 * metrics[group + '/em']:5.1f}%  F1 {100 * metrics[group + '/f1']:5.1f}%")
    external = result.get("external", {}).get("metrics", {})
    for suite in sorted({k.split("/")[0] for k in external}):
        baseline = external.get(f"{suite}/constant_em")
        constant = f"  (constant answer {100 * baseline:.1f}%)" if baseline is not None else ""
        print(f"{suite:<32} EM {100 * external[suite + '/em']:5.1f}%{constant}")
    print(f"wrote {out / 'metrics.json'} and {out / 'samples.jsonl'}", file=sys.stderr)


def cmd_report(args: argparse.Namespace) -> None:
    from cftrain.report import write_report

    out = _writable_folder(args.out)
    compare = [tuple(pair.split(":")) for pair in args.compare or []]
    if any(len(pair) != 2 or not all(pair) for pair in compare):
        raise UsageError(f"--compare takes A:B (two model names: A minus B); got {' '.join(args.compare)}")
    with bad_input(), staged(out) as tmp:
        write_report(args.dirs, tmp, args.names, compare or None)
    print(out / "report.md")


def cmd_merge(args: argparse.Namespace) -> None:
    from cftrain.models import DTYPES, merge_adapter

    if not (Path(args.adapter) / "adapter_config.json").is_file():
        raise UsageError(f"--adapter {args.adapter}: no adapter_config.json there, not a LoRA adapter folder")
    if args.dtype not in DTYPES:
        raise UsageError(f"--dtype must be one of {', '.join(DTYPES)}; got {args.dtype!r}")
    out = _writable_folder(args.out)
    with bad_input(), staged(out) as tmp:
        merge_adapter(args.adapter, tmp, args.dtype)
    print(out)


def cmd_distill(args: argparse.Namespace) -> None:
    from cftrain.data import write_jsonl
    from cftrain.distill import provenance, sample_teacher, verified_traces
    from cftrain.models import check_model
    from cftrain.problems import generate, get_family
    from cftrain.prompts import PromptConfig

    for name in ("n", "samples", "max_new_tokens"):
        _positive(f"--{name.replace('_', '-')}", getattr(args, name))
    if not (args.temperature >= 0 and math.isfinite(args.temperature)):
        raise UsageError(f"--temperature must be >= 0; got {args.temperature}")
    url = args.teacher.startswith(("http://", "https://"))
    with bad_input():
        if not url:
            check_model(args.teacher, "--teacher")
        family = get_family(args.family)
        records = list(generate(family, args.variant, args.n, args.seed, family.make_config(**_knobs(args.set))))
        prompt = PromptConfig(args.template, scaffold=args.scaffold)
    out = _writable_file(args.out)
    with bad_input():  # a refused URL or a failing endpoint is one line, exit 2
        texts = sample_teacher(args.teacher, records, prompt, samples=args.samples, temperature=args.temperature,
                               max_new_tokens=args.max_new_tokens, endpoint_model=args.endpoint_model,
                               allow_insecure=args.allow_insecure_http)  # fmt: skip
    kept = verified_traces(
        records, texts, provenance(args.teacher, args.samples, args.temperature, args.max_new_tokens)
    )
    write_jsonl(kept, out)
    print(f"kept {len(kept)}/{len(records)} records with a verified trace -> {out}", file=sys.stderr)


def cmd_demo(args: argparse.Namespace) -> None:
    from cftrain.demo import main as demo

    _positive("--minutes", args.minutes)
    _writable_folder(args.out)
    demo(args.out, args.minutes, args.seed)


def cmd_study(args: argparse.Namespace) -> None:
    from cftrain.study import check_external, parse_stages
    from cftrain.study import main as study

    _positive("--budget-minutes", args.budget_minutes)
    with bad_input():
        parse_stages(args.stages)
        check_external(args.external)
    _writable_folder(args.out)
    with bad_input():  # a study folder of another seed or model, a stage run before the one it needs
        study(args.out, args.seed, args.external, args.stages, args.budget_minutes)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="cftrain", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("families", help="list families, variants and knobs")
    p.set_defaults(fn=cmd_families, parser=p)

    p = sub.add_parser("generate", help="write records of one family to a .jsonl file")
    p.add_argument("--family", required=True)
    p.add_argument("--variant", default="counterfactual", help="counterfactual | interventional | abduction | all")
    p.add_argument("--n", type=int, required=True, help="number of items")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output .jsonl path")
    p.add_argument("--set", action="append", default=[], metavar="KNOB=VALUE", help="family knob override")
    p.add_argument("--workers", type=int, default=1, help="processes generating items (same output for any number)")
    p.set_defaults(fn=cmd_generate, parser=p)

    p = sub.add_parser("build-data", help="build a train/test mixture folder with a manifest")
    p.add_argument("--train", action="append", default=[], metavar="FAMILY:N[:VARIANTS]")
    p.add_argument("--test", action="append", default=[], metavar="FAMILY:N[:VARIANTS]")
    p.add_argument("--recipe", help="take the mixture from a recipe's data block instead")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(fn=cmd_build_data, parser=p)

    p = sub.add_parser("data-card", help="per family x variant: answer sizes, shortcut baselines, structure overlap")
    p.add_argument("records", metavar="FILE|SUITE", help="a records .jsonl, or a suite: id | ood | all | FAMILY")
    p.add_argument("--against", metavar="TRAIN", help="training records (file or suite): share of shared structures")
    p.add_argument("--json", action="store_true", help="print the card as JSON")
    p.set_defaults(fn=cmd_data_card, parser=p)

    p = sub.add_parser("suites", help="regenerate the frozen evaluation suites")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "data"))
    p.set_defaults(fn=cmd_suites, parser=p)

    p = sub.add_parser("tiny-model", help="build the embedded default model offline")
    p.add_argument("--out", required=True)
    p.add_argument("--size", default="tiny", help="micro | tiny | small")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(fn=cmd_tiny_model, parser=p)

    p = sub.add_parser("demo", help="the whole pipeline on the embedded model: data, SFT, GRPO, eval, report")
    p.add_argument("--out", default="runs/demo", help="output folder")
    p.add_argument("--minutes", type=float, default=15.0, help="budget on 2 CPU cores; scales the step counts")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(fn=cmd_demo, parser=p)

    p = sub.add_parser("study", help="SmolLM2: base vs SFT vs GRPO vs matched-compute SFT, eval and report, resumable")
    p.add_argument("--out", default="runs/study", help="output folder (rerun the same command to resume)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--external", metavar="DIR", help="folder with cladder/ and cruxeval/ (the external benchmarks)")
    p.add_argument("--stages", default="all", help="all, or a comma list of sft,grpo,control,eval,report")
    p.add_argument("--budget-minutes", type=float, default=180.0, help="whole study on this machine; sizes the steps")
    p.set_defaults(fn=cmd_study, parser=p)

    p = sub.add_parser("merge", help="fold a LoRA adapter into its base model (a plain full checkpoint)")
    p.add_argument("--adapter", required=True, help="adapter folder (e.g. runs/x/final)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--dtype", default="auto", help="auto | float32 | bfloat16 | float16")
    p.set_defaults(fn=cmd_merge, parser=p)

    p = sub.add_parser("distill", help="sample a teacher and keep verified traces (SFT data)")
    p.add_argument("--teacher", required=True, help="model folder / Hub id / cftrain:NAME, or an http(s) /v1 URL")
    p.add_argument("--endpoint-model", default="default", help="model name sent to a URL endpoint")
    p.add_argument("--allow-insecure-http", action="store_true", help="send the key over http to a non-loopback URL")
    p.add_argument("--family", default="if_else")
    p.add_argument("--variant", default="counterfactual")
    p.add_argument("--n", type=int, required=True, help="number of items")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], metavar="KNOB=VALUE")
    p.add_argument("--samples", type=int, default=4, help="teacher samples per item")
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--max-new-tokens", type=int, default=1024)
    p.add_argument("--template", default="chat", help="plain | chat | compact")
    p.add_argument("--scaffold", default="none", help="none | abduct-act-predict")
    p.add_argument("--out", required=True, help="output .jsonl")
    p.set_defaults(fn=cmd_distill, parser=p)

    p = sub.add_parser("train", help="run a training recipe (sft | grpo | rloo | ppo)")
    p.add_argument("recipe", help="recipe YAML file")
    p.add_argument("--dry-run", action="store_true", help="print the resolved recipe and data manifest, then exit")
    p.add_argument("--no-resume", action="store_true", help="start fresh even if output_dir has checkpoints")
    p.set_defaults(fn=cmd_train, parser=p)

    p = sub.add_parser("eval", help="evaluate a model, adapter or checkpoint on the frozen suites")
    p.add_argument("--model", required=True, help="Hub id, cftrain:NAME, model folder, or <run>/final | checkpoint-N")
    p.add_argument("--adapter", help="a PEFT adapter folder on top of --model")
    p.add_argument(
        "--suite",
        nargs="+",
        default=["id", "ood"],
        help="id | ood | all | FAMILY | FILE.jsonl, and external suites (evaluation only): cladder=PATH, "
        "cruxeval-o=PATH, cruxeval-i=PATH (a local copy of the benchmark file) or NAME=hf:DATASET_ID",
    )
    p.add_argument("--n", type=int, help="first N items per family x variant (default: all)")
    p.add_argument("--variants", nargs="+", help="counterfactual | interventional | abduction (default: all)")
    p.add_argument("--samples", type=int, help="completions per item (default 1: greedy)")
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy; 1.0 is used when --samples > 1")
    p.add_argument("--alignment", action="store_true", help="also pass@1/4/16 at T=1.0 (model-task alignment)")
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=16, help="prompts per generate call")
    p.add_argument(
        "--template", choices=["plain", "chat", "compact"], help="override the prompt template of the recipe"
    )
    p.add_argument("--backend", default="auto", help="auto | transformers | vllm (auto: vllm on a GPU if installed)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.add_argument("--out", help="output folder (default: <run>/eval[-checkpoint-N] or evals/<model>)")
    p.set_defaults(fn=cmd_eval, parser=p)

    p = sub.add_parser("report", help="markdown tables + PNG plots from eval and run folders")
    p.add_argument("dirs", nargs="+", metavar="DIR", help="eval folders (metrics.json) or run folders")
    p.add_argument("--out", required=True, help="output folder for report.md and the PNGs")
    p.add_argument("--names", nargs="+", help="one display name per DIR (default: folder names)")
    p.add_argument("--compare", nargs="+", metavar="A:B",
                   help="paired differences A - B to table (default: each model minus the first)")  # fmt: skip
    p.set_defaults(fn=cmd_report, parser=p)

    return parser


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds like Ctrl-C: `finally` blocks remove temp files and staged folders


@contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """SIGTERM raises SystemExit(143) in the main thread while a command runs (when no one else handles it)."""
    install = threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) in (
        signal.SIG_DFL,
        None,
    )
    previous = signal.signal(signal.SIGTERM, _terminate) if install else None
    try:
        yield
    finally:
        if install:
            signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        # `train` takes free-form `--block.field value` overrides after the recipe.
        args, rest = parser.parse_known_args(argv)
        if rest and args.command != "train":
            args.parser.error(f"unrecognized arguments: {' '.join(rest)}")
    except SystemExit as e:  # argparse: --help (0) or a one-line error (2)
        return e.code if isinstance(e.code, int) else 2
    args.overrides = rest
    try:
        with _sigterm_unwinds():
            args.fn(args)
    except UsageError as e:
        print(f"cftrain {args.command}: error: {one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `cftrain families | head -1`: the reader left; say nothing
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return 141
    return 0


if __name__ == "__main__":
    sys.exit(main())
