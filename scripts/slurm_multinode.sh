#!/usr/bin/env bash
# Multi-node training under Slurm: one `accelerate launch` per node, ranks and the master address from Slurm.
#   sbatch --nodes 2 --gpus-per-node 8 scripts/slurm_multinode.sh recipes/qwen2.5-7b/grpo.yaml [overrides...]
#SBATCH --job-name=cftrain
#SBATCH --ntasks-per-node=1
#SBATCH --exclusive
set -euo pipefail
RECIPE=${1:?usage: sbatch scripts/slurm_multinode.sh RECIPE.yaml [overrides]}
shift
MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
export WANDB_MODE=${WANDB_MODE:-offline}
srun bash -c "accelerate launch --config_file recipes/accelerate/multinode.yaml \
    --num_machines $SLURM_NNODES --num_processes $((SLURM_NNODES * GPUS_PER_NODE)) \
    --machine_rank \$SLURM_NODEID --main_process_ip $MASTER_ADDR --main_process_port 29500 \
    -m cftrain train $RECIPE $*"
