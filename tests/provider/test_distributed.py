"""A statevector spread over MPI ranks (``gpuprovider.mpi``, ``kernels/distributed.py``):
2 and 4 CPU ranks under ``mpiexec`` give every rank the same Result as one process with the
same seed (counts, memory, statevectors, probabilities, expectation values, mid-circuit
measurement, reset and ``if_test``), and the planner's index-bit swaps stay few."""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from qiskit import QuantumCircuit

from gpuprovider import GPUSimulator
from gpuprovider.admission import Turnstile
from gpuprovider import device as devices
from gpuprovider.compile.lower import lower_circuit
from gpuprovider.compile.plan import planned
from gpuprovider.compile.program import PermutationOp, TileOp
from gpuprovider.exceptions import InvalidOptionError, JobCancelledError
from gpuprovider.mpi import MIN_LOCAL_QUBITS
from properties.harness import PROFILE
from properties.strategies import interleaved_circuits, observables, parameterized_circuits
from support import distributed_runs

HELPER = Path(distributed_runs.__file__)
MPIEXEC = Path(sys.executable).parent / "mpiexec"
LAUNCH_SECONDS = 300


def _launcher() -> str:
    """The reason the MPI runs cannot be made here, or "" when they can."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return "mpi4py is not installed (pip install 'gpuprovider[mpi]')"
    if not MPIEXEC.exists() and shutil.which("mpiexec") is None:
        return f"no mpiexec beside {sys.executable} or on PATH (pip install mpich)"
    return ""


@pytest.fixture(scope="module")
def single_process():
    return distributed_runs.run_all(distributed=False)


def _launch(ranks: int, out: Path, *arguments: str, **variables: str) -> list:
    """Each rank's results of ``distributed_runs.py OUT *arguments`` under ``mpiexec``, with
    the environment ``variables`` set."""
    mpiexec = str(MPIEXEC) if MPIEXEC.exists() else shutil.which("mpiexec")
    environment = {**os.environ, "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
                   **variables}
    done = subprocess.run([mpiexec, "-n", str(ranks), sys.executable, str(HELPER), str(out),
                           *arguments], capture_output=True, text=True, timeout=LAUNCH_SECONDS,
                          env=environment)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return [pickle.loads((out / f"rank{rank}.pkl").read_bytes()) for rank in range(ranks)]


def _assert_same(got, expected, where: str) -> None:
    if isinstance(expected, dict):
        assert set(got) == set(expected), where
        for key in expected:
            _assert_same(got[key], expected[key], f"{where}[{key!r}]")
    elif isinstance(expected, list):
        assert len(got) == len(expected), where
        for index, (a, b) in enumerate(zip(got, expected)):
            _assert_same(a, b, f"{where}[{index}]")
    else:
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10, err_msg=where)


@pytest.mark.parametrize("memory", ["host", "device"])
@pytest.mark.parametrize("ranks", [2, 4])
def test_every_rank_returns_the_single_process_result(ranks, memory, single_process, tmp_path):
    """On CPU ranks, and on ranks whose slices are opaque device-memory states (the CPU
    kernels boxed: the exchanges are staged through host memory, as on GPU ranks)."""
    reason = _launcher()
    if reason:
        pytest.skip(reason)
    per_rank = _launch(ranks, tmp_path, *(["--device-memory"] if memory == "device" else []))
    for rank, results in enumerate(per_rank):
        for name, expected in single_process.items():
            got = results[name]
            where = f"{ranks} ranks, rank {rank}, circuit {name!r}"
            if name == "estimator":
                _assert_same(got["saved"], expected["saved"], where)
                continue
            assert got["counts"] == expected["counts"], where
            assert got["memory"] == expected["memory"], where
            _assert_same(got["saved"], expected["saved"], where)
            assert got["metadata"]["ranks"] == ranks, where
            assert got["metadata"] == per_rank[0][name]["metadata"], where
    # Each circuit has dense gates on the global qubits: they were exchanged.
    for name, results in per_rank[0].items():
        if name == "estimator":
            continue
        assert results["metadata"]["swaps"] > 0, name
        assert results["metadata"]["bytes_exchanged"] > 0, name


@pytest.mark.skipif(bool(_launcher()), reason=_launcher() or "MPI runs can be made")
def test_gpu_ranks_of_the_cuda_kernels_return_the_single_process_result(tmp_path):
    """The CUDA kernel set itself on 2 ranks (under Numba's CUDA simulator: its kernels run
    on the host; the slices are device arrays, staged through host memory for the
    exchanges) gives the CPU's single-process counts, memory and statevector."""
    expected = distributed_runs.run_small("CPU", distributed=False)
    per_rank = _launch(2, tmp_path, "--simulated-gpu", NUMBA_ENABLE_CUDASIM="1")
    for rank, results in enumerate(per_rank):
        got = results["small"]
        assert got["counts"] == expected["counts"], rank
        assert got["memory"] == expected["memory"], rank
        _assert_same(got["saved"], expected["saved"], f"rank {rank}")
        assert got["metadata"]["ranks"] == 2 and got["metadata"]["swaps"] > 0


