"""Evaluation throughput on CPU: one prompt at a time, batched (16 per call), and batched with each sequence stopped
at its first `</answer>` (the default since `generate(stop_at_answer=True)`), in one run.

Run: `python scripts/bench_eval.py [--model cftrain:tiny|PATH] [--items 32] [--max-new-tokens 64] [--threads 2]`.
Same items, same greedy settings; prints a markdown table of items/s, and how many items score differently with the
stop at `</answer>` (the reward reads the last answer block: a completion that writes a second one can change).
The randomly initialised `cftrain:tiny` never writes `</answer>`, so the stop only pays on a trained checkpoint
(`--model runs/demo/sft/final`, with its recipe's prompt: `--template compact`).
"""

import argparse
import time

import torch

from cftrain.data import Source
from cftrain.evaluate import evaluate_records
from cftrain.models import load_model, load_tokenizer
from cftrain.prompts import PromptConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="cftrain:tiny")
    parser.add_argument("--template", default="chat")
    parser.add_argument("--items", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    records = list(Source("if_else", args.items, ["counterfactual"], seed=0).records("any"))
    model, tokenizer = load_model(args.model), load_tokenizer(args.model)
    prompt = PromptConfig(template=args.template)
    evaluate_records(model, tokenizer, records[:2], prompt, max_new_tokens=4, batch_size=2)  # warm-up

    settings = {"1 at a time": (1, False), "16 per call": (16, False), "16 per call, stop at </answer>": (16, True)}
    results = {}
    for name, (batch_size, stop) in settings.items():
        start = time.perf_counter()
        _, rows = evaluate_records(model, tokenizer, records, prompt, max_new_tokens=args.max_new_tokens,
                                   batch_size=batch_size, stop_at_answer=stop)  # fmt: skip
        results[name] = (time.perf_counter() - start, rows)
    old, new = results["16 per call"][1], results["16 per call, stop at </answer>"][1]
    if [r["completion"] for r in results["1 at a time"][1]] != [r["completion"] for r in old]:
        print("warning: batched and one-at-a-time completions differ")
    changed = sum((a["em"], a.get("format")) != (b["em"], b.get("format")) for a, b in zip(old, new))

    print(f"{args.model}, {args.items} if_else items, greedy, max_new_tokens={args.max_new_tokens}, ", end="")
    print(f"{args.threads} CPU threads\n")
    print("| setting | seconds | items/s | tokens generated |")
    print("|---|---|---|---|")
    for name, (seconds, rows) in results.items():
        print(f"| {name} | {seconds:.2f} | {args.items / seconds:.2f} | {sum(r['len'] for r in rows)} |")
    print(f"\nbatched / one-at-a-time: {results['1 at a time'][0] / results['16 per call'][0]:.1f}x; ", end="")
    print(
        f"stop at </answer> / batched: {results['16 per call'][0] / results['16 per call, stop at </answer>'][0]:.1f}x"
    )
    print(f"items scored differently with the stop: {changed} of {len(old)}")


if __name__ == "__main__":
    main()
