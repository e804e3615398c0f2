#!/usr/bin/env bash
# The one-command check on the GPU machine (H200, no network), from the repo root. After
# `bash ci/fetch_gpu_wheels.sh` on the development machine, call the device tool with
#     run(command="bash ci/gpu.sh", carry=[".whl"])
# It installs the carried wheels and the project into /tmp/site, prints the GPU and
# `gpuprovider info`, runs the whole test suite (the `device` tests run on "GPU" too), then
# benchmarks/gpu_bench.py, whose table is printed last. pytest.log, gpu_bench.log and
# gpu_bench.json land in $OUT (else /tmp). It keeps to the device's 10-minute limit: pytest
# gets PYTEST_S seconds, the benchmark what is left of TOTAL_S. A failing test does not stop
# the benchmark, but the script then exits non-zero. Only the tests that touch the GPU run
# (PYTEST_K, a pytest -k expression: the "GPU" device parameter, the CUDA kernel files and
# the kernel contract suite);
# CI runs the rest on every commit.
#
# Extra benchmark options go in BENCH_ARGS (later options win), e.g. a quick partial run:
#     BENCH_ARGS="--max-qubits 28 --skip-end-to-end" bash ci/gpu.sh
#
# SUITE=1 also runs benchmarks/gpu_suite.py (ours beside cuStateVec) after gpu_bench.py, which
# then leaves it SUITE_S seconds; SUITE=only runs the suite alone (no tests, no gpu_bench).
# Its cuStateVec wheel (.whl-custatevec, 60 MB) does not fit in one carry with .whl, so run it
# as a second call while the machine is still warm (its /tmp/site and .whl are kept):
#     run(command="bash ci/gpu.sh", carry=[".whl"])
#     run(command="SUITE=only bash ci/gpu.sh", carry=[".whl-custatevec"])
# Options for the suite go in SUITE_ARGS; it writes gpu_suite.log and gpu_suite.json.
#
# ESTIMATOR=only runs benchmarks/estimator_bench.py alone on the GPU (our EstimatorV2 beside
# qiskit-aer's on the machine's CPU cores): another call while the machine is warm,
#     run(command="ESTIMATOR=only bash ci/gpu.sh", carry=[".whl"])
# with ESTIMATOR_ARGS (default: Aer on the first 50 of the 1,000 sets, scaled and marked as
# estimated); it writes estimator_bench.log and estimator_bench.json.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
SITE=${SITE:-/tmp/site}
OUT_DIR=${OUT:-/tmp}
TOTAL_S=${TOTAL_S:-570}
PYTEST_S=${PYTEST_S:-270}
PYTEST_K=${PYTEST_K:-GPU or cuda or contract}
BENCH_ARGS=${BENCH_ARGS:-}
SUITE=${SUITE:-0}
SUITE_S=${SUITE_S:-240}
SUITE_ARGS=${SUITE_ARGS:-}
ESTIMATOR=${ESTIMATOR:-0}
ESTIMATOR_ARGS=${ESTIMATOR_ARGS:---peer-sets 50}
export PYTHONUNBUFFERED=1
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
# The repo root holds a `gpuprovider/` without its `kernels` subpackage (it lives in
# kernels/): `python -m` from here must not put the root first on sys.path.
SAFE=(env PYTHONSAFEPATH=1)

section() { printf '\n=== %s (at %d s)\n' "$1" "$SECONDS"; }

