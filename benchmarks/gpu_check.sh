#!/usr/bin/env bash
# The speed issue's GPU check, as one device call (~7 min on one H100):
#   bash benchmarks/gpu_prepare.sh                       # here, first
#   device run: command "bash benchmarks/gpu_check.sh", carry [".whl", ".bench"], timeout_s 600
# Each run prints the side-by-side table (kemo on JAX vs HF transformers on eager
# PyTorch) and writes NAME.json to $OUT, all tables to $OUT/check.log:
#   mbert  mBERT-base shape, bf16, batch 32, 6,144 texts of all 28 languages (XLM-R
#          SentencePiece ids), buckets 64/128, 2 epochs each side, 20 padded steps,
#          fused attention (model.fused_attention: cuDNN flash attention if cuDNN takes it)
#   mbert-unfused      the same, kemo only, with attention dropout (Keras' explicit softmax)
#   mbert-noautotune   the same as mbert, kemo only, XLA's GEMM autotuning off (compile vs speed)
#   xlmr   XLM-R-base shape, as mbert
#   mbert-b128  kemo's hand-written jit loop at batch 128: the padded step's MFU
# Each run has its own time limit, so one slow run leaves the others their time.
# KEMO_GPU_CHECK_DRY=1 runs the same commands here, on CPU with tiny sizes (a rehearsal).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/kemo-gpu-out}
mkdir -p "$OUT"
if [ "${KEMO_GPU_CHECK_DRY:-0}" = 1 ]; then
    PY=${PYTHON:-.venv/bin/python}
    device=cpu
    small=(--max-examples 96 --steps 2 --padded-steps 2 --sequence-length 64 --buckets 32,64)
    base=tiny; large=tiny
else
    PY=python3
    base=mbert-base; large=xlmr-base; device=gpu; small=()
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH="/tmp/site:$PWD"
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv \
        | tee "$OUT/device.txt"
fi
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
common=(--device $device --dtype bfloat16 --tokens .bench/all-e5.npz --max-examples 6144
        --buckets 64,128 --repeats 1 --epochs 2 --padded-steps 20)
run() {  # NAME LIMIT_S ARGS...
    local name=$1 limit=$2; shift 2
    echo "=== $name: $*" | tee -a "$OUT/check.log"
    timeout "$limit" $PY benchmarks/train_speed.py "$@" "${small[@]}" --json "$OUT/$name.json" \
        2>&1 | grep -v -E '^(I0000|W0000|WARNING: All log)' | tee -a "$OUT/check.log"
}
run mbert 150 --model $base "${common[@]}" --fused-attention
run mbert-unfused 70 --model $base "${common[@]}" --skip torch
XLA_FLAGS=--xla_gpu_autotune_level=0 run mbert-noautotune 70 --model $base \
    "${common[@]}" --fused-attention --skip torch
run xlmr 150 --model $large "${common[@]}" --fused-attention
run mbert-b128 80 --model $base --device $device --dtype bfloat16 --tokens .bench/all-e5.npz \
    --kemo-loop jit --skip torch --batch-size 128 --steps 10 --repeats 1 --buckets 128 \
    --padded-steps 20 --fused-attention
ls -l "$OUT"
