"""Build a randomly initialised model of Qwen2.5-0.5B's shape offline (for scripts/gpu_check.sh).

    python scripts/gpu_check.py OUT_DIR

Llama blocks at Qwen2.5-0.5B's sizes (hidden 896, 24 layers, 14 heads / 2 KV heads, FFN 4864, vocab 151,936)
with the embedded model's tokenizer: the compute and memory of the real model, no download.
"""

import sys
from pathlib import Path

from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from cftrain.models import resolve_model


def main(out: str) -> None:
    tokenizer = AutoTokenizer.from_pretrained(resolve_model("cftrain:tiny"))
    config = LlamaConfig(vocab_size=151_936, hidden_size=896, num_hidden_layers=24, num_attention_heads=14,
                         num_key_value_heads=2, intermediate_size=4864, max_position_embeddings=4096,
                         tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    print(f"{out}: {sum(p.numel() for p in model.parameters()) / 1e6:.0f}M parameters")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(Path("/tmp/qwen2.5-0.5b-shape")))
