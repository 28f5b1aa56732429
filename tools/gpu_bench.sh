#!/usr/bin/env bash
# benchmarks/bench_gpu.py on the lent GPU machine, in one call (benchmarks/README.md, "On the lent GPU"):
# puts together onnxruntime-gpu from its parts (../shared/gpu/README.md: /tmp/ortgpu from earlier calls, plus any
# parts this call carries in .gpuwhl/), installs it into /tmp/site, puts the CUDA libraries of the machine's own
# nvidia-* packages on LD_LIBRARY_PATH, prints versions and devices, then runs the benchmark with this script's
# arguments (default: --device cuda --size 8192, both models). Everything goes to stdout.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1

if [ -d .gpuwhl ]; then  # parts carried by this call join those sent earlier
  mkdir -p /tmp/ortgpu && cp .gpuwhl/part_* .gpuwhl/WHEEL_NAME /tmp/ortgpu/ 2>/dev/null
  cp .gpuwhl/SHA256 /tmp/ortgpu/ 2>/dev/null
fi
if [ -f /tmp/ortgpu/WHEEL_NAME ] && ls /tmp/ortgpu/part_* >/dev/null 2>&1; then
  wheel="/tmp/ortgpu/$(cat /tmp/ortgpu/WHEEL_NAME)"
  echo "gpu_bench: parts in /tmp/ortgpu: $(ls /tmp/ortgpu | tr '\n' ' ')"
  cat /tmp/ortgpu/part_* > "$wheel"
  if [ -s /tmp/ortgpu/SHA256 ] && [ "$(sha256sum "$wheel" | cut -d' ' -f1)" != "$(cat /tmp/ortgpu/SHA256)" ]; then
    echo "gpu_bench: $wheel does not match its SHA256: a part is missing or the machine went cold; send the parts again"
  elif [ -d /tmp/site/onnxruntime ] || "$PY" -m pip install -q --no-deps --no-compile --target /tmp/site "$wheel"; then
    export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
  else
    echo "gpu_bench: installing $wheel failed; the machine's own onnxruntime runs"
  fi
else
  echo "gpu_bench: no onnxruntime-gpu parts in /tmp/ortgpu; the machine's own onnxruntime runs (CPU unless a GPU build)"
fi

libs=$("$PY" -c 'import glob, os, sys; print(":".join(sorted({d for p in sys.path if p for d in glob.glob(os.path.join(p, "nvidia", "*", "lib"))})))')
if [ -n "$libs" ]; then
  export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
echo "gpu_bench: LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
if command -v nvidia-smi >/dev/null; then nvidia-smi; else echo "gpu_bench: nvidia-smi not found"; fi
"$PY" -c 'import onnxruntime as o; print("gpu_bench: onnxruntime", o.__version__, o.__file__, o.get_available_providers())'
cuda=$("$PY" -c 'import onnxruntime, os; print(os.path.join(os.path.dirname(onnxruntime.__file__), "capi", "libonnxruntime_providers_cuda.so"))')
if [ -f "$cuda" ]; then
  echo "gpu_bench: libraries the CUDA provider misses: $(ldd "$cuda" | grep 'not found' | tr -s ' \t\n' ' ' || true)"
fi
"$PY" benchmarks/bench_gpu.py "$@"
