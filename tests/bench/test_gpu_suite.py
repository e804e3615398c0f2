"""The CPU-side parts of benchmarks/gpu_suite.py: options, the gate arrays handed to
cuStateVec and their target order (checked by a NumPy model of custatevecApplyMatrix), and
how it reports a missing cuStateVec. The GPU parts run only on the GPU machine."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.quantum_info import Operator, random_unitary

from gpuprovider import benchsuite

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_suite.py"


@pytest.fixture(scope="module")
def suite():
    spec = importlib.util.spec_from_file_location("gpu_suite", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_defaults_cover_every_family_at_24_to_32_qubits(suite):
    args = suite.parse_args([])
    assert args.families == list(benchsuite.FAMILIES)
    assert args.qubits == (24, 26, 28, 30, 32)
    assert args.precisions == ["double", "single"]


@pytest.mark.parametrize(("argv", "named"), [
    (["--families", "ghz,nope"], "'nope'"), (["--qubits", "24-x"], "'24-x'"),
    (["--precisions", "half"], "'half'"), (["--repeats", "0"], "--repeats"),
])
def test_bad_options_exit_2(suite, argv, named, capsys):
    with pytest.raises(SystemExit) as stopped:
        suite.parse_args(argv)
    assert stopped.value.code == 2
    assert named in capsys.readouterr().err


@pytest.mark.parametrize("precision", ["double", "single"])
def test_gate_arrays_are_row_major_in_the_precision(suite, precision):
    arrays = suite.gate_arrays(benchsuite.qv(4), precision)
    assert len(arrays) == len(benchsuite.gate_list(benchsuite.qv(4)))
    for matrix, targets in arrays:
        assert matrix.flags.c_contiguous and matrix.dtype == suite.DTYPES[precision]
        assert targets.dtype == np.int32 and matrix.shape == (4, 4)


def test_targets_are_little_endian_as_custatevec_takes_them(suite):
    """Bit j of the matrix index is state bit targets[j]: as qiskit's Operator on qargs."""
    rng = np.random.default_rng(5)
    state = rng.normal(size=32) + 1j * rng.normal(size=32)
    matrix = random_unitary(8, seed=11).data
    targets = np.array([3, 0, 4], dtype=np.int32)
    circuit = QuantumCircuit(5)
    circuit.unitary(matrix, [3, 0, 4])
    expected = Operator(circuit).data @ state
    assert np.allclose(suite.reference_apply(state, matrix, targets), expected)
    assert not np.allclose(suite.reference_apply(state, matrix, targets[::-1]), expected)


@pytest.mark.parametrize("family", list(benchsuite.FAMILIES))
def test_gate_arrays_give_the_statevector_state(suite, family):
    circuit = benchsuite.FAMILIES[family](5)
    assert np.allclose(suite.reference_state(circuit), suite.statevector(circuit), atol=1e-12)


def test_dry_run_builds_every_circuit(suite, capsys):
    assert suite.main(["--dry-run", "--qubits", "4,5", "--check-qubits", "4"]) == 0
    out = capsys.readouterr().out
    for family in benchsuite.FAMILIES:
        assert f"{family}: gate list at 4 qubits off Statevector" in out
    assert out.count("n=5:") == len(benchsuite.FAMILIES)


def test_missing_custatevec_is_explained(suite, monkeypatch):
    monkeypatch.delenv("CUSTATEVEC_LIB", raising=False)
    without = [entry for entry in suite.sys.path
               if not (Path(entry or ".") / suite.LIBRARY).exists()]
    monkeypatch.setattr(suite.sys, "path", without)
    assert suite.find_library() is None
    cusv, why = suite.load_custatevec()
    assert cusv is None
    expected = "CuPy" if importlib.util.find_spec("cupy") is None else "custatevec-cu13"
    assert expected in why


def test_table_shows_the_ratio_over_our_simulation_time(suite):
    row = {"family": "qv", "num_qubits": 24, "precision": "double", "num_gates": 288,
           "ours": {"wall": 0.5, "simulation": 0.4}, "custatevec": 0.2, "skipped": []}
    line = suite.table([row])[-1]
    assert line.split()[-1] == "0.50x"
