"""Side-by-side benchmarks: gpuprovider beside qiskit-aer, qsim, PennyLane's lightning.qubit,
qulacs, qibojit (numba) and Statevector.

    rows = run_suite(BenchConfig(families=("qft",), qubits=(16, 18)))
    print(format_table(rows))

Every simulator gets the same measured circuit (the peers outside qiskit its :func:`gate_list`
as dense matrices) and samples the same number of shots from its final state with its own
sampling call; conversion and backend construction happen before the clock starts.
:func:`state_error` compares a peer's final state with Statevector, which the tests use to prove
each conversion. qiskit, the peers and matplotlib are imported on first use, so the
``gpuprovider`` command stays quick to start.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from statistics import median
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

SEED = 7
"""Seed of the quantum-volume and random families."""
STATEVECTOR_MAX_QUBITS = 22
"""qiskit.quantum_info.Statevector is not run above this many qubits (minutes per run)."""
STATE_TOLERANCE = {"double": 1e-10, "single": 1e-5}
"""Largest |peer - Statevector| per amplitude accepted from a peer in each precision (the
circuits of the tests: a few hundred gates on at most 6 qubits)."""
Runner = Callable[[], object]


# --- circuit families -------------------------------------------------------------------------


def ghz(num_qubits: int) -> QuantumCircuit:
    """H on qubit 0, then a CX chain: (|0...0> + |1...1>) / sqrt(2), measured."""
    from qiskit import QuantumCircuit

    circuit = QuantumCircuit(num_qubits)
    circuit.h(0)
    for qubit in range(num_qubits - 1):
        circuit.cx(qubit, qubit + 1)
    circuit.measure_all()
    return circuit


def qft(num_qubits: int) -> QuantumCircuit:
    """QFTGate on X applied to every even qubit, lowered to h/cp/swap/x, measured."""
    from qiskit import QuantumCircuit, transpile
    from qiskit.circuit.library import QFTGate

    circuit = QuantumCircuit(num_qubits)
    circuit.x(range(0, num_qubits, 2))
    circuit.append(QFTGate(num_qubits), range(num_qubits))
    circuit.measure_all()
    return transpile(circuit, basis_gates=["h", "cp", "swap", "x", "measure"],
                     optimization_level=0)


def qv(num_qubits: int) -> QuantumCircuit:
    """Quantum volume (depth = width, seed :data:`SEED`) as 2-qubit ``unitary`` gates, measured."""
    from qiskit.circuit.library import quantum_volume

    circuit = quantum_volume(num_qubits, depth=num_qubits, seed=SEED)
    circuit.measure_all()
    return circuit


_ROTATIONS = ("rx", "ry", "rz")
_PAIR_GATES = ("cx", "cz", "cp", "swap", "rzz")
_ANGLED = {"rx", "ry", "rz", "cp", "rzz"}


def random_circuit(num_qubits: int, seed: int = SEED) -> QuantumCircuit:
    """``num_qubits`` layers (depth about 2n), each a random rotation on every qubit and then a
    random cx/cz/cp/swap/rzz on disjoint random pairs; the same for the same (n, seed)."""
    from qiskit import QuantumCircuit

    rng = np.random.default_rng((seed, num_qubits))
    circuit = QuantumCircuit(num_qubits)
    for _ in range(num_qubits):
        for qubit in range(num_qubits):
            _append(circuit, rng, str(rng.choice(_ROTATIONS)), [qubit])
        order = rng.permutation(num_qubits)
        for first, second in zip(order[0::2], order[1::2]):
            _append(circuit, rng, str(rng.choice(_PAIR_GATES)), [int(first), int(second)])
    circuit.measure_all()
    return circuit


def _append(circuit: QuantumCircuit, rng: np.random.Generator, name: str,
            qubits: list[int]) -> None:
    angles = [float(rng.uniform(0, 2 * math.pi))] if name in _ANGLED else []
    getattr(circuit, name)(*angles, *qubits)


FAMILIES: dict[str, Callable[[int], QuantumCircuit]] = {
    "ghz": ghz, "qft": qft, "qv": qv, "random": random_circuit,
}
"""Circuit builders by family name: ``FAMILIES[name](num_qubits)``."""


# --- the gate list every peer is given ----------------------------------------------------------


@dataclass(frozen=True)
class Gate:
    """One unitary instruction: its qiskit matrix and its qubits in argument order.

    Qiskit's matrix is little-endian in argument order: ``qubits[0]`` is bit 0 of its row and
    column index.
    """

    matrix: np.ndarray
    qubits: tuple[int, ...]


def gate_list(circuit: QuantumCircuit) -> list[Gate]:
    """The unitary instructions of ``circuit`` in order; barriers and measurements are left out
    (the circuit's global phase too, which no count depends on).

    Raises:
        ValueError: an instruction is neither unitary nor a barrier or measurement.
    """
    from qiskit.exceptions import QiskitError
    from qiskit.quantum_info import Operator

    gates = []
    for instruction in circuit.data:
        operation = instruction.operation
        if operation.name in ("barrier", "measure"):
            continue
        try:
            matrix = Operator(operation).data
        except QiskitError as exc:
            raise ValueError(f"{operation.name!r} is not a unitary gate; the peers take only "
                             "unitary gates and final measurements") from exc
        qubits = tuple(circuit.find_bit(qubit).index for qubit in instruction.qubits)
        gates.append(Gate(matrix, qubits))
    return gates


def to_cirq(circuit: QuantumCircuit, measure: bool = True) -> Any:
    """``circuit`` as a cirq.Circuit of ``cirq.MatrixGate`` s on ``cirq.LineQubit(i)`` for qiskit
    qubit ``i``, then one measurement of every qubit (key ``"m"``) unless ``measure`` is False.
    """
    import cirq

    line = cirq.LineQubit.range(circuit.num_qubits)
    operations = [
        # cirq's matrix is big-endian in its qubit order, qiskit's little-endian: reverse.
        cirq.MatrixGate(gate.matrix).on(*(line[q] for q in reversed(gate.qubits)))
        for gate in gate_list(circuit)
    ]
    if measure:
        operations.append(cirq.measure(*line, key="m"))
    return cirq.Circuit(operations)


def qsim_simulator() -> Any:
    """qsim on every CPU core, fusing gates into up to 4-qubit blocks (qsimcirq >= 0.22)."""
    import qsimcirq

    options = qsimcirq.QSimOptions(max_fused_gate_size=4, cpu_threads=os.cpu_count(),
                                   use_gpu=False)
    return qsimcirq.QSimSimulator(options)


def qsim_state(circuit: QuantumCircuit, precision: str = "single") -> np.ndarray:
    """The final state of ``circuit`` by qsim (single only), in qiskit's order (qubit 0 the
    least significant bit), less the circuit's global phase."""
    import cirq

    little_endian = list(reversed(cirq.LineQubit.range(circuit.num_qubits)))
    result = qsim_simulator().simulate(to_cirq(circuit, measure=False), qubit_order=little_endian)
    return np.asarray(result.final_state_vector)