def _drawn(strategy: st.SearchStrategy, count: int) -> list:
    """``count`` examples of ``strategy`` (the profile's seed and size), drawn up front so
    that one ``mpiexec`` launch runs them all (a failure names the example; no shrinking)."""
    drawn = []

    @settings(PROFILE, max_examples=count, phases=[Phase.generate])
    @given(strategy)
    def collect(example) -> None:
        drawn.append(example)

    collect()
    return drawn


@st.composite
def _estimator_pubs(draw) -> tuple:
    """A parameterised circuit on 6-8 qubits, an observable on them and its bindings."""
    case = draw(parameterized_circuits(min_qubits=6, max_qubits=8, max_gates=10))
    observable = draw(observables(case.circuit.num_qubits))
    return case.circuit, observable, case.values()


@pytest.mark.skipif(bool(_launcher()), reason=_launcher() or "MPI runs can be made")
@pytest.mark.parametrize("ranks", [2, 4])
def test_drawn_circuits_on_spread_states_equal_one_process(ranks):
    """Gates of every kind with measurements, resets, ``if_test`` and saves between them, and
    final measurements that later index-bit swaps could move, through ``run`` and SamplerV2;
    parameter sweeps with observables through EstimatorV2: every rank gets the single
    process's counts, memory (same seed), saved values and expectation values, and the
    states were spread."""
    batch = _drawn(interleaved_circuits(), PROFILE.max_examples)
    pubs = _drawn(_estimator_pubs(), max(2, PROFILE.max_examples // 3))
    drawn = {"circuits": [case.circuit for case in batch], "estimator": pubs,
             "sampler": [case.circuit for case in batch[::3]]}
    expected = distributed_runs.run_drawn(drawn, distributed=False)
    with tempfile.TemporaryDirectory() as folder:
        drawn_file = Path(folder, "drawn.pkl")
        drawn_file.write_bytes(pickle.dumps(drawn))
        per_rank = _launch(ranks, Path(folder), str(drawn_file))
    for rank, results in enumerate(per_rank):
        for index, (got, want) in enumerate(zip(results["run"], expected["run"])):
            where = f"{ranks} ranks, rank {rank}, circuit {index}:{batch[index]!r}"
            assert got["counts"] == want["counts"], where
            assert got["memory"] == want["memory"], where
            _assert_same(got["saved"], want["saved"], where)
        for index, (got, want) in enumerate(zip(results["estimator"], expected["estimator"])):
            circuit, observable, values = pubs[index]
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-10, err_msg=(
                f"{ranks} ranks, rank {rank}, estimator pub {index}: {observable}, "
                f"values {values.tolist()}\n{circuit.draw(fold=-1)}"))
        assert results["sampler"] == expected["sampler"], f"{ranks} ranks, rank {rank}"
    spread = [results["metadata"] for results in per_rank[0]["run"] if results["metadata"]]
    assert all(metadata["ranks"] == ranks for metadata in spread)
    # Idle qubits are left out and states of fewer than MIN_LOCAL_QUBITS + g qubits are not
    # spread; circuits of SWAPs and measurements alone need no state at all.
    assert len(spread) >= len(batch) / 2 and sum(m["swaps"] for m in spread) > 0


# --- without MPI ------------------------------------------------------------------------------


def test_distributed_option_is_validated():
    with pytest.raises(InvalidOptionError, match="distributed='yes'"):
        GPUSimulator(distributed="yes")
    for value in ("auto", "AUTO", True, False):
        GPUSimulator(distributed=value)


def test_an_mpi_pool_is_not_spread(monkeypatch):
    """Under mpi4py.futures the ranks run separate tasks: "auto" must not wait for them (and
    must not even look for MPI)."""
    import types

    from gpuprovider import mpi

    monkeypatch.setenv("PMI_SIZE", "4")
    monkeypatch.setitem(sys.modules, "mpi4py.futures", types.ModuleType("mpi4py.futures"))
    monkeypatch.setattr(mpi, "world", lambda: pytest.fail("looked for the MPI world"))
    assert mpi.spread(devices.CPU, "auto") is devices.CPU


def test_ranks_on_different_devices_do_not_spread(monkeypatch):
    """device="auto" can find a GPU on some ranks only: no rank spreads (a spread run on
    some ranks would wait for the others), and True says why."""
    from gpuprovider import mpi

    class World:
        def Get_size(self) -> int:
            return 2

        def allgather(self, value):
            return [value, "GPU" if value == "CPU" else "CPU"]

    monkeypatch.setattr(mpi, "world", lambda: (World(), ""))
    assert mpi.spread(devices.CPU, "auto") is devices.CPU
    with pytest.raises(InvalidOptionError, match="not every rank runs on the CPU"):
        mpi.spread(devices.CPU, True)


def test_a_single_process_is_not_spread():
    result = GPUSimulator(device="CPU", distributed=True).run(
        _hadamards(7, [6, 5]), shots=10, seed_simulator=1).result()
    assert "distributed" not in result.results[0].metadata


def test_importing_gpuprovider_loads_no_mpi():
    code = ("import sys, gpuprovider; from gpuprovider import GPUSimulator; "
            "GPUSimulator(device='CPU').run(__import__('qiskit').QuantumCircuit(1)).result(); "
            "assert 'mpi4py' not in sys.modules, 'mpi4py imported'")
    environment = {name: value for name, value in os.environ.items()
                   if not name.startswith(("PMI", "OMPI_", "PMIX", "MV2_"))}
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, env=environment)


