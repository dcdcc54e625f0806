"""Evaluation throughput on CPU: batched generation (16 prompts per call) against one prompt at a time.

Run: `python scripts/bench_eval.py [--items 32] [--max-new-tokens 64] [--threads 2]`. Same items, same greedy
settings, same model (`cftrain:tiny`, built offline on first use); prints a markdown table of items/s and the ratio.
Each setting runs once after a short warm-up; both produce the same completions (checked), so they do the same work.
"""

import argparse
import time

import torch

from cftrain.data import Source
from cftrain.evaluate import evaluate_records
from cftrain.models import load_model, load_tokenizer
from cftrain.prompts import PromptConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    records = list(Source("if_else", args.items, ["counterfactual"], seed=0).records("any"))
    model, tokenizer = load_model("cftrain:tiny"), load_tokenizer("cftrain:tiny")
    prompt = PromptConfig(template="chat")
    evaluate_records(model, tokenizer, records[:2], prompt, max_new_tokens=4, batch_size=2)  # warm-up

    results = {}
    for batch_size in (1, 16):
        start = time.perf_counter()
        _, rows = evaluate_records(
            model, tokenizer, records, prompt, max_new_tokens=args.max_new_tokens, batch_size=batch_size
        )
        results[batch_size] = (time.perf_counter() - start, rows)
    if [r["completion"] for r in results[1][1]] != [r["completion"] for r in results[16][1]]:
        print("warning: batched and one-at-a-time completions differ")

    tokens = sum(r["len"] for r in results[1][1])
    print(f"cftrain:tiny, {args.items} if_else items, greedy, max_new_tokens={args.max_new_tokens}, ", end="")
    print(f"{tokens} tokens generated, {args.threads} CPU threads\n")
    print("| batch size | seconds | items/s | tokens/s |")
    print("|---|---|---|---|")
    for batch_size, (seconds, _) in results.items():
        print(f"| {batch_size} | {seconds:.2f} | {args.items / seconds:.2f} | {tokens / seconds:.0f} |")
    print(f"\nbatched / one-at-a-time: {results[1][0] / results[16][0]:.1f}x")


if __name__ == "__main__":
    main()
