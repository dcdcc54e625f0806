"""Evaluation: generate on suites, score with the reward code, aggregate per family x variant -> metrics + samples.

`evaluate_records` is the core (the training-time eval hook calls it too): batched generation, scoring with
`cftrain.rewards` (the RL reward's own parser), step detectors from `cftrain.traces`, and `metrics_from_samples`.
`run_eval` wraps it for the CLI: it loads a base model, an adapter or a checkpoint, takes the prompt format from
the checkpoint's `recipe.yaml` (so a model is evaluated on the prompts it was trained on), and writes

```
<out>/metrics.json            every number (`metrics`), plus model, adapter, prompt, suite checksums, settings
<out>/samples.jsonl           one row per completion; `metrics_from_samples(rows)` recomputes `metrics` exactly
<out>/alignment_samples.jsonl with --alignment: the sampled completions behind metrics["alignment"]
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

import importlib.util
import json
import math
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path

from cftrain.data import DATA_DIR, ID_FAMILIES, OOD_FAMILIES, load_suite, sha256_file, slug, write_jsonl
from cftrain.external import external_metrics, load_external, parse_external, score_items
from cftrain.models import adapter_base
from cftrain.problems import FAMILIES
from cftrain.prompts import PromptConfig, build_prompt
from cftrain.recipes import read_yaml
from cftrain.rewards import exact_match, parse_answer, set_f1
from cftrain.traces import analyse_trace, trace_metrics

BACKENDS = ("auto", "transformers", "vllm")
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


# ---------------------------------------------------------------- generation


def render_prompts(records: list[Mapping], prompt: PromptConfig, tokenizer) -> list[str]:
    """Model input text per record: the chat template with a generation prompt, or the plain string."""
    if prompt.template == "chat" and not tokenizer.chat_template:
        raise ValueError("prompt.template is chat but the tokenizer has no chat template; use the plain template")
    prompts = [build_prompt(r, prompt) for r in records]
    if prompt.template != "chat":
        return prompts
    return [tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=False) for p in prompts]


def external_prompt(prompt: PromptConfig) -> PromptConfig:
    """The prompt format for external items: the model's own template, but `compact` (which needs a program) falls
    back to `plain`, and no scaffold (its steps talk about hidden values)."""
    return replace(prompt, template="plain" if prompt.template == "compact" else prompt.template, scaffold="none")


def external_checksum(where: str) -> dict[str, str]:
    """What an external suite was read from: a file with its sha256, or a Hub dataset id."""
    path = Path(where)
    return {"source": str(where), "sha256": sha256_file(path)} if path.is_file() else {"source": str(where)}


def _stop_ids(model, tokenizer) -> list[int]:
    configured = model.generation_config.eos_token_id
    ids = configured if isinstance(configured, list) else [configured]
    return sorted({i for i in [*ids, tokenizer.eos_token_id] if i is not None})


ANSWER_END = "</answer>"


def generate(
    model,
    tokenizer,
    prompts: list[str],
    template: str,
    *,
    max_new_tokens: int = 256,
    batch_size: int = 16,
    samples: int = 1,
    temperature: float = 0.0,
    progress: bool = False,
    stop_at_answer: bool = True,
) -> tuple[list[list[str]], list[list[int]]]:
    """Completions and their token counts, `samples` per prompt, with batched `transformers` generation.

    Each sequence stops at EOS and, with `stop_at_answer`, at its first `</answer>`: a batch runs only as long as its
    longest *answer*, not as long as a model that rambles on after it. The reward reads the last `<answer>` block, so
    a completion that would have written a second block is scored on its first one instead (the format reward, which
    wants exactly one block, passes it); scripts/bench_eval.py counts how often scores differ.

    Greedy when samples == 1 and temperature == 0, else plain sampling (temperature 1.0 when samples > 1 and no
    temperature is given; no top-k/top-p, so pass@k measures the model's own distribution). Prompts are sorted by
    length so that each batch wastes little on padding, and put back in order after. Left padding, no gradients,
    eval mode; the tokenizer's padding side and the model's training mode are restored (the hook runs mid-training).
    """
    import torch
    from tqdm import tqdm

    if not prompts:
        return [], []
    sampled = samples > 1 or temperature > 0
    temperature = temperature or 1.0
    stop = _stop_ids(model, tokenizer)
    settings = {
        "max_new_tokens": max_new_tokens,
        "do_sample": sampled,
        "num_return_sequences": samples,
        "pad_token_id": tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop[0],
        "eos_token_id": stop,
        "use_cache": True,
        # Explicit, so a checkpoint's generation_config.json (top_k=20, repetition_penalty=1.05, ...) cannot leak in.
        **({"temperature": temperature, "top_k": 0, "top_p": 1.0} if sampled else {}),
        "repetition_penalty": 1.0,
        # Per sequence: a stopped sequence is padded while the others go on (transformers' StopStringCriteria).
        **({"stop_strings": [ANSWER_END], "tokenizer": tokenizer} if stop_at_answer else {}),
    }
    pad = settings["pad_token_id"]
    chat = template == "chat"  # the chat template already holds its special tokens; TRL tokenizes it the same way
    lengths = [len(ids) for ids in tokenizer(prompts, add_special_tokens=not chat)["input_ids"]]
    order = sorted(range(len(prompts)), key=lambda i: -lengths[i])
    texts: list[list[str]] = [[] for _ in prompts]
    counts: list[list[int]] = [[] for _ in prompts]
    device = next(model.parameters()).device
    was_training, padding_side = model.training, tokenizer.padding_side
    model.eval()
    tokenizer.padding_side = "left"
    try:
        with torch.no_grad(), tqdm(total=len(prompts), unit="prompt", desc="eval", disable=not progress) as bar:
            for start in range(0, len(order), batch_size):
                batch = order[start : start + batch_size]
                inputs = tokenizer(
                    [prompts[i] for i in batch], return_tensors="pt", padding=True, add_special_tokens=not chat
                )
                ids, mask = inputs["input_ids"].to(device), inputs["attention_mask"].to(device)
                out = model.generate(input_ids=ids, attention_mask=mask, **settings)
                new = out[:, ids.shape[1] :].tolist()
                for j, tokens in enumerate(new):
                    n = next((t + 1 for t, token in enumerate(tokens) if token in stop), len(tokens))
                    while stop_at_answer and n > 0 and tokens[n - 1] == pad and pad not in stop:
                        n -= 1  # stopped at </answer>: the rest is padding
                    texts[batch[j // samples]].append(tokenizer.decode(tokens[:n], skip_special_tokens=True))
                    counts[batch[j // samples]].append(n)
                bar.update(len(batch))
    finally:
        tokenizer.padding_side = padding_side
        model.train(was_training)
    return texts, counts


def generate_vllm(
    model_path: str,
    adapter: str | None,
    prompts: list[str],
    *,
    max_new_tokens: int,
    sampling: list[tuple[int, float]],
    seed: int = 0,
) -> list[tuple[list[list[str]], list[list[int]]]]:
    """`generate`'s contract with vLLM, for each (samples, temperature) in `sampling` from one engine.

    LoRA goes through `enable_lora` + `LoRARequest`. Used only when vLLM is installed and CUDA is available; the
    test suite never runs it (no GPU or vLLM there), so check a first run on a new vLLM version by hand. The
    prompts are already rendered text. Token counts are vLLM's (the stop token included).
    """
    from vllm import LLM, SamplingParams
    from vllm.lora.request import LoRARequest

    lora, kwargs = None, {}
    if adapter:
        rank = json.loads((Path(adapter) / "adapter_config.json").read_text())["r"]
        kwargs = {"enable_lora": True, "max_lora_rank": max(8, rank)}
        lora = LoRARequest("adapter", 1, str(adapter))
    llm = LLM(model=model_path, seed=seed, **kwargs)
    results = []
    for samples, temperature in sampling:
        greedy = samples == 1 and temperature == 0
        params = SamplingParams(
            n=samples, temperature=0.0 if greedy else temperature or 1.0, max_tokens=max_new_tokens, seed=seed,
            stop=[ANSWER_END], include_stop_str_in_output=True,  # as `generate`: stop at the first </answer>
        )  # fmt: skip
        outputs = llm.generate(prompts, params, lora_request=lora)
        texts = [[o.text for o in out.outputs] for out in outputs]
        results.append((texts, [[len(o.token_ids) for o in out.outputs] for out in outputs]))
    return results


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
    model,
    tokenizer,
    records: list[dict],
    prompt: PromptConfig,
    *,
    max_new_tokens: int = 256,
    batch_size: int = 16,
    samples: int = 1,
    temperature: float = 0.0,
    progress: bool = False,
    stop_at_answer: bool = True,
) -> tuple[dict, list[dict]]:
    """Generate on `records` and score: (metrics, sample rows). Works on a plain or PEFT-wrapped model."""
    prompts = render_prompts(records, prompt, tokenizer)
    texts, counts = generate(
        model,
        tokenizer,
        prompts,
        prompt.template,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        samples=samples,
        temperature=temperature,
        progress=progress,
        stop_at_answer=stop_at_answer,
    )
    rows = score(records, prompts, texts, counts)
    return metrics_from_samples(rows), rows


# ---------------------------------------------------------------- what to evaluate


def find_recipe(folder: str | Path) -> Path | None:
    """The recipe.yaml of a checkpoint folder, or of the run folder holding it (`<run>/final`, `<run>/checkpoint-N`)."""
    folder = Path(folder)
    for candidate in (folder, folder.parent):
        if (candidate / "recipe.yaml").is_file():
            return candidate / "recipe.yaml"
        if not (folder.name == "final" or folder.name.startswith("checkpoint-")):
            break
    return None


def resolve_target(model: str, adapter: str | None = None) -> dict:
    """What `model`/`adapter` mean: base model, adapter folder, tokenizer source, recipe (if any).

    `model` may be a Hub id, a `cftrain:` name, a local model folder (a merged or fully fine-tuned checkpoint), or a
    folder holding an adapter (`adapter_config.json`, e.g. `<run>/final`): then the base model comes from the
    recipe next to it, else from the adapter's config.
    """
    if adapter is None and (Path(model) / "adapter_config.json").is_file():
        model, adapter = None, model
    if adapter is not None and not (Path(adapter) / "adapter_config.json").is_file():
        raise ValueError(f"--adapter {adapter}: no adapter_config.json in that folder")
    recipe_path = find_recipe(adapter or model) if adapter or Path(model).is_dir() else None
    recipe = read_yaml(recipe_path) if recipe_path else {}
    if not isinstance(recipe, dict):
        raise ValueError(f"{recipe_path}: not a recipe (expected a mapping)")
    base = model
    model_block = recipe.get("model") or {}
    if base is None:
        base = model_block.get("name_or_path") or adapter_base(Path(adapter))
    has_tokenizer = adapter is not None and (Path(adapter) / "tokenizer_config.json").is_file()
    gguf_file = model_block.get("gguf_file") if base == model_block.get("name_or_path") else None
    return {
        "base": base,
        "adapter": adapter,
        "tokenizer": adapter if has_tokenizer else base,
        "tokenizer_gguf_file": None if has_tokenizer else gguf_file,
        "recipe": str(recipe_path) if recipe_path else None,
        "prompt": recipe.get("prompt"),
        "dtype": model_block.get("dtype", "auto"),
        "gguf_file": gguf_file,
    }


def default_out(model: str, adapter: str | None = None) -> Path:
    """`<run>/eval` for `<run>/final`, `<run>/eval-checkpoint-N` for a checkpoint, else `evals/<model name>`."""
    folder = Path(adapter or model)
    if folder.name == "final" or folder.name.startswith("checkpoint-"):
        return folder.parent / ("eval" if folder.name == "final" else f"eval-{folder.name}")
    return Path("evals") / slug(str(adapter or model))


def suite_files(name: str) -> list[Path]:
    """The files a suite name reads (`id`, `ood`, `all`, a family, or a .jsonl path); ValueError when one is missing."""
    if name.endswith(".jsonl"):
        if not Path(name).is_file():
            raise ValueError(f"suite {name}: no such file")
        return [Path(name)]
    families = {"id": ID_FAMILIES, "ood": OOD_FAMILIES, "all": ID_FAMILIES + OOD_FAMILIES}.get(name, (name,))
    if any(f not in FAMILIES for f in families):
        raise ValueError(f"unknown suite {name!r}; suites: id, ood, all, a family name, or a .jsonl path")
    files = [DATA_DIR / "suites" / f"{f}.jsonl" for f in families]
    for f in files:
        if not f.is_file():
            raise ValueError(f"suite {name}: {f} is missing; generate the frozen suites with `cftrain suites`")
    return files


def suite_checksums(suites: list[str]) -> dict[str, dict[str, str]]:
    """sha256 of every file each suite name reads, for metrics.json."""
    return {name: {str(f): sha256_file(f) for f in suite_files(name)} for name in suites}


def load_records(suites: list[str], n: int | None, variants: list[str] | None) -> list[dict]:
    """Records of all suites, first occurrence of each id kept (so `all` + `if_else` does not count items twice).

    `load_suite` checks every record and recomputes its answer, so EM is scored against the program's answer.
    """
    seen, records = set(), []
    for name in suites:
        suite_files(name)  # a clear error for a missing or unknown suite
        for record in load_suite(name, n, variants):
            if record["id"] not in seen:
                seen.add(record["id"])
                records.append(record)
    if not records:
        raise ValueError(f"no records in suites {', '.join(suites)} for variants {variants or 'all'}")
    return records


def choose_backend(backend: str) -> str:
    """`auto` is vLLM when it is installed and CUDA is available, else transformers."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    if backend == "transformers":
        return backend
    import torch

    available = importlib.util.find_spec("vllm") is not None and torch.cuda.is_available()
    if backend == "vllm" and not available:
        raise ValueError("backend vllm needs the vllm package and a CUDA GPU; use --backend transformers")
    return "vllm" if available else "transformers"


def run_eval(
    model: str,
    adapter: str | None,
    suites: list[str],
    n: int | None,
    variants: list[str] | None,
    samples: int,
    out: str | Path,
    max_new_tokens: int,
    batch_size: int,
    temperature: float,
    prompt: PromptConfig | None = None,
    backend: str = "transformers",
    *,
    alignment: bool = False,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Evaluate a model (+ adapter) on suites; write metrics.json and samples.jsonl into `out`; return metrics.json.

    The prompt format is, in order: `prompt` if given, the recipe.yaml of the adapter/checkpoint, else chat when the
    tokenizer has a chat template and plain otherwise. With `alignment`, a second sampled pass (16 samples, T=1.0)
    adds pass@1/4/16 under metrics["alignment"]: high pass@16 with low pass@1 predicts that RL will help.
    """
    import torch

    from cftrain.models import load_adapter, load_model, load_tokenizer, resolve_model

    if samples < 1 or max_new_tokens < 1 or batch_size < 1:
        raise ValueError(
            f"need samples, max_new_tokens and batch_size >= 1; got {samples}, {max_new_tokens}, {batch_size}"
        )
    backend = choose_backend(backend)
    target = resolve_target(model, adapter)
    specs = {spec: parse_external(spec) for spec in suites}
    ours = [spec for spec, ext in specs.items() if ext is None]
    external = [ext for ext in specs.values() if ext is not None]
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
            generated.append(
                generate(
                    lm,
                    tokenizer,
                    prompts,
                    prompt.template,
                    max_new_tokens=max_new_tokens,
                    batch_size=batch_size,
                    samples=k,
                    temperature=temp,
                    progress=progress,
                )
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
