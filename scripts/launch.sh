#!/usr/bin/env bash
# Launch helper: picks the accelerate config from the GPU count on this machine.
#   scripts/launch.sh RECIPE.yaml [overrides...]          (ZEROSTAGE=3 for ZeRO-3)
set -euo pipefail
RECIPE=${1:?usage: scripts/launch.sh RECIPE.yaml [overrides]}
shift
GPUS=$(python -c "import torch; print(torch.cuda.device_count())")
if [ "$GPUS" -le 1 ]; then
    exec cftrain train "$RECIPE" "$@"
fi
exec accelerate launch --config_file "recipes/accelerate/zero${ZEROSTAGE:-2}.yaml" --num_processes "$GPUS" \
    -m cftrain train "$RECIPE" "$@"