def _big_endian_wires(gate: Gate) -> list[int]:
    """``gate``'s qubits for PennyLane and qibo, whose matrices are big-endian in wire order."""
    return list(reversed(gate.qubits))


def _from_big_endian(state: np.ndarray, num_qubits: int) -> np.ndarray:
    """A state indexed with qubit 0 the most significant bit, reindexed with it the least."""
    return state.reshape((2,) * num_qubits).transpose().reshape(-1)


def _pennylane_tape(circuit: QuantumCircuit, shots: int | None) -> Any:
    """``circuit`` as a PennyLane tape of ``QubitUnitary`` s (qiskit qubit ``i`` on wire ``i``)
    ending in ``qml.sample()`` of every wire (column ``i`` is qubit ``i``), or in
    ``qml.state()`` when ``shots`` is None."""
    import pennylane as qml

    operations = [qml.QubitUnitary(gate.matrix, wires=_big_endian_wires(gate))
                  for gate in gate_list(circuit)]
    measurement = qml.state() if shots is None else qml.sample(wires=range(circuit.num_qubits))
    return qml.tape.QuantumScript(operations, [measurement], shots=shots)


def _lightning_runner(tape: Any, num_qubits: int, precision: str) -> Runner:
    """The call that runs ``tape`` on lightning.qubit in ``precision`` (c128 or c64), with the
    device built and PennyLane's preprocessing of the tape done already.

    lightning.qubit has no thread option; its 0.45 wheel applies gates on one thread here.
    """
    import pennylane as qml

    dtype = np.complex128 if precision == "double" else np.complex64
    device = qml.device("lightning.qubit", wires=num_qubits, c_dtype=dtype)
    config = device.setup_execution_config()
    tapes, postprocess = device.preprocess_transforms(config)([tape])
    return lambda: postprocess(device.execute(tapes, config))


