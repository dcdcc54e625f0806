"""Evaluation: score completions with the reward code, aggregate per family x variant -> metrics + samples.

Scoring and metrics live here: `score_completion` (the RL reward's own parser from `cftrain.rewards`, step
detectors from `cftrain.traces`), `metrics_from_samples` and `external_metrics`. `evaluate_records` generates on
records and scores them (the training-time eval hook calls it too). `run_eval` is `cftrain eval`: it resolves what
to evaluate (`cftrain.targets.resolve_target`: a base model, an adapter or a checkpoint, and the prompt format of the
checkpoint's `recipe.yaml`, so a model is evaluated on the prompts it was trained on), reads the suites
(`cftrain.data.resolve_suite`), generates as its `GenerationSettings` say (`cftrain.generation`: transformers or
vLLM), and writes

```
<out>/metrics.json            every number (`metrics`), plus model, adapter, prompt, suite checksums, settings
<out>/samples.jsonl           one row per completion; `metrics_from_samples(rows)` recomputes `metrics` exactly
<out>/alignment_samples.jsonl with --alignment: the sampled completions behind metrics["alignment"]
<out>/external_samples.jsonl  with external suites: their rows; `external_metrics(rows)` recomputes metrics["external"]
```

Metric keys are `<group>/<variant>/<metric>`: group is a family, `id`, `ood` or `all`; variant is one of the
record variants or `all`; metric is `n` (items), `em` (exact set match, the headline), `f1` (set F1), `format`
(share of readable answers), `len` (completion tokens, the stop token included), `pass@k` (k = 1, 2, 4, ...
<= samples, unbiased estimator), `constant_em` (family x variant only: EM of the best single answer set guessed
for every item) and the trace fractions of `cftrain.traces.trace_metrics`. `<group>/gap` is interventional EM
minus counterfactual EM, the paper's diagnostic for how much abduction costs. Rates are means over completions
(micro averages), pass@k a mean over items.

Tests: `pytest tests/test_evaluate.py`.
"""

from __future__ import annotations

import ast
import json
import math
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cftrain.data import ID_FAMILIES, OOD_FAMILIES, load_suite, resolve_suite, sha256_file, write_jsonl
from cftrain.external import load_external, score_items
from cftrain.generation import GenerationSettings, choose_backend, generate, generate_vllm, render_prompts
from cftrain.prompts import PromptConfig
from cftrain.rewards import exact_match, parse_answer, set_f1
from cftrain.targets import resolve_target
from cftrain.traces import analyse_trace, trace_metrics

ALIGNMENT_SAMPLES = 16


# ---------------------------------------------------------------- scoring


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c are correct (Chen et al. 2021): 1 - C(n-c, k) / C(n, k).

    Computed as a product, never with huge binomials.

    >>> round(pass_at_k(5, 2, 1), 6), pass_at_k(5, 2, 4), pass_at_k(5, 0, 5)
    (0.4, 1.0, 0.0)
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n; got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def pass_ks(samples: int) -> list[int]:
    """k = 1, 2, 4, ... up to `samples`."""
    return [2**i for i in range(int(math.log2(samples)) + 1)] if samples >= 1 else []


def score_completion(record: Mapping, completion: str) -> dict:
    """Scores of one completion: parsed answer, EM, F1, format validity, and the trace flags."""
    pred = parse_answer(completion)
    em = exact_match(pred, record["answer"])
    return {
        "answer": None if pred is None else sorted(pred),
        "gold": list(record["answer"]),
        "em": em,
        "f1": set_f1(pred, record["answer"]),
        "format": float(pred is not None),
        "trace": analyse_trace(record, completion, em == 1.0),
    }


def _scope(family: str) -> str | None:
    return "id" if family in ID_FAMILIES else "ood" if family in OOD_FAMILIES else None


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return math.fsum(values) / len(values)


def metrics_from_samples(rows: list[Mapping]) -> dict[str, float]:
    """Every metric, from sample rows alone (so metrics.json recomputes from samples.jsonl). Keys: module doc."""
    groups: dict[tuple[str, str], list[Mapping]] = defaultdict(list)
    for row in rows:
        family, variant = row["family"], row["variant"]
        for group in (family, _scope(family), "all"):
            if group is not None:
                groups[group, variant].append(row)
                groups[group, "all"].append(row)
    out: dict[str, float] = {}
    for (group, variant), members in groups.items():
        prefix = f"{group}/{variant}"
        items: dict[str, list[Mapping]] = defaultdict(list)
        for row in members:
            items[row["id"]].append(row)
        out[f"{prefix}/n"] = len(items)
        for metric in ("em", "f1", "format", "len"):
            out[f"{prefix}/{metric}"] = _mean(row[metric] for row in members)
        for k in pass_ks(min(map(len, items.values()))):
            out[f"{prefix}/pass@{k}"] = _mean(
                pass_at_k(len(samples), sum(s["em"] == 1.0 for s in samples), k) for samples in items.values()
            )
        for name, value in trace_metrics(members).items():
            out[f"{prefix}/{name}"] = value
        if variant != "all" and group not in ("id", "ood", "all"):
            golds = Counter(tuple(samples[0]["gold"]) for samples in items.values())
            out[f"{prefix}/constant_em"] = golds.most_common(1)[0][1] / len(items)
    for group in {g for g, _ in groups}:
        if (group, "interventional") in groups and (group, "counterfactual") in groups:
            out[f"{group}/gap"] = out[f"{group}/interventional/em"] - out[f"{group}/counterfactual/em"]
    return dict(sorted(out.items()))


