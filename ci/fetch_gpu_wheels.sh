#!/usr/bin/env bash
# Run on the development machine (it has network): download into .whl/ the wheels that the GPU
# machine lacks (CPython 3.12, manylinux x86_64), so that ci/gpu.sh can install them there
# without network. The folder is git-ignored through .git/info/exclude and travels with
#     run(command="bash ci/gpu.sh", carry=[".whl"])
#
# Not fetched because the GPU machine already has them: scipy, typing-extensions (qiskit),
# psutil and python-dateutil (qiskit-aer), numba, numba-cuda, pytest, hypothesis.
# numpy is fetched although the machine has one: its numpy 2.5.2 lacks np.row_stack, which
# numba-cuda 0.30.4 still uses, so every CUDA kernel failed to compile there (2026-11-24).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
DEST=.whl
# The GPU peer of benchmarks/gpu_suite.py, kept apart: with it (60 MB) .whl would pass the
# device tool's 64 MiB carry limit, so it travels in a second call (see ci/gpu.sh, SUITE=only).
# PEER_WHEELS= (empty) skips it.
PEER_DEST=.whl-custatevec
PEER_WHEELS=${PEER_WHEELS-custatevec-cu13==1.15.0}

# Exact pins: one version of each (two wheels of one name stop the whole install there).
WHEELS=(
    numpy==2.4.6                   # numba-cuda 0.30.4 needs numpy < 2.5 (see above)
    qiskit==2.6.2
    rustworkx==0.18.1              # qiskit
    dill==0.4.1                    # qiskit
    stevedore==5.10.0              # qiskit (needs no pbr at run time since 5.x)
    qiskit-aer==0.18.2             # optional peer, for side-by-side numbers
    qiskit-qasm3-import==0.6.0     # gpuprovider: OpenQASM 3 files
    openqasm3==1.0.1               # qiskit-qasm3-import
    antlr4-python3-runtime==4.13.2 # openqasm3[parser]
    tqdm==4.70.1                   # gpuprovider (the machine has a tqdm too; this pins ours)
)

exclude=.git/info/exclude
if [ -d .git ]; then
    for folder in "$DEST" "$PEER_DEST"; do
        grep -qx "/$folder/" "$exclude" 2>/dev/null || echo "/$folder/" >>"$exclude"
    done
fi

download() {  # download DEST WHEEL...
    local dest=$1
    shift
    rm -rf "$dest"
    mkdir -p "$dest"
    "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: \
        --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        --platform manylinux1_x86_64 \
        -d "$dest" "$@"
}

download "$DEST" "${WHEELS[@]}"
if [ -n "$PEER_WHEELS" ]; then
    # shellcheck disable=SC2086  # PEER_WHEELS is a list of requirements
    download "$PEER_DEST" $PEER_WHEELS
    ls -l "$PEER_DEST"
fi

# A dependency that none of the pins above (nor the GPU machine) provides would fail there.
echo "Requires-Dist of the downloaded wheels (extras skipped):"
for wheel in "$DEST"/*.whl; do
    unzip -p "$wheel" '*.dist-info/METADATA' | grep '^Requires-Dist' | grep -v 'extra ==' \
        | sed "s|^|  $(basename "$wheel" | cut -d- -f1): |" || true
done
ls -l "$DEST"
echo "total: $(du -sh "$DEST" | cut -f1) in $(ls "$DEST" | wc -l) wheels"