def lightning_state(circuit: QuantumCircuit, precision: str) -> np.ndarray:
    """The final state of ``circuit`` by lightning.qubit, in qiskit's order, less the
    circuit's global phase."""
    run = _lightning_runner(_pennylane_tape(circuit, shots=None), circuit.num_qubits, precision)
    return _from_big_endian(np.asarray(run()[0]), circuit.num_qubits)


def _qulacs_circuit(circuit: QuantumCircuit) -> Any:
    """``circuit`` as a qulacs circuit of ``DenseMatrix`` gates; qulacs is little-endian like
    qiskit, so the qubits are passed as they are."""
    import qulacs
    from qulacs.gate import DenseMatrix

    converted = qulacs.QuantumCircuit(circuit.num_qubits)
    for gate in gate_list(circuit):
        converted.add_gate(DenseMatrix(list(gate.qubits), gate.matrix))
    return converted


def qulacs_state(circuit: QuantumCircuit, precision: str = "double") -> np.ndarray:
    """The final state of ``circuit`` by qulacs (double only), in qiskit's order, less the
    circuit's global phase."""
    import qulacs

    state = qulacs.QuantumState(circuit.num_qubits)
    _qulacs_circuit(circuit).update_quantum_state(state)
    return state.get_vector()


def qibojit_backend(precision: str) -> Any:
    """A qibojit backend of its own on numba in ``precision``, so that qibo's global backend
    is left alone. Its constructor sets numba's threads to the process's CPU affinity."""
    from qibo.backends import construct_backend

    backend = construct_backend("qibojit", platform="numba")
    backend.set_dtype("complex128" if precision == "double" else "complex64")
    return backend


def _qibo_circuit(circuit: QuantumCircuit, measure: bool) -> Any:
    """``circuit`` as a qibo circuit of ``Unitary`` gates, then a measurement of every qubit
    when ``measure``."""
    from qibo import Circuit, gates

    converted = Circuit(circuit.num_qubits)
    for gate in gate_list(circuit):
        converted.add(gates.Unitary(gate.matrix, *_big_endian_wires(gate)))
    if measure:
        converted.add(gates.M(*range(circuit.num_qubits)))
    return converted


def qibojit_state(circuit: QuantumCircuit, precision: str) -> np.ndarray:
    """The final state of ``circuit`` by qibojit, in qiskit's order, less the circuit's
    global phase."""
    result = qibojit_backend(precision).execute_circuit(_qibo_circuit(circuit, measure=False))
    return _from_big_endian(np.asarray(result.state()), circuit.num_qubits)


# --- simulators ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchConfig:
    """What to time and how: the one set of knobs, passed down whole.

    Attributes:
        families: names in :data:`FAMILIES`.
        qubits: circuit sizes, timed in increasing order.
        simulators: names in :data:`SIMULATORS` (default: all of them).
        precisions: "double" and/or "single"; each simulator runs those it has.
        device: gpuprovider's device ("auto", "CPU" or "GPU").
        repeats: timed runs per measurement (the median is reported), after one warm-up.
        shots: shots per run.
        budget_s: a run estimated to take longer than this is skipped.
    """

    families: tuple[str, ...] = tuple(FAMILIES)
    qubits: tuple[int, ...] = (16, 18, 20, 22, 24, 26)
    simulators: tuple[str, ...] = field(default_factory=lambda: tuple(SIMULATORS))
    precisions: tuple[str, ...] = ("double", "single")
    device: str = "auto"
    repeats: int = 3
    shots: int = 1000
    budget_s: float = 60.0


def _prepare_gpuprovider(circuit: QuantumCircuit, precision: str, config: BenchConfig) -> Runner:
    from .backend import GPUSimulator

    backend = GPUSimulator(device=config.device, precision=precision)
    return lambda: backend.run(circuit, shots=config.shots, seed_simulator=1).result()


def _prepare_aer(circuit: QuantumCircuit, precision: str, config: BenchConfig) -> Runner:
    from qiskit_aer import AerSimulator

    backend = AerSimulator(method="statevector", precision=precision)
    return lambda: backend.run(circuit, shots=config.shots, seed_simulator=1).result()


def _prepare_statevector(circuit: QuantumCircuit, precision: str, config: BenchConfig) -> Runner:
    from qiskit.quantum_info import Statevector

    bare = circuit.remove_final_measurements(inplace=False)
    return lambda: Statevector(bare).sample_counts(config.shots)