def external_metrics(rows: Sequence[Mapping]) -> dict[str, float]:
    """Metrics of external suites' sample rows (`cftrain.external.score_items`), per suite: `<suite>/n` (items), `em`,
    `format` (means over completions), `pass@k` and `constant_em`.

    `constant_em` is the share of items whose gold answer is the suite's most common one, the EM of answering
    that constant everywhere (CLadder, CRUXEval-O; CRUXEval-I has none).
    """
    suites: dict[str, dict[str, list[Mapping]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        suites[row["suite"]][row["id"]].append(row)
    out: dict[str, float] = {}
    for suite, items in suites.items():
        members = [row for samples in items.values() for row in samples]
        out[f"{suite}/n"] = len(items)
        for metric in ("em", "format"):
            out[f"{suite}/{metric}"] = sum(row[metric] for row in members) / len(members)
        for k in pass_ks(min(map(len, items.values()))):
            out[f"{suite}/pass@{k}"] = sum(
                pass_at_k(len(samples), sum(s["em"] == 1.0 for s in samples), k) for samples in items.values()
            ) / len(items)
        if suite != "cruxeval-i":
            # CRUXEval-O golds are compared by value, so '1.0' and '1' are one answer
            key = (lambda g: repr(ast.literal_eval(g))) if suite == "cruxeval-o" else str
            golds = Counter(key(samples[0]["gold"]) for samples in items.values())
            out[f"{suite}/constant_em"] = golds.most_common(1)[0][1] / len(items)
    return dict(sorted(out.items()))


# ---------------------------------------------------------------- generating and scoring


def score(records: list[Mapping], prompts: list[str], texts: list[list[str]], counts: list[list[int]]) -> list[dict]:
    """Sample rows (one per completion) from generated texts; the order is records x samples."""
    rows = []
    for record, prompt, completions, lengths in zip(records, prompts, texts, counts, strict=True):
        for index, (completion, length) in enumerate(zip(completions, lengths, strict=True)):
            rows.append(
                {
                    "id": record["id"],
                    "family": record["family"],
                    "variant": record["variant"],
                    "sample": index,
                    "prompt": prompt,
                    "completion": completion,
                    "len": length,
                    **score_completion(record, completion),
                }
            )
    return rows


def evaluate_records(
    model, tokenizer, records: list[dict], prompt: PromptConfig, **generation: Any
) -> tuple[dict, list[dict]]:
    """Generate on `records` and score: (metrics, sample rows). Works on a plain or PEFT-wrapped model.

    `generation` are the keyword arguments of `generation.generate` (`max_new_tokens`, `batch_size`, `samples`,
    `temperature`, `progress`, `stop_at_answer`; defaults from `GenerationSettings`).
    """
    prompts = render_prompts(records, prompt, tokenizer)
    texts, counts = generate(model, tokenizer, prompts, prompt.template, **generation)
    rows = score(records, prompts, texts, counts)
    return metrics_from_samples(rows), rows


# ---------------------------------------------------------------- suites and run_eval


def external_prompt(prompt: PromptConfig) -> PromptConfig:
    """The prompt format for external items: the model's own template, but `compact` (which needs a program) falls
    back to `plain`, and no scaffold (its steps talk about hidden values)."""
    return replace(prompt, template="plain" if prompt.template == "compact" else prompt.template, scaffold="none")


def external_checksum(where: str) -> dict[str, str]:
    """What an external suite was read from: a file with its sha256, or a Hub dataset id."""
    path = Path(where)
    return {"source": str(where), "sha256": sha256_file(path)} if path.is_file() else {"source": str(where)}


def suite_checksums(suites: list[str]) -> dict[str, dict[str, str]]:
    """sha256 of every file each suite name reads (`data.resolve_suite`), for metrics.json."""
    return {name: {str(f): sha256_file(f) for f in resolve_suite(name).files} for name in suites}


def load_records(suites: list[str], n: int | None, variants: list[str] | None) -> list[dict]:
    """Records of all suites, first occurrence of each id kept (so `all` + `if_else` does not count items twice).

    `load_suite` checks every record and recomputes its answer, so EM is scored against the program's answer.
    """
    seen, records = set(), []
    for name in suites:
        for record in load_suite(name, n, variants):
            if record["id"] not in seen:
                seen.add(record["id"])
                records.append(record)
    if not records:
        raise ValueError(f"no records in suites {', '.join(suites)} for variants {variants or 'all'}")
    return records


def run_eval(
    model: str,
    adapter: str | None,
    suites: list[str],
    n: int | None,
    variants: list[str] | None,
    out: str | Path,
    settings: GenerationSettings,
    *,
    alignment: bool = False,
    progress: bool = True,
) -> dict:
    """Evaluate a model (+ adapter) on suites; write metrics.json and samples.jsonl into `out`; return metrics.json.

    `suites` are suite specs (`data.resolve_suite`: ours and external benchmarks), `n` the first items per family x
    variant (per external suite), `variants` the record variants (None: all); `settings` says how to generate.
    The prompt format is, in order: `settings.prompt` if given, the recipe.yaml of the adapter/checkpoint, else chat
    when the tokenizer has a chat template and plain otherwise. With `alignment`, a second sampled pass (16 samples,
    T=1.0) adds pass@1/4/16 under metrics["alignment"]: high pass@16 with low pass@1 predicts that RL will help.
    """
    import torch

    from cftrain.models import load_adapter, load_model, load_tokenizer, resolve_model

    samples, max_new_tokens, batch_size = settings.samples, settings.max_new_tokens, settings.batch_size
    temperature, seed, prompt = settings.temperature, settings.seed, settings.prompt
    if samples < 1 or max_new_tokens < 1 or batch_size < 1:
        raise ValueError(
            f"need samples, max_new_tokens and batch_size >= 1; got {samples}, {max_new_tokens}, {batch_size}"
        )
    backend = choose_backend(settings.backend)
    target = resolve_target(model, adapter)
    specs = {spec: resolve_suite(spec) for spec in suites}
    ours = [spec for spec, suite in specs.items() if suite.external is None]
    external = [suite.external for suite in specs.values() if suite.external is not None]
    records = load_records(ours, n, variants) if ours or not external else []
    items = [item for name, where in external for item in load_external(name, where)[:n]]
    checksums = suite_checksums(ours)
    out = Path(out)
    started = time.time()

    tokenizer = load_tokenizer(target["tokenizer"], gguf_file=target["tokenizer_gguf_file"])
    if prompt is not None:
        source = "given"
    elif target["prompt"] is not None:
        prompt, source = PromptConfig(**target["prompt"]), target["recipe"]
    else:
        prompt, source = PromptConfig(template="chat" if tokenizer.chat_template else "plain"), "default"
    prompts = render_prompts(records, prompt, tokenizer) + render_prompts(items, external_prompt(prompt), tokenizer)

    lm = None
    if backend == "transformers":
        device = "cuda" if torch.cuda.is_available() else None
        lm = load_model(target["base"], dtype=target["dtype"], gguf_file=target["gguf_file"], device=device)
        if target["adapter"]:
            # Merged once: generation then runs at the base model's speed.
            lm = load_adapter(lm, target["adapter"])

    sampling = [(samples, temperature)] + ([(ALIGNMENT_SAMPLES, 1.0)] if alignment else [])
    if backend == "vllm":
        path = resolve_model(target["base"])
        generated = generate_vllm(
            path, target["adapter"], prompts, max_new_tokens=max_new_tokens, sampling=sampling, seed=seed
        )
    else:
        generated = []
        for k, temp in sampling:
            torch.manual_seed(seed)
            pass_settings = replace(settings, samples=k, temperature=temp)
            generated.append(
                generate(lm, tokenizer, prompts, prompt.template, **pass_settings.generate_kwargs(), progress=progress)
            )
    # External items follow the records in `prompts`; the alignment pass scores the records only.
    ours_n = len(records)
    rows, *aligned = [score(records, prompts[:ours_n], texts[:ours_n], counts[:ours_n]) for texts, counts in generated]
    texts, counts = generated[0]
    external_rows = [
        {**row, "prompt": prompts[ours_n + i // samples], "len": counts[ours_n + i // samples][row["sample"]]}
        for i, row in enumerate(score_items(items, texts[ours_n:]))
    ]
    out.mkdir(parents=True, exist_ok=True)  # only now: a failed eval leaves no empty folder
    write_jsonl(rows, out / "samples.jsonl")
    if items:
        write_jsonl(external_rows, out / "external_samples.jsonl")
    result = {
        "model": model,
        "base_model": target["base"],
        "adapter": target["adapter"],
        "recipe": target["recipe"],
        "prompt": asdict(prompt),
        "prompt_source": source,
        "suites": checksums,
        "n": n,
        "variants": variants or "all",
        "records": len(records),
        "generation": {
            "backend": backend,
            "samples": samples,
            "temperature": 0.0 if samples == 1 and temperature == 0 else temperature or 1.0,
            "max_new_tokens": max_new_tokens,
            "batch_size": batch_size,
            "seed": seed,
        },
        "metrics": metrics_from_samples(rows) if rows else {},
    }
    if items:
        result["external"] = {
            "suites": {name: external_checksum(where) for name, where in external},
            "metrics": external_metrics(external_rows),
        }
    if aligned:
        write_jsonl(aligned[0], out / "alignment_samples.jsonl")
        result["alignment"] = {
            "samples": ALIGNMENT_SAMPLES,
            "temperature": 1.0,
            "metrics": metrics_from_samples(aligned[0]),
        }
    seconds = time.time() - started
    result["time"] = {
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(seconds, 2),
        "items_per_s": round((len(records) + len(items)) / seconds, 3),
    }
    (out / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
    return result
