"""Does reasoning pay for an SFT checkpoint? Greedy EM on counterfactual items, forced into each answer mode.

    python scripts/demo_modes.py runs/demo/sft/final runs/demo/data/id_heldout.jsonl [--n 100]

The completion is started for the model: `Abduction:` (it must reason) or `<answer` (it must answer directly).
GRPO on answer-only counterfactual items (recipes/demo/grpo.yaml) makes reasoning the default only where the
reasoned EM is clearly higher. `x copy` is the share of reasoned completions whose `Intervention: x=...` line
copies the changed input from the question, the step the demo's SFT model failed at in 2 of 3 seeds with 900
counterfactual rationales.
"""

from __future__ import annotations

import argparse
import re

from transformers import AutoModelForCausalLM, AutoTokenizer

from cftrain.evaluate import score_completion
from cftrain.generation import generate, render_prompts
from cftrain.problems.records import read_records
from cftrain.prompts import PromptConfig

MODES = {"reasoned": ("Abduction:", 200), "direct": ("<answer", 20)}  # `<answer>{` is one token pair in training


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", help="a checkpoint folder trained on the compact template")
    parser.add_argument("suite", help="a JSONL file of records; its counterfactual items are used")
    parser.add_argument("--n", type=int, default=100)
    args = parser.parse_args()
    records = read_records(args.suite)
    records = [r for r in records if r["variant"] == "counterfactual"][: args.n]
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model)
    print(f"{args.model}: {len(records)} counterfactual items, greedy")
    print("| mode | EM % | x copy % |\n|---|---|---|")
    prompts = render_prompts(records, PromptConfig(template="compact"), tokenizer)
    for mode, (prefix, max_new) in MODES.items():
        texts, _ = generate(
            model, tokenizer, [p + prefix for p in prompts], "compact", max_new_tokens=max_new, batch_size=50
        )
        texts = [prefix + t[0] for t in texts]
        em = sum(score_completion(r, t)["em"] for t, r in zip(texts, records)) / len(records)
        copied = [re.search(r"Intervention: x=(-?\d+)", t) for t in texts]
        hits = sum(bool(m and int(m.group(1)) == r["intervention"]["x"]) for m, r in zip(copied, records))
        copy = f"{100 * hits / len(records):.0f}" if mode == "reasoned" else "-"
        print(f"| {mode} | {100 * em:.0f} | {copy} |")


if __name__ == "__main__":
    main()