def _prepare_qsim(circuit: QuantumCircuit, precision: str, config: BenchConfig) -> Runner:
    converted, simulator = to_cirq(circuit), qsim_simulator()
    return lambda: simulator.run(converted, repetitions=config.shots)


def _prepare_lightning(circuit: QuantumCircuit, precision: str, config: BenchConfig) -> Runner:
    return _lightning_runner(_pennylane_tape(circuit, shots=config.shots), circuit.num_qubits,
                             precision)


def _prepare_qulacs(circuit: QuantumCircuit, precision: str, config: BenchConfig) -> Runner:
    import qulacs

    converted, state = _qulacs_circuit(circuit), qulacs.QuantumState(circuit.num_qubits)

    def run() -> list[int]:
        state.set_zero_state()
        converted.update_quantum_state(state)
        return state.sampling(config.shots, 1)

    return run


def _prepare_qibojit(circuit: QuantumCircuit, precision: str, config: BenchConfig) -> Runner:
    backend, converted = qibojit_backend(precision), _qibo_circuit(circuit, measure=True)
    # qibo samples lazily: frequencies() draws the shots from the final state.
    return lambda: backend.execute_circuit(converted, nshots=config.shots).frequencies(
        binary=False)


@dataclass(frozen=True)
class Simulator:
    """A simulator the suite can time.

    Attributes:
        name: its name on the command line.
        prepare: ``prepare(circuit, precision, config)`` does the untimed work (conversion,
            backend construction) and returns the callable that is timed.
        precisions: the precisions it computes in.
        module: the optional module it needs (None: always there).
        max_qubits: the largest size it is run at.
        state: ``state(circuit, precision)``, the final state of a peer outside qiskit in
            qiskit's order, less the global phase its gate list leaves out; checked against
            Statevector by :func:`state_error`.
    """

    name: str
    prepare: Callable[[QuantumCircuit, str, BenchConfig], Runner]
    precisions: tuple[str, ...]
    module: str | None = None
    max_qubits: int | None = None
    state: Callable[[QuantumCircuit, str], np.ndarray] | None = None


SIMULATORS: dict[str, Simulator] = {sim.name: sim for sim in (
    Simulator("gpuprovider", _prepare_gpuprovider, ("double", "single")),
    Simulator("aer", _prepare_aer, ("double", "single"), module="qiskit_aer"),
    Simulator("qsim", _prepare_qsim, ("single",), module="qsimcirq", state=qsim_state),
    Simulator("statevector", _prepare_statevector, ("double",),
              max_qubits=STATEVECTOR_MAX_QUBITS),
    Simulator("lightning", _prepare_lightning, ("double", "single"),
              module="pennylane_lightning", state=lightning_state),
    Simulator("qulacs", _prepare_qulacs, ("double",), module="qulacs", state=qulacs_state),
    Simulator("qibojit", _prepare_qibojit, ("double", "single"), module="qibojit",
              state=qibojit_state),
)}
"""The simulators by name; ``gpuprovider`` is "ours", the others are peers."""


def state_error(simulator: str, circuit: QuantumCircuit, precision: str) -> float:
    """Largest |peer - Statevector| over the amplitudes of ``circuit``'s final state by
    ``simulator`` in ``precision``; at most ``STATE_TOLERANCE[precision]`` when the peer's
    conversion (qubit order included) is right.

    Raises:
        ValueError: ``simulator`` has no state check (it is not a peer outside qiskit), or
            does not compute in ``precision``.
    """
    from qiskit.quantum_info import Statevector

    spec = SIMULATORS[simulator]
    if spec.state is None:
        checked = [name for name, sim in SIMULATORS.items() if sim.state is not None]
        raise ValueError(f"{simulator!r} has no state check; these have: {', '.join(checked)}")
    if precision not in spec.precisions:
        raise ValueError(f"{simulator!r} computes in {' and '.join(spec.precisions)} precision "
                         f"only, not {precision!r}")
    bare = circuit.remove_final_measurements(inplace=False)
    expected = Statevector(bare).data
    # The gate list leaves the global phase out; put it back before comparing.
    actual = np.exp(1j * float(bare.global_phase)) * np.asarray(spec.state(bare, precision))
    return float(np.max(np.abs(actual - expected)))


