"""Reward throughput and worst-case latency; prints a markdown table.

Run: `python scripts/bench_rewards.py`. Timings are the best of 3 with time.perf_counter.
Targets: >= 20,000 completions/s per reward (aim 100,000), scoring one 1 MB completion < 50 ms.
"""

import random
import time

from cftrain.rewards import answer_reward, f1_reward, format_reward

BATCH = 10_000
MB = 1_000_000
WORDS = "so r must be 2 because f(0, r) = 12 and with x = 5 the branch x * 8 * r gives 80 then mod 18".split()


def realistic_batch(rng: random.Random) -> tuple[list[str], list[list[int]]]:
    completions, answers = [], []
    for _ in range(BATCH):
        gold = sorted(rng.sample(range(-5, 40), rng.randint(1, 5)))
        reasoning = " ".join(rng.choices(WORDS, k=rng.randint(60, 120)))
        shown = gold if rng.random() < 0.5 else gold[:-1] + [99]
        completions.append(f"<think>{reasoning}</think>\n<answer>{{{', '.join(map(str, shown))}}}</answer>")
        answers.append(gold)
    return completions, answers


def worst_cases() -> dict[str, str]:
    ints = ", ".join(map(str, range(10**5, 10**5 + 2_000)))[:9_990]
    return {
        "1 MB prose, then a 10k-char set of distinct ints": "x " * (MB // 2 - 5_000) + f"<answer>{{{ints}}}</answer>",
        "1 MB set of ints in one answer": "<answer>" + "1, " * (MB // 3) + "</answer>",
        "1 MB of digits in one answer": "<answer>" + "7" * MB + "</answer>",
        "1 MB of trailing dots and spaces in an answer": "<answer>{1}" + ". " * (MB // 2) + "</answer>",
        "1 MB of unclosed <answer> tags": "<answer>" * (MB // 8),
        "1 MB of braces after \\boxed{": "\\boxed{" + "{}" * (MB // 2),
    }


def best_of_3(func, **columns) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        func(**columns)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    completions, answers = realistic_batch(random.Random(0))
    mean_chars = sum(map(len, completions)) / BATCH
    print(f"{BATCH} realistic completions, {mean_chars:.0f} chars on average\n")
    print("| measure | result | target |")
    print("|---|---|---|")
    for func in (answer_reward, f1_reward, format_reward):
        rate = BATCH / best_of_3(func, completions=completions, answer=answers)
        print(f"| {func.__name__} | {rate:,.0f} completions/s | >= 20,000 (aim 100,000) |")
    for name, text in worst_cases().items():
        ms = 1000 * max(
            best_of_3(func, completions=[text], answer=[[1]]) for func in (answer_reward, f1_reward, format_reward)
        )
        print(f"| {name}: slowest reward | {ms:.2f} ms | < 50 ms |")


if __name__ == "__main__":
    main()
