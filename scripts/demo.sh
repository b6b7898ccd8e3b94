#!/usr/bin/env bash
# The whole pipeline on the bundled demo pair (assets/pairs/*/demo.png), outputs in ./demo-out/:
#   GPU + TensorRT + plugin library: build an FP16 TensorRT engine, run it, report latency and accuracy;
#   otherwise: export and rewrite the model to ONNX and run it on the CPU (ONNX Runtime + the plugin's CPU twin).
# The model is $TTSR_CHECKPOINT (an mmediting/mmagic TTSR .pth) or, unset, a seeded random model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PY=.venv/bin/python
OUT=demo-out
mkdir -p "$OUT"
PAIRS="$OUT/pairs.txt"
echo "$PWD/assets/pairs/lr/demo.png $PWD/assets/pairs/ref/demo.png $PWD/assets/pairs/hr/demo.png" > "$PAIRS"

if [ -n "${TTSR_CHECKPOINT:-}" ]; then
    MODEL=(--checkpoint "$TTSR_CHECKPOINT")
else
    MODEL=(--seed 0)
    echo "TTSR_CHECKPOINT is not set: the demo uses a seeded random model (its output is noise-like;"
    echo "the accuracy table then only shows that every backend matches the PyTorch reference)."
fi

plugin=$("$PY" -c 'from ttsr.plugin.native import default_plugin_library; print(default_plugin_library())')
# `import tensorrt` alone also succeeds with only the type stubs installed, hence the Builder check.
if nvidia-smi > /dev/null 2>&1 && "$PY" -c 'import tensorrt; tensorrt.Builder' > /dev/null 2>&1 \
        && [ -f "$plugin" ]; then
    echo "== GPU path: TensorRT engine =="
    "$PY" build_engine.py "${MODEL[@]}" --output "$OUT/ttsr.engine" --precision fp16 \
        --min-lr 16 --opt-lr 40 --max-lr 64 --min-ref 64 --opt-ref 144x176 --max-ref 256 \
        --timing-cache "$OUT/timing.cache"
    "$PY" infer.py --pairs "$PAIRS" --backend trt --engine "$OUT/ttsr.engine" "${MODEL[@]}" \
        --warmup 5 --iterations 50 --out-dir "$OUT/sr" --json "$OUT/report.json" --report "$OUT/report"
else
    echo "== CPU path (no GPU, TensorRT or plugin library here): rewritten ONNX graph on ONNX Runtime =="
    "$PY" -m ttsr.cli export "$OUT/ttsr.rewritten.onnx" --rewrite "${MODEL[@]}"
    "$PY" infer.py --pairs "$PAIRS" --backend ort --onnx "$OUT/ttsr.rewritten.onnx" "${MODEL[@]}" \
        --warmup 1 --iterations 3 --out-dir "$OUT/sr" --json "$OUT/report.json" --report "$OUT/report"
fi