install_wheels() {
    local folder
    for folder in .whl .whl-custatevec; do
        if compgen -G "$folder/*.whl" >/dev/null; then
            "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
                --target "$SITE" "$folder"/*.whl
        else
            echo "no $folder/*.whl: using what is installed (run ci/fetch_gpu_wheels.sh)"
        fi
    done
}

install_project() {
    local log="$OUT_DIR/pip-project.log"
    if "$PY" -m pip install -q --no-index --no-deps --no-build-isolation --no-compile \
        --upgrade --target "$SITE" . >"$log" 2>&1; then
        return
    fi
    grep -m1 -iE 'error' "$log" || true
    echo "pip could not build the project here (see $log); copying its packages instead"
    rm -rf "$SITE/gpuprovider"
    cp -r gpuprovider "$SITE/gpuprovider"
    cp -r kernels "$SITE/gpuprovider/kernels"
}

section "install into $SITE"
mkdir -p "$SITE" "$OUT_DIR"
install_wheels
install_project
"$PY" -m pip list 2>/dev/null \
    | grep -iE '^(qiskit|qiskit-aer|rustworkx|numba|numba-cuda|numpy|scipy|pytest) ' || true

section "GPU"
nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,clocks.sm,clocks.max.sm \
    --format=csv 2>&1 || echo "nvidia-smi failed"
"${SAFE[@]}" "$PY" -m gpuprovider.cli info

pytest_status=0
bench_status=0
suite_status=0
estimator_status=0
if [ "$ESTIMATOR" = only ]; then
    SUITE=skip
    section "EstimatorV2 sweep: ours on the GPU beside qiskit-aer on the CPU"
    # shellcheck disable=SC2086  # ESTIMATOR_ARGS is a list of options
    timeout $((TOTAL_S - SECONDS)) "${SAFE[@]}" "$PY" benchmarks/estimator_bench.py --device GPU \
        --json "$OUT_DIR/estimator_bench.json" $ESTIMATOR_ARGS 2>&1 \
        | tee "$OUT_DIR/estimator_bench.log" || estimator_status=$?
fi
if [ "$SUITE" != only ] && [ "$SUITE" != skip ]; then
    section "tests (at most $PYTEST_S s)"
    "${SAFE[@]}" timeout "$PYTEST_S" "$PY" -m pytest -q -p no:cacheprovider -k "$PYTEST_K" 2>&1 \
        | tee "$OUT_DIR/pytest.log" || pytest_status=$?
    echo  # a stopped run leaves its progress line open
    case "$pytest_status" in
        0) echo "pytest passed" ;;
        124) echo "pytest FAILED: stopped after $PYTEST_S s (log: $OUT_DIR/pytest.log)" ;;
        *) echo "pytest FAILED: exit status $pytest_status (log: $OUT_DIR/pytest.log)" ;;
    esac

    # New sizes start for bench_budget s; the minute after it lets the last ones finish.
    reserved=$([ "$SUITE" = 1 ] && echo "$SUITE_S" || echo 0)
    left=$((TOTAL_S - SECONDS - reserved))
    bench_limit=$((left > 90 ? left : 90))
    bench_budget=$((bench_limit - 60))
    section "benchmark (new sizes started for $bench_budget s; figures: $OUT_DIR/gpu_bench.json)"
    # shellcheck disable=SC2086  # BENCH_ARGS is a list of options
    timeout "$bench_limit" "$PY" benchmarks/gpu_bench.py --json "$OUT_DIR/gpu_bench.json" \
        --budget-s "$bench_budget" $BENCH_ARGS 2>&1 | tee "$OUT_DIR/gpu_bench.log" \
        || bench_status=$?
    if [ "$bench_status" -ne 0 ]; then
        echo "benchmark FAILED: exit status $bench_status (log: $OUT_DIR/gpu_bench.log)"
    fi
fi

if [ "$SUITE" = 1 ] || [ "$SUITE" = only ]; then
    suite_limit=$((TOTAL_S - SECONDS > 90 ? TOTAL_S - SECONDS : 90))
    suite_budget=$((suite_limit - 60))
    section "suite: ours beside cuStateVec (new runs started for $suite_budget s)"
    # shellcheck disable=SC2086  # SUITE_ARGS is a list of options
    timeout "$suite_limit" "$PY" benchmarks/gpu_suite.py --json "$OUT_DIR/gpu_suite.json" \
        --budget-s "$suite_budget" $SUITE_ARGS 2>&1 | tee "$OUT_DIR/gpu_suite.log" \
        || suite_status=$?
    if [ "$suite_status" -ne 0 ]; then
        echo "suite FAILED: exit status $suite_status (log: $OUT_DIR/gpu_suite.log)"
    fi
fi
# Nothing more is printed on success: the last table stays last.
[ "$pytest_status" -eq 0 ] && [ "$bench_status" -eq 0 ] && [ "$suite_status" -eq 0 ] \
    && [ "$estimator_status" -eq 0 ]