def _hadamards(num_qubits: int, order: list[int]) -> QuantumCircuit:
    circuit = QuantumCircuit(num_qubits)
    for qubit in order:
        circuit.h(qubit)
    return circuit


def _spread_plan(circuit: QuantumCircuit, global_qubits: int) -> list:
    """The planned ops of ``circuit`` on a state with ``global_qubits`` global qubits."""
    policy = devices.CPU.with_policy(plan_min_qubits=0, global_qubits=global_qubits,
                                     distributed_min_qubits=0).policy
    return planned(lower_circuit(circuit, np.dtype(np.complex128)),
                   policy.plan_policy(np.complex128)).ops


def _global_swaps(circuit: QuantumCircuit, global_qubits: int) -> int:
    """How many index-bit swaps the planner puts in ``circuit``'s program."""
    local = circuit.num_qubits - global_qubits
    return sum(isinstance(op, PermutationOp) and int(op.qubits.max()) >= local
               for op in _spread_plan(circuit, global_qubits))


def test_final_measurements_need_no_swap_back():
    """Measured qubits sit wherever the swaps left them: a dense gate on a global qubit
    before the measurement costs one swap, and SWAP gates none."""
    n = 10
    dense = QuantumCircuit(n)
    dense.h(range(n))
    dense.measure_all()
    assert _global_swaps(dense, 1) == 1
    assert _global_swaps(dense, 2) == 2
    swapped = QuantumCircuit(n)
    swapped.x(0)
    swapped.swap(0, n - 1)
    swapped.measure_all()
    assert _global_swaps(swapped, 1) == 0


def test_wide_final_measurements_are_drawn_in_the_single_process_layout(monkeypatch):
    """Past MARGINAL_SAMPLING_MAX_QUBITS measured qubits the draw walks the whole state in
    index order, so the spread state ends in the layout the single process has (the SWAP
    gates' relabelling): here qubit q where SWAP gates put it."""
    from gpuprovider.compile import plan

    monkeypatch.setattr(plan, "MARGINAL_SAMPLING_MAX_QUBITS", 3)
    n = 8
    circuit = QuantumCircuit(n)
    circuit.h(range(n))
    circuit.swap(0, n - 1)
    circuit.swap(1, 2)
    circuit.measure_all()
    ops = _spread_plan(circuit, 2)
    where = {op.clbit: op.qubit for op in ops if getattr(op, "final", False)}
    assert where == {0: n - 1, 1: 2, 2: 1, **{q: q for q in range(3, n - 1)}, n - 1: 0}
    assert _global_swaps(circuit, 2) == 4  # two in for the h, two back for the draw


