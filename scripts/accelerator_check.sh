#!/usr/bin/env bash
# The accelerator measurements of docs/benchmarks_e2e.md and docs/benchmarks_h200.md in one go, sized to finish in
# under 8 minutes on one H100/H200 host (16 cores), so that a short device loan can rerun it once.
#
#   OUT=/tmp/accel bash scripts/accelerator_check.sh      # results: $OUT/*.json, $OUT/*.md, $OUT/*.log
#
# Runs from a checkout without installing it (PYTHONPATH); needs jax with CUDA, torch with CUDA and the test extra's
# mmaction2/mmcv-lite in the machine's Python ($PYTHON, default python3). On a host without a package index, set
# SKELJAX_WHEELS to a folder made by scripts/offline_wheels.sh: they are installed into /tmp/skeljax_site first,
# touching nothing already installed (the folder holds only packages such images lack, so none is shadowed).
# scripts/check_environment.py then checks every import and the GPU in seconds, and the script stops there if
# anything is missing. Each step has its own time limit; a failed step does not stop the
# others, and the script's exit status says whether all of them passed.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/skeljax_accel}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
# Measured on the H200 (docs/speed.md, "GPU compile time and flags"): Triton GEMM autotuning triples compile time for no speed.
export XLA_FLAGS="${XLA_FLAGS:---xla_gpu_enable_triton_gemm=false}"
status=0
step() {  # step NAME SECONDS COMMAND...: run with a limit, log to $OUT/NAME.log, remember a failure
  local name=$1 limit=$2
  shift 2
  echo "== $name (limit ${limit}s): $*"
  local t0=$SECONDS
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  echo "   exit $rc after $((SECONDS - t0)) s; last lines:"
  tail -n 12 "$OUT/$name.log" | sed 's/^/   | /'
  [ $rc -eq 0 ] || status=1
}

PYTHON=${PYTHON:-python3}
if [ -n "${SKELJAX_WHEELS:-}" ]; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/skeljax_site \
    "$SKELJAX_WHEELS"/*.whl || exit 1
  export PYTHONPATH="$PYTHONPATH:/tmp/skeljax_site"
fi
(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true) >"$OUT/machine.txt" 2>&1
"$PYTHON" scripts/check_environment.py --reference --require-gpu >>"$OUT/machine.txt" 2>&1
preflight=$?
cat "$OUT/machine.txt"
[ $preflight -eq 0 ] || exit 1

# 1. Training step at the recipe's global batch (128) with and without remat, inference at 256, against PyTorch.
step step_and_inference 200 "$PYTHON" scripts/benchmark.py --batch 256 --train-batch 128 --frames 100 --repeats 10 \
  --remat on --no-mixed-precision --no-memory --no-pipeline --json "$OUT/benchmark.json" --update-docs --docs "$OUT/benchmarks_h200.md"
# 2. Input pipeline scaling with worker processes (NTU shapes).
step pipeline 90 "$PYTHON" scripts/benchmark_pipeline.py --quick --feats j --workers 0 1 2 4 8 16
# 3. The trainer's whole loop against PyTorch's (6,000-sample NTU-shaped set, generated first: not timed).
step e2e 240 "$PYTHON" scripts/benchmark_e2e.py --batch 128 --steps 50 --num-per-class 100 --data-dir "$OUT/data" \
  --json "$OUT/e2e.json" --update-docs --docs "$OUT/benchmarks_e2e.md"
rm -rf "$OUT/data"
exit $status