def missing_module(simulator: str) -> str | None:
    """Why ``simulator`` cannot run here ("qsimcirq is not installed"), or None."""
    import importlib.util

    module = SIMULATORS[simulator].module
    if module and importlib.util.find_spec(module) is None:
        return f"{module.replace('_', '-')} is not installed"
    return None


def parse_sizes(text: str) -> tuple[int, ...]:
    """Qubit counts from ``16-26`` (every size), ``16-26:2`` (every second), ``16,20,24`` or a
    comma-separated mix of these, sorted.

    Raises:
        ValueError: ``text`` is none of these, or names a size below 2.
    """
    sizes: set[int] = set()
    for part in text.split(","):
        match = re.fullmatch(r"(\d+)(?:-(\d+)(?::(\d+))?)?", part.strip())
        if match is None:
            sizes = set()
            break
        first, last, step = (int(group) if group else None for group in match.groups())
        sizes.update(range(first, (first if last is None else last) + 1, step or 1))
    if not sizes or min(sizes) < 2:
        raise ValueError(f"{text!r} is not a list of qubit counts of at least 2 (e.g. 16-26, "
                         "16-26:2 or 16,20,24)")
    return tuple(sorted(sizes))


# --- timing -------------------------------------------------------------------------------------


@dataclass
class Row:
    """One (family, size, simulator, precision) measurement, or why it was skipped."""

    family: str
    num_qubits: int
    simulator: str
    precision: str
    seconds: float | None = None
    runs: list[float] = field(default_factory=list)
    num_gates: int = 0
    skipped: str | None = None


def time_runner(run: Runner, repeats: int) -> list[float]:
    """Seconds of each of ``repeats`` calls of ``run``, after one untimed warm-up call."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return times


def estimate_seconds(seconds: float, measured: tuple[int, int], wanted: tuple[int, int]) -> float:
    """A run's seconds at ``wanted`` (qubits, gates), scaled from ``seconds`` measured at
    ``measured`` (qubits, gates) on the same simulator: time grows as 2^n times the gates."""
    (qubits, gates), (new_qubits, new_gates) = measured, wanted
    return seconds * 2.0 ** (new_qubits - qubits) * new_gates / max(gates, 1)


def _memory_limit(num_qubits: int) -> str | None:
    from .device import host_available_memory

    needed, available = 2 * 16 << num_qubits, host_available_memory()
    if needed > available:
        return f"2 double states need {needed / 2**30:.1f} GiB, {available / 2**30:.1f} GiB free"
    return None


def _skip_reason(simulator: Simulator, num_qubits: int, num_gates: int, previous: Row | None,
                 config: BenchConfig) -> str | None:
    if simulator.max_qubits is not None and num_qubits > simulator.max_qubits:
        return f"{simulator.name} is not run above {simulator.max_qubits} qubits"
    if previous is not None and previous.skipped:
        return f"skipped at {previous.num_qubits} qubits already"
    if previous is not None and previous.seconds is not None:
        estimate = estimate_seconds(previous.seconds, (previous.num_qubits, previous.num_gates),
                                    (num_qubits, num_gates))
        if estimate > config.budget_s:
            return f"estimated {estimate:.0f} s a run > budget {config.budget_s:g} s"
    return _memory_limit(num_qubits)


def measure(family: str, circuit: QuantumCircuit, simulator: Simulator, precision: str,
            config: BenchConfig, previous: Row | None) -> Row:
    """Time ``circuit`` on ``simulator`` in ``precision``, or say why it is skipped."""
    num_gates = len(circuit.data)
    row = Row(family, circuit.num_qubits, simulator.name, precision, num_gates=num_gates)
    row.skipped = missing_module(simulator.name) or _skip_reason(
        simulator, circuit.num_qubits, num_gates, previous, config)
    if row.skipped is None:
        try:
            row.runs = time_runner(simulator.prepare(circuit, precision, config), config.repeats)
        except Exception as exc:  # noqa: BLE001 (one peer failing must not end the suite)
            row.skipped = f"failed: {type(exc).__name__}: {exc}"
        else:
            row.seconds = median(row.runs)
    return row


def run_suite(config: BenchConfig, progress: Callable[[Row], None] | None = None) -> list[Row]:
    """Time every (family, size, simulator, precision) of ``config``; one :class:`Row` each.

    A simulator is not given a precision it lacks (qsim is single only, qulacs and Statevector
    double only). ``progress`` is called with each row as it is done.
    """
    rows = []
    for family in config.families:
        previous: dict[tuple[str, str], Row] = {}
        for num_qubits in sorted(config.qubits):
            circuit = FAMILIES[family](num_qubits)
            for name in config.simulators:
                simulator = SIMULATORS[name]
                for precision in (p for p in config.precisions if p in simulator.precisions):
                    row = measure(family, circuit, simulator, precision, config,
                                  previous.get((name, precision)))
                    previous[name, precision] = row
                    rows.append(row)
                    if progress:
                        progress(row)
    return rows


# --- reporting ----------------------------------------------------------------------------------

OURS = "gpuprovider"
PRECISION_NOTES = {"qsim": "single precision only", "qulacs": "double precision only"}


def ratio(rows: Sequence[Row], row: Row) -> float | None:
    """``row``'s time over ours (gpuprovider) on the same circuit in the same precision: above
    1, ours is faster. None for our own rows and where either time is missing."""
    if row.simulator == OURS or row.seconds is None:
        return None
    for other in rows:
        if (other.simulator, other.family, other.num_qubits, other.precision) == (
                OURS, row.family, row.num_qubits, row.precision) and other.seconds:
            return row.seconds / other.seconds
    return None


def format_table(rows: Sequence[Row], config: BenchConfig | None = None) -> str:
    """The rows as a table: median seconds, and each peer's time over ours in its precision."""
    header = (f"{'family':<8}{'qubits':>7}  {'simulator':<12}{'precision':<11}"
              f"{'median s':>10}  {'peer/ours':>9}")
    lines = []
    if config is not None:
        lines.append(f"median of {config.repeats} runs after a warm-up, {config.shots} shots, "
                     f"gpuprovider on device {config.device}; peer/ours > 1: ours is faster")
    lines += [header, "-" * len(header)]
    group = None
    for row in rows:
        if group is not None and group != (row.family, row.num_qubits):
            lines.append("")
        group = (row.family, row.num_qubits)
        precision = row.precision + ("*" if row.simulator in PRECISION_NOTES else "")
        if row.skipped:
            timing = f"  skipped: {row.skipped}"
        else:
            value = ratio(rows, row)
            shown = f"{value:8.2f}x" if value is not None else f"{'-':>9}"
            timing = f"{row.seconds:>10.4f}  {shown}"
        lines.append(f"{row.family:<8}{row.num_qubits:>7}  {row.simulator:<12}{precision:<11}"
                     + timing)
    notes = sorted({f"* {sim}: {note}" for sim, note in PRECISION_NOTES.items()
                    if any(row.simulator == sim for row in rows)})
    return "\n".join(lines + notes)


