"""Generation backends: batched `transformers` generation (greedy or sampled, each sequence stopped at its first
`</answer>` and at EOS), vLLM, and the choice between them; `GenerationSettings` holds how an evaluation generates.

`cftrain.evaluate` scores what these functions generate (`cftrain eval`, the training-time eval hook), and
`cftrain distill` samples its teacher with `generate`. torch, transformers and vLLM are imported inside the
functions, so importing this module stays light.

Tests: `pytest tests/test_evaluate.py`.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cftrain.prompts import PromptConfig, build_prompt

BACKENDS = ("auto", "transformers", "vllm")
ANSWER_END = "</answer>"


@dataclass(frozen=True)
class GenerationSettings:
    """How an evaluation generates: `samples` completions per item (1: greedy unless `temperature` > 0), at most
    `max_new_tokens` each, `batch_size` prompts per `generate` call, the `backend` (one of `BACKENDS`), the sampling
    `seed`, and the prompt format (None: the checkpoint's recipe, else the tokenizer's default; see `run_eval`).

    The training-time eval hook's `recipes.EvalSettings` shares `max_new_tokens` and `batch_size` (and their
    defaults) through `EvalSettings.generation()`.
    """

    samples: int = 1
    max_new_tokens: int = 256
    batch_size: int = 16
    temperature: float = 0.0
    backend: str = "transformers"
    seed: int = 0
    prompt: PromptConfig | None = None

    def generate_kwargs(self) -> dict[str, int | float]:
        """The keyword arguments of `generate` (and `evaluate.evaluate_records`) these settings fix."""
        return {
            "max_new_tokens": self.max_new_tokens,
            "batch_size": self.batch_size,
            "samples": self.samples,
            "temperature": self.temperature,
        }


def render_prompts(records: list[Mapping], prompt: PromptConfig, tokenizer) -> list[str]:
    """Model input text per record: the chat template with a generation prompt, or the plain string."""
    if prompt.template == "chat" and not tokenizer.chat_template:
        raise ValueError("prompt.template is chat but the tokenizer has no chat template; use the plain template")
    prompts = [build_prompt(r, prompt) for r in records]
    if prompt.template != "chat":
        return prompts
    return [tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=False) for p in prompts]


def _stop_ids(model, tokenizer) -> list[int]:
    configured = model.generation_config.eos_token_id
    ids = configured if isinstance(configured, list) else [configured]
    return sorted({i for i in [*ids, tokenizer.eos_token_id] if i is not None})


def generate(
    model,
    tokenizer,
    prompts: list[str],
    template: str,
    *,
    max_new_tokens: int = GenerationSettings.max_new_tokens,
    batch_size: int = GenerationSettings.batch_size,
    samples: int = GenerationSettings.samples,
    temperature: float = GenerationSettings.temperature,
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
