#!/usr/bin/env bash
# One prepared check for a GPU machine (no network needed): bf16 LoRA GRPO steps on a randomly initialised model
# of Qwen2.5-0.5B's shape, single process and under DeepSpeed ZeRO-2 on one GPU, printing tokens/s.
#   bash scripts/gpu_check.sh            (about 5 minutes; writes to ${OUT:-/tmp/cftrain-gpu-check})
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/cftrain-gpu-check}
mkdir -p "$OUT"
if [ ! -d .venv-gpu ]; then python3 -m venv .venv-gpu && .venv-gpu/bin/pip install -q -e .; fi
. .venv-gpu/bin/activate
export WANDB_MODE=offline CFTRAIN_HOME="$OUT/home" HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
python scripts/gpu_check.py "$OUT/model"

cat > "$OUT/grpo.yaml" <<YAML
method: grpo
model: {name_or_path: $OUT/model, dtype: bfloat16}
output_dir: $OUT/run
data: {train: [{family: if_else, n: 256, variants: [counterfactual]}]}
lora: {r: 32, alpha: 64, dropout: 0.0}
rewards: {answer: 1.0, format: 0.1}
trainer: {max_steps: 8, per_device_train_batch_size: 32, num_generations: 8, max_completion_length: 256,
          learning_rate: 1.0e-5, bf16: true, logging_steps: 1, save_strategy: "no", gradient_checkpointing: true}
logging: {wandb: false}
YAML

report() {  # tokens/s from TRL's step logs (prompt + completion tokens per step / step time), warm-up dropped
  python - "$1" "$2" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1] + "/metrics.jsonl") if "step_time" in l]
rows = rows[2:]
tokens = [b["num_tokens"] - a["num_tokens"] for a, b in zip(rows, rows[1:])]
times = [b["step_time"] for b in rows[1:]]
print(f"{sys.argv[2]}: {sum(tokens) / sum(times):,.0f} tokens/s, {sum(times) / len(times):.2f} s/step")
PY
}
cftrain train "$OUT/grpo.yaml" --no-resume
report "$OUT/run" "single GPU, bf16, LoRA GRPO"
rm -rf "$OUT/run"
accelerate launch --config_file recipes/accelerate/zero2.yaml --num_processes 1 -m cftrain train "$OUT/grpo.yaml" --no-resume
report "$OUT/run" "DeepSpeed ZeRO-2, 1 GPU"
