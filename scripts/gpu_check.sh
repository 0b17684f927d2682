#!/usr/bin/env bash
# Issue #19's GPU checks in one call, on a device machine lent to a session (never needed otherwise).
#
#   bash scripts/gpu_check.sh wheels   # here, once: the pure-Python needs the device image lacks, into .whl/
#   bash scripts/gpu_check.sh run      # there (device `run`, carry [".whl"]): CUDA tests, then bench_gpu.py
#
# The device image's python3 holds a CUDA PyTorch, numpy, h5py, pluggy, typer, rich, scikit-learn,
# transformers and pytest; lsdb runs from the working tree (PYTHONPATH), not installed. What `run`
# writes lands in $OUT: gpu-tests.log, bench_gpu.log and bench_gpu.json.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
wheels)
    echo /.whl/ >> .git/info/exclude
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl sqlalchemy greenlet alembic mako typing_extensions
    ls .whl
    ;;
run)
    out="${OUT:-/tmp/gpu-check}"
    mkdir -p "$out"
    if compgen -G ".whl/*.whl" > /dev/null; then
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
        export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
    fi
    export PYTHONPATH="$PWD:$PWD/plugins:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
    python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
    # every test marked gpu or skipped without CUDA, where the CUDA paths are
    python3 -m pytest -q -p no:cacheprovider -rs -m gpu tests/landscape tests/plugins/test_surfaces_precision.py \
        tests/analyses/test_memory_budget.py 2>&1 | tee "$out/gpu-tests.log" \
        || echo "gpu tests failed (see gpu-tests.log)"
    python3 scripts/bench_gpu.py ${BENCH_ARGS:---repeats 3} --json "$out/bench_gpu.json" 2>&1 | tee "$out/bench_gpu.log"
    ;;
*)
    echo "usage: bash scripts/gpu_check.sh wheels|run" >&2
    exit 2
    ;;
esac