def environment() -> dict[str, Any]:
    """The machine and the versions of every simulator present."""
    versions = {}
    for package in ("gpuprovider", "qiskit", "qiskit-aer", "qsimcirq", "cirq-core", "pennylane",
                    "pennylane-lightning", "qulacs", "qibo", "qibojit", "numba", "numpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {"python": platform.python_version(), "machine": platform.machine(),
            "cpu_count": os.cpu_count(), "versions": versions}


def write_json(rows: Sequence[Row], config: BenchConfig, path: str | Path) -> None:
    """Write the config, the environment and every row (with each run's seconds) as JSON."""
    document = {"config": asdict(config), "environment": environment(),
                "rows": [{**asdict(row), "peer_over_ours": ratio(rows, row)} for row in rows]}
    Path(path).write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")


def write_plot(rows: Sequence[Row], path: str | Path) -> None:
    """A PNG of median seconds against qubits (log scale), one subplot per family and one
    line per simulator and precision."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot
    from matplotlib.ticker import MaxNLocator

    families = list(dict.fromkeys(row.family for row in rows))
    figure, axes = pyplot.subplots(1, max(len(families), 1), figsize=(4.5 * len(families), 4),
                                   squeeze=False)
    for axis, family in zip(axes[0], families):
        measured = [row for row in rows if row.family == family and row.seconds is not None]
        for line in dict.fromkeys((row.simulator, row.precision) for row in measured):
            points = [(row.num_qubits, row.seconds) for row in measured
                      if (row.simulator, row.precision) == line]
            axis.plot(*zip(*points), marker="o", label=" ".join(line))
        axis.set(title=family, xlabel="qubits", ylabel="median seconds", yscale="log")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(True, which="both", alpha=0.3)
        if measured:
            axis.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
