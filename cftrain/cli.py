"""`cftrain ...`: argument parsing and dispatch only. Heavy libraries are imported by the commands that need them."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit code 2, no traceback."""


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
        if args.variant != "all" and args.variant not in family.variants:
            raise UsageError(f"--variant {args.variant!r}: {family.name} offers {', '.join(family.variants)}, all")
    out = _writable_file(args.out)
    per_item = len(family.variants) if args.variant == "all" else 1
    records = generate(family, args.variant, args.n, args.seed, cfg)
    bar = tqdm(records, total=args.n * per_item, unit="rec", disable=args.n < 1000, file=sys.stderr)
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
        manifest = build_mixture(train, test, args.out)
    print(json.dumps({k: manifest[k]["counts"] for k in ("train", "test")}, indent=2))


def cmd_suites(args: argparse.Namespace) -> None:
    from cftrain.data import write_suites

    manifest = write_suites(args.out)
    for path, entry in manifest["files"].items():
        print(f"{path}: {sum(entry['counts'].values())} records, sha256 {entry['sha256'][:12]}")


def cmd_tiny_model(args: argparse.Namespace) -> None:
    from cftrain.models import build_tiny_model, default_corpus

    print(build_tiny_model(args.out, default_corpus(), size=args.size, seed=args.seed))


def cmd_train(args: argparse.Namespace) -> None:
    from cftrain.recipes import load_recipe, parse_overrides, recipe_dict

    with bad_input():
        recipe = load_recipe(args.recipe, parse_overrides(args.overrides))
    if args.dry_run:
        import yaml

        from cftrain.data import counts

        print(yaml.safe_dump(recipe_dict(recipe), sort_keys=False), end="")
        with bad_input():
            train = [r for s in recipe.data.train for r in s.records("train")]
        print(yaml.safe_dump({"data_manifest": {"train": counts(train)}}, sort_keys=False), end="")
        return
    from cftrain.recipes import trainer_config

    with bad_input():
        trainer_config(recipe)  # this machine can run it (bf16 needs a GPU, ...)
    if recipe.method == "sft":
        from cftrain.sft import main as train
    elif recipe.method == "ppo":
        from cftrain.ppo import main as train
    else:
        from cftrain.grpo import main as train
    final = train(recipe, resume=not args.no_resume)
    print(f"saved {final}", file=sys.stderr)


def cmd_eval(args: argparse.Namespace) -> None:
    from cftrain.evaluate import default_out, run_eval
    from cftrain.prompts import PromptConfig

    for path in (args.model, args.adapter):
        if path and (os.sep in path or path.startswith(".")) and not Path(path).exists():
            raise UsageError(f"{path}: no such folder")
    if args.n is not None and args.n <= 0:
        raise UsageError(f"--n must be > 0; got {args.n}")
    with bad_input():
        prompt = PromptConfig(template=args.template) if args.template else None
        out = Path(args.out) if args.out else default_out(args.model, args.adapter)
        result = run_eval(
            args.model,
            args.adapter,
            args.suite,
            args.n,
            args.variants,
            args.samples or 1,
            out,
            args.max_new_tokens,
            args.batch_size,
            args.temperature,
            prompt,
            args.backend,
            alignment=args.alignment,
            seed=args.seed,
        )
    metrics = result["metrics"]
    groups = sorted(k[:-3] for k in metrics if k.endswith("/em") and "/all/" not in k and not k.startswith("all/"))
    for group in [*groups, "all/all"]:
        print(f"{group:<32} EM {100 * metrics[group + '/em']:5.1f}%  F1 {100 * metrics[group + '/f1']:5.1f}%")
    print(f"wrote {out / 'metrics.json'} and {out / 'samples.jsonl'}", file=sys.stderr)


def cmd_report(args: argparse.Namespace) -> None:
    from cftrain.report import write_report

    with bad_input():
        path = write_report(args.dirs, args.out, args.names)
    print(path)


def cmd_merge(args: argparse.Namespace) -> None:
    from cftrain.models import merge_adapter

    with bad_input():
        print(merge_adapter(args.adapter, args.out, args.dtype))


