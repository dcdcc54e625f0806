#!/usr/bin/env bash
# One prepared check for a GPU machine (no network needed): bf16 LoRA GRPO steps on a randomly initialised model
# of Qwen2.5-0.5B's shape, single process and under DeepSpeed ZeRO-2 on one GPU, printing tokens/s; first, every
# method's tiny recipe and eval on the GPU.
#   bash scripts/gpu_check.sh            (about 5 minutes; writes to ${OUT:-/tmp/cftrain-gpu-check})
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/cftrain-gpu-check}
mkdir -p "$OUT"
if [ -d .whl ]; then
  # An offline machine whose python3 already has torch: the missing wheels travel in .whl/ (see the README's GPU
  # section for the download command) and install into a scratch folder, the repo itself on PYTHONPATH.
  python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/cftrain-site .whl/*.whl
  export PYTHONPATH="/tmp/cftrain-site:$PWD"
else
  if [ ! -d .venv-gpu ]; then python3 -m venv .venv-gpu && .venv-gpu/bin/pip install -q -e .; fi
  . .venv-gpu/bin/activate
fi
export WANDB_MODE=offline CFTRAIN_HOME="$OUT/home" HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import torch, transformers, trl, peft, deepspeed; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'transformers', transformers.__version__, 'trl', trl.__version__, 'peft', peft.__version__, 'deepspeed', deepspeed.__version__)"

# Each check runs even if an earlier one failed; the summary at the end says which passed.
failed=()
check() { local name=$1; shift; echo "--- $name"; if "$@"; then echo "--- $name: ok"; else echo "--- $name: FAILED"; failed+=("$name"); fi; }

# Every method's tiny recipe on the GPU (fp32): catches a tensor left on the wrong device in cftrain's own loops.
tiny() { python3 -m cftrain train "recipes/tiny/$1.yaml" --output_dir "$OUT/tiny-$1" --logging.wandb false --no-resume "${@:2}"; }
check "tiny sft on cuda" tiny sft --trainer.use_cpu false --trainer.max_steps 4
check "tiny grpo on cuda" tiny grpo --trainer.use_cpu false --trainer.max_steps 4
check "tiny rloo on cuda" tiny rloo --trainer.use_cpu false --trainer.max_steps 4
check "tiny ppo on cuda" tiny ppo --ppo.use_cpu false --ppo.steps 3
check "eval on cuda" python3 -m cftrain eval --model "$OUT/tiny-grpo/final" --suite id --n 16 --batch-size 16 \
  --max-new-tokens 64 --out "$OUT/tiny-eval"

python3 scripts/gpu_check.py "$OUT/model"

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
  python3 - "$1" "$2" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1] + "/metrics.jsonl") if "step_time" in l]
rows = rows[2:]
tokens = [b["num_tokens"] - a["num_tokens"] for a, b in zip(rows, rows[1:])]
times = [b["step_time"] for b in rows[1:]]
print(f"{sys.argv[2]}: {sum(tokens) / sum(times):,.0f} tokens/s, {sum(times) / len(times):.2f} s/step")
PY
}
single() { python3 -m cftrain train "$OUT/grpo.yaml" --no-resume && report "$OUT/run" "single GPU, bf16, LoRA GRPO"; }
check "0.5B-shape GRPO, one process" single
rm -rf "$OUT/run"
zero2() {
  python3 -m accelerate.commands.launch --config_file recipes/accelerate/zero2.yaml --num_processes 1 \
    -m cftrain train "$OUT/grpo.yaml" --no-resume && report "$OUT/run" "DeepSpeed ZeRO-2, 1 GPU"
}
check "0.5B-shape GRPO, ZeRO-2" zero2
echo "failed: ${failed[*]:-none}"
[ ${#failed[@]} -eq 0 ]