def test_the_planner_swaps_each_global_qubit_in_once():
    """Diagonals and controls on the global qubits need no swap; dense gates on them, again
    and again between gates on local qubits, one swap per global qubit, none back (four
    local qubits are never needed again, so they make room)."""
    n = 8
    circuit = QuantumCircuit(n)
    for _ in range(3):
        circuit.h([0, 1])
        circuit.cp(0.3, n - 1, 0)
        circuit.cz(n - 2, n - 1)
        circuit.rz(0.2, n - 1)
        circuit.cx(n - 1, 1)
    assert _global_swaps(circuit, 2) == 0
    for _ in range(5):
        circuit.h(n - 1)
        circuit.cx(n - 1, n - 2)
        circuit.h(0)
    assert _global_swaps(circuit, 2) == 2
    assert _global_swaps(circuit, 1) == 1


def test_the_planner_swaps_out_the_qubit_needed_last():
    """With two local qubits in use and a third idle, the idle one makes room each time:
    the gates on the global qubits need no more swaps than the global qubits."""
    circuit = QuantumCircuit(MIN_LOCAL_QUBITS + 2)
    top = circuit.num_qubits - 1
    for _ in range(4):
        for qubit in (0, 1, top, top - 1):
            circuit.h(qubit)
        circuit.cx(0, top)
    assert _global_swaps(circuit, 2) == 2


def test_the_turnstile_runs_jobs_in_submission_order():
    """A spread device's jobs take turns in the order they were submitted; one cancelled
    while it waits gives its turn up."""
    turnstile = Turnstile()
    order: list[str] = []

    class Control:
        def __init__(self) -> None:
            self.cancel_requested = threading.Event()

    def admit(name: str):
        @contextmanager
        def admitted(control):
            order.append(name)
            yield name
        return turnstile.ordered(admitted)

    first, second, third = admit("first"), admit("second"), admit("third")
    controls = [Control() for _ in range(3)]
    controls[1].cancel_requested.set()
    errors: list[BaseException] = []

    def run(entry, control) -> None:
        try:
            with entry(control):
                pass
        except JobCancelledError as exc:
            errors.append(exc)

    waiting = [threading.Thread(target=run, args=(entry, control))
               for entry, control in ((second, controls[1]), (third, controls[2]))]
    for thread in waiting:
        thread.start()
    time.sleep(0.3)
    assert order == []  # both wait for the first
    run(first, controls[0])
    for thread in waiting:
        thread.join(5)
    assert order == ["first", "third"]
    assert len(errors) == 1


def test_each_rank_runs_its_slice_of_a_tile_pass():
    """A tile pass planned for a spread state, run by each rank on its slice
    (``tiles.for_slice``), does what the pass does to the whole state there: its controls
    and diagonals on the global qubits read the rank's bits."""
    from gpuprovider.kernels import cpu
    from gpuprovider.kernels.tiles import for_slice
    from support.kernels import random_state

    circuit = distributed_runs.circuits()["planned"].remove_final_measurements(inplace=False)
    circuit.data = [item for item in circuit.data if item.operation.name != "save_statevector"
                    and item.operation.name != "save_probabilities"]
    n, global_qubits = circuit.num_qubits, 2
    local = n - global_qubits
    policy = devices.CPU.with_policy(plan_min_qubits=0, global_qubits=global_qubits,
                                     distributed_min_qubits=0).policy
    program = planned(lower_circuit(circuit, np.dtype(np.complex128)),
                      policy.plan_policy(np.complex128))
    passes = [op.tile_pass for op in program.ops if isinstance(op, TileOp)]
    assert any(for_slice(tile_pass, local, 1) is not tile_pass for tile_pass in passes)
    for tile_pass in passes:
        whole = random_state(n, np.complex128, seed=4)
        slices = whole.reshape(1 << global_qubits, -1).copy()
        cpu.apply_tile_pass(whole, tile_pass)
        for rank in range(1 << global_qubits):
            cpu.apply_tile_pass(slices[rank], for_slice(tile_pass, local, rank))
        np.testing.assert_allclose(slices.ravel(), whole, atol=1e-12)