def cmd_distill(args: argparse.Namespace) -> None:
    from cftrain.data import write_jsonl
    from cftrain.distill import provenance, sample_teacher, verified_traces
    from cftrain.problems import generate, get_family
    from cftrain.prompts import PromptConfig

    with bad_input():
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

    with bad_input():
        if args.minutes <= 0:
            raise UsageError(f"--minutes must be > 0; got {args.minutes}")
    demo(args.out, args.minutes, args.seed)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cftrain", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("families", help="list families, variants and knobs")
    p.set_defaults(fn=cmd_families)

    p = sub.add_parser("generate", help="write records of one family to a .jsonl file")
    p.add_argument("--family", required=True)
    p.add_argument("--variant", default="counterfactual", help="counterfactual | interventional | abduction | all")
    p.add_argument("--n", type=int, required=True, help="number of items")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output .jsonl path")
    p.add_argument("--set", action="append", default=[], metavar="KNOB=VALUE", help="family knob override")
    p.set_defaults(fn=cmd_generate)

    p = sub.add_parser("build-data", help="build a train/test mixture folder with a manifest")
    p.add_argument("--train", action="append", default=[], metavar="FAMILY:N[:VARIANTS]")
    p.add_argument("--test", action="append", default=[], metavar="FAMILY:N[:VARIANTS]")
    p.add_argument("--recipe", help="take the mixture from a recipe's data block instead")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(fn=cmd_build_data)

    p = sub.add_parser("suites", help="regenerate the frozen evaluation suites")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "data"))
    p.set_defaults(fn=cmd_suites)

    p = sub.add_parser("tiny-model", help="build the embedded default model offline")
    p.add_argument("--out", required=True)
    p.add_argument("--size", default="tiny", help="micro | tiny | small")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(fn=cmd_tiny_model)

    p = sub.add_parser("demo", help="the whole pipeline on the embedded model: data, SFT, GRPO, eval, report")
    p.add_argument("--out", default="runs/demo", help="output folder")
    p.add_argument("--minutes", type=float, default=15.0, help="budget on 2 CPU cores; scales the step counts")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(fn=cmd_demo)

    p = sub.add_parser("merge", help="fold a LoRA adapter into its base model (a plain full checkpoint)")
    p.add_argument("--adapter", required=True, help="adapter folder (e.g. runs/x/final)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--dtype", default="auto", help="auto | float32 | bfloat16 | float16")
    p.set_defaults(fn=cmd_merge)

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
    p.set_defaults(fn=cmd_distill)

    p = sub.add_parser("train", help="run a training recipe (sft | grpo | rloo | ppo)")
    p.add_argument("recipe", help="recipe YAML file")
    p.add_argument("--dry-run", action="store_true", help="print the resolved recipe and data manifest, then exit")
    p.add_argument("--resume", action="store_true", help="resume from the last checkpoint (the default)")
    p.add_argument("--no-resume", action="store_true", help="start fresh even if output_dir has checkpoints")
    p.set_defaults(fn=cmd_train)

    p = sub.add_parser("eval", help="evaluate a model, adapter or checkpoint on the frozen suites")
    p.add_argument("--model", required=True, help="Hub id, cftrain:NAME, model folder, or <run>/final | checkpoint-N")
    p.add_argument("--adapter", help="a PEFT adapter folder on top of --model")
    p.add_argument("--suite", nargs="+", default=["id", "ood"], help="id | ood | all | FAMILY | FILE.jsonl ...")
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
    p.set_defaults(fn=cmd_eval)

    p = sub.add_parser("report", help="markdown tables + PNG plots from eval and run folders")
    p.add_argument("dirs", nargs="+", metavar="DIR", help="eval folders (metrics.json) or run folders")
    p.add_argument("--out", required=True, help="output folder for report.md and the PNGs")
    p.add_argument("--names", nargs="+", help="one display name per DIR (default: folder names)")
    p.set_defaults(fn=cmd_report)

    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # `train` takes free-form `--block.field value` overrides after the recipe.
    args, rest = parser.parse_known_args(argv)
    if rest and args.command != "train":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.overrides = rest
    try:
        args.fn(args)
    except UsageError as e:
        print(f"cftrain {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
