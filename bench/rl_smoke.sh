#!/usr/bin/env bash
# A few masked-GRPO steps on ONE GPU with a small model of your choice: proves the whole stack (Ray, FSDP,
# vLLM, minio3's data, agent loop, reward, estimator and guarded loss) runs end to end. Not run by CI (no GPU
# there); the objective and the agent loop are proven on CPU by the tests. See docs/rl.md.
#
#   bench/rl_smoke.sh MODEL_DIR [OUT_DIR]          e.g. bench/rl_smoke.sh models/qwen2.5-vl-3b runs/rl_smoke
#   DRY_RUN=1 bench/rl_smoke.sh MODEL_DIR          write and check the run dir with verl, run nothing (CPU)
#   bench/rl_smoke.sh --smoke                      that dry run on a tiny offline model in a temp dir (CI, CPU)
#
# MODEL_DIR: a local Qwen2.5-VL-style model dir (config, tokenizer, processor, weights): your SFT checkpoint,
# or a small one such as Qwen2.5-VL-3B-Instruct (nothing is downloaded).
# A synthetic dataset (16 train / 4 validation questions) is built next to OUT_DIR unless DATASET names one.
# Expect: three training steps, each printing verl's step metrics (critic/score, response length, pg_loss)
# and minio3's (minio3/overturn/rate and its reasons, minio3/turns, minio3/acc per data source; docs/rl.md,
# "Metrics"); exit code 0.
set -euo pipefail
if [ "${1:-}" = --smoke ]; then
  SMOKE=$(mktemp -d)
  trap 'rm -rf "$SMOKE"' EXIT
  python "$(dirname "$0")/../tests/tiny_qwen25vl.py" "$SMOKE/model"
  set -- "$SMOKE/model" "$SMOKE/run"
  DRY_RUN=1
fi
MODEL=${1:?usage: bench/rl_smoke.sh MODEL_DIR [OUT_DIR]}
OUT=${2:-runs/rl_smoke}
DATASET=${DATASET:-$OUT.dataset}
[ -d "$DATASET" ] || minio3 build-visualprobe --source synthetic --out "$DATASET" --train 16 --test 4 \
  --long-side 1024:2048 --workers 2
minio3 train-rl --dataset "$DATASET" --model "$MODEL" --out "$OUT" --gpus-per-node 1 --rollout-n 4 \
  ${DRY_RUN:+--dry-run} -- \
  data.train_batch_size=4 data.val_max_samples=4 data.max_prompt_length=4096 data.max_response_length=8192 \
  actor_rollout_ref.actor.ppo_mini_batch_size=2 \
  actor_rollout_ref.rollout.gpu_memory_utilization=0.4 actor_rollout_ref.rollout.agent.num_workers=1 \
  algorithm.filter_groups.enable=false \
  trainer.total_training_steps=3 trainer.val_before_train=false trainer.test_freq=-1 trainer.save_freq=-1
