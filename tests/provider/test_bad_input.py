"""Bad input is rejected by run() itself, before any job exists, with a message that names
the value at fault and what is accepted; the backend keeps working afterwards."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest
from gpuprovider import device as devices
from qiskit import QuantumCircuit, transpile
from qiskit.circuit import Gate, Parameter
from qiskit.circuit.library import QFTGate, UnitaryGate
from qiskit.quantum_info import Statevector

import gpuprovider.execution as execution_module
from gpuprovider import GPUSimulator
from gpuprovider.exceptions import (
    CapacityError,
    DeviceUnavailableError,
    InvalidCircuitError,
    InvalidOptionError,
)
from gpuprovider.instructions import SaveStatevector

JOB_THREAD_PREFIX = "gpuprovider-job-"


def bell_circuit() -> QuantumCircuit:
    circuit = QuantumCircuit(2, 2, name="bell")
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure([0, 1], [0, 1])
    return circuit


def job_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith(JOB_THREAD_PREFIX)}


@pytest.fixture
def created_jobs(monkeypatch) -> list:
    """Every GPUJob the run path constructs during the test."""
    created = []
    original = execution_module.GPUJob

    class RecordingJob(original):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            created.append(self)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(execution_module, "GPUJob", RecordingJob)
    return created


@pytest.fixture
def reject(created_jobs):
    """``reject(backend, run_input, error, *fragments, **options)``: run() must raise ``error``
    naming every fragment, create no job and start no thread, and the backend must then run
    a good circuit."""

    def check(
        backend: GPUSimulator, run_input: Any, error: type[Exception], *fragments: str,
        **options: Any,
    ) -> str:
        threads_before = job_threads()
        with pytest.raises(error) as info:
            backend.run(run_input, **options)
        message = str(info.value)
        for fragment in fragments:
            assert fragment in message, f"{fragment!r} not in the message: {message}"
        assert created_jobs == [], "run() created a job before rejecting its input"
        assert job_threads() <= threads_before, "run() started a job thread"
        counts = backend.run(bell_circuit(), shots=100, seed_simulator=1).result().get_counts()
        assert set(counts) <= {"00", "11"} and sum(counts.values()) == 100
        created_jobs.clear()  # that good run's job: the next check starts from none
        return message

    return check


# --- circuits -----------------------------------------------------------------------------------


def test_un_transpiled_qft_gate_runs_through_its_definition(backend, tolerance):
    circuit = QuantumCircuit(3, name="needs_qft")
    circuit.x(0)
    circuit.append(QFTGate(3), range(3))

    for form in (circuit, transpile(circuit, backend)):  # transpiling may permute qubits
        expected = Statevector(form)
        saved = form.copy()
        saved.append(SaveStatevector(saved.num_qubits), saved.qubits)
        state = backend.run(saved).result().get_statevector()
        np.testing.assert_allclose(state.data, expected.data, atol=tolerance)


def test_custom_gate_with_a_definition_runs_through_it(backend, tolerance):
    definition = QuantumCircuit(2)
    definition.h(0)
    definition.cx(0, 1)
    custom = definition.to_gate(label="bell_prep")
    custom.name = "bell_prep"
    circuit = QuantumCircuit(2)
    circuit.append(custom, [0, 1])
    expected = Statevector(circuit)
    circuit.append(SaveStatevector(2), circuit.qubits)

    state = backend.run(circuit).result().get_statevector()
    np.testing.assert_allclose(state.data, expected.data, atol=tolerance)


def test_opaque_gate_without_a_definition_is_named(backend, reject):
    circuit = QuantumCircuit(2, name="opaque")
    circuit.append(Gate("mystery", 2, []), [0, 1])

    reject(backend, circuit, InvalidCircuitError, "'mystery'", "neither a matrix nor a "
           "definition", "opaque")


def test_bad_circuit_later_in_a_list_is_located_and_nothing_runs(backend, reject):
    bad = QuantumCircuit(3, name="second")
    bad.append(Gate("mystery", 3, []), range(3))

    reject(backend, [bell_circuit(), bad], InvalidCircuitError, "'second'", "index 1",
           "'mystery'")


def test_unbound_parameters_are_named(backend, reject):
    theta, phi = Parameter("theta"), Parameter("phi")
    circuit = QuantumCircuit(1)
    circuit.rx(theta, 0)
    circuit.rz(phi, 0)

    reject(backend, circuit, InvalidCircuitError, "unbound", "theta", "phi")


def test_non_unitary_matrix_is_rejected(backend, reject):
    circuit = QuantumCircuit(2)
    circuit.append(UnitaryGate(np.array([[1, 1], [0, 1]]), check_input=False), [1])

    reject(backend, circuit, InvalidCircuitError, "'unitary'", "not unitary", "[1]")


def test_unnormalised_initialize_vector_is_rejected(backend, reject):
    circuit = QuantumCircuit(2)
    circuit.initialize([2**-0.5, 2**-0.5], 0)
    circuit.data[0].operation.params = [1, 1]

    reject(backend, circuit, InvalidCircuitError, "'initialize'", "norm", "1.41421356")


@pytest.mark.parametrize(
    ("run_input", "fragments"),
    [
        pytest.param("not a circuit", ["str"], id="string"),
        pytest.param(7, ["int"], id="int"),
        pytest.param([QuantumCircuit(1), "x"], ["run_input[1]", "str"], id="list-with-string"),
        pytest.param([], ["empty"], id="empty-list"),
        pytest.param(None, ["NoneType"], id="none"),
    ],
)
def test_input_that_is_not_circuits_is_rejected(backend, reject, run_input, fragments):
    reject(backend, run_input, InvalidCircuitError, "QuantumCircuit", *fragments)


# --- capacity -----------------------------------------------------------------------------------


def test_circuit_larger_than_memory_raises_capacity_error(backend, reject):
    circuit = QuantumCircuit(40, name="too_wide")
    circuit.h(range(40))
    circuit.measure_all()

    message = reject(backend, circuit, CapacityError, "too_wide", "40 qubits", "bytes")
    if backend.options.precision == "double":
        assert "precision='single'" in message


def test_more_active_qubits_than_indices_hold_raises_capacity_error(backend, reject):
    circuit = QuantumCircuit(80)
    circuit.h(range(70))

    reject(backend, circuit, CapacityError, "70 qubits", "62")


def test_capacity_is_checked_before_lowering_allocates_a_full_width_initialize(backend, reject):
    circuit = QuantumCircuit(40, name="wide_init")
    circuit.initialize(5, circuit.qubits)

    reject(backend, circuit, CapacityError, "wide_init", "40 qubits", "bytes")


# --- options ------------------------------------------------------------------------------------

BAD_OPTION_VALUES = [
    pytest.param("shots", 0, ["positive integer"], id="shots-0"),
    pytest.param("shots", -1, ["positive integer"], id="shots-negative"),
    pytest.param("shots", 1.5, ["positive integer"], id="shots-float"),
    pytest.param("shots", np.float64(2.5), ["positive integer"], id="shots-numpy-float"),
    pytest.param("shots", np.bool_(True), ["positive integer"], id="shots-numpy-bool"),
    pytest.param("shots", 2**63, ["exceeds the limit", "2**62"], id="shots-huge"),
    pytest.param("shots", float("nan"), ["positive integer"], id="shots-nan"),
    pytest.param("shots", float("inf"), ["positive integer"], id="shots-inf"),
    pytest.param("shots", True, ["positive integer"], id="shots-bool"),
    pytest.param("shots", "10", ["positive integer"], id="shots-string"),
    pytest.param("seed_simulator", -1, ["0 <= seed < 2**64"], id="seed-negative"),
    pytest.param("seed_simulator", 2**64, ["0 <= seed < 2**64"], id="seed-too-big"),
    pytest.param("seed_simulator", "x", ["0 <= seed < 2**64"], id="seed-string"),
    pytest.param("memory", "yes", ["True or False"], id="memory-string"),
    pytest.param("precision", "half", ["'double'", "'single'"], id="precision-half"),
    pytest.param("device", "TPU", ["'auto'", "'GPU'", "'CPU'"], id="device-tpu"),
]


@pytest.mark.parametrize(("name", "value", "limits"), BAD_OPTION_VALUES)
def test_bad_run_option_is_rejected_naming_value_and_limit(backend, reject, name, value, limits):
    reject(
        backend, bell_circuit(), InvalidOptionError, name, repr(value), *limits,
        **{name: value},
    )


@pytest.mark.parametrize(("name", "value", "limits"), BAD_OPTION_VALUES)
def test_set_options_with_a_bad_value_raises_and_changes_nothing(name, value, limits):
    backend = GPUSimulator(device="CPU")
    before = dict(backend.options.__dict__)

    valid_change = {"memory": True} if name == "shots" else {"shots": 10}

    with pytest.raises(InvalidOptionError, match=name):
        backend.set_options(**valid_change, **{name: value})

    assert dict(backend.options.__dict__) == before


def test_constructor_rejects_bad_precision():
    with pytest.raises(InvalidOptionError, match="half"):
        GPUSimulator(precision="half")


def test_unknown_option_warns_alike_in_the_constructor_set_options_and_run():
    with pytest.warns(UserWarning, match="Option no_such_option is not used") as built:
        backend = GPUSimulator(device="CPU", no_such_option=1)
    with pytest.warns(UserWarning, match="Option no_such_option is not used") as set_later:
        backend.set_options(no_such_option=2, shots=5)
    with pytest.warns(UserWarning, match="Option no_such_option is not used") as at_run:
        job = backend.run(bell_circuit(), no_such_option=3)

    for record in (built, set_later, at_run):
        assert [warning.filename for warning in record] == [__file__], (
            "the warning should point at the caller"
        )
    assert not hasattr(backend.options, "no_such_option")
    assert backend.options.shots == 5  # the known option of the same call is set
    assert sum(job.result().get_counts().values()) == 5


@pytest.mark.parametrize("method", ["stabilizer", "matrix_product_state", "unitary",
                                    "extended_stabilizer", "tensor_network", 7])
def test_a_method_we_do_not_run_is_refused(backend, reject, method):
    reject(backend, bell_circuit(), InvalidOptionError, "method", repr(method), "'statevector'",
           method=method)
    with pytest.raises(InvalidOptionError, match="'automatic', 'statevector', 'density_matrix'"):
        backend.set_options(method=method)
    with pytest.raises(InvalidOptionError, match="statevector"):
        GPUSimulator(device="CPU", method=method)


def test_the_density_matrix_method_refuses_what_it_cannot_run(backend, reject):
    """A mid-circuit measurement, or more qubits than the method takes: refused at run()
    with the reason, before any work."""
    noise = pytest.importorskip("qiskit_aer.noise")
    model = noise.NoiseModel()
    model.add_all_qubit_quantum_error(noise.depolarizing_error(0.1, 1), ["h", "x"])
    dynamic = QuantumCircuit(2, 2)
    dynamic.h(0)
    dynamic.measure(0, 0)
    dynamic.x(0)  # acts on the measured qubit: the measurement is mid-circuit
    dynamic.measure(0, 1)
    reject(backend, dynamic, InvalidCircuitError, "method='density_matrix'",
           "mid-circuit measurement", method="density_matrix", noise_model=model)
    wide = QuantumCircuit(11)
    wide.h(range(11))
    wide.measure_all()
    reject(backend, wide, InvalidCircuitError, "method='density_matrix'", "11 qubits",
           "at most 10", method="density_matrix", noise_model=model)


def test_statevector_and_automatic_methods_are_accepted_and_readable(backend):
    assert backend.options.method == "automatic"  # Aer's default
    backend.set_options(method="statevector")
    assert backend.options.method == "statevector"
    result = backend.run(bell_circuit(), shots=10, method="automatic").result()
    assert result.results[0].metadata["method"] == "statevector"


def test_a_noise_model_that_cannot_be_applied_is_refused_never_ignored(backend, reject):
    noise = pytest.importorskip("qiskit_aer.noise")
    model = noise.NoiseModel()
    model.add_readout_error(noise.ReadoutError([[0.9, 0.1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0],
                                                [0, 0, 0, 1]]), [0, 1])

    reject(backend, bell_circuit(), InvalidOptionError, "noise_model", "correlated",
           noise_model=model)
    with pytest.raises(InvalidOptionError, match="noise_model"):
        backend.set_options(noise_model=model)
    with pytest.raises(InvalidOptionError, match="noise_model"):
        GPUSimulator(device="CPU", noise_model=model)
    assert backend.run(bell_circuit(), shots=8, noise_model=None).result().success


@pytest.mark.parametrize("shots", [100.0, np.int64(100), np.int32(100), np.uint16(100),
                                   np.float64(100.0)])
def test_integral_shots_of_any_numeric_type_are_accepted(backend, shots):
    result = backend.run(bell_circuit(), shots=shots).result()
    assert sum(result.get_counts().values()) == 100
    assert type(result.results[0].shots) is int


def test_unknown_run_option_warns_and_the_run_still_works(backend, created_jobs):
    with pytest.warns(UserWarning, match="not used by this backend") as record:
        job = backend.run(bell_circuit(), shots=64, no_such_option=3)

    assert any("no_such_option" in str(warning.message) for warning in record)
    assert all(warning.filename == __file__ for warning in record), (
        "the warning should point at the caller of run()"
    )
    assert sum(job.result().get_counts().values()) == 64
    assert len(created_jobs) == 1


def test_gpu_device_without_a_usable_gpu_raises_with_the_reason(reject):
    report = devices.GPU.report
    if report.usable:
        pytest.skip(f"a GPU is usable here: {report.reason}")
    backend = GPUSimulator(device="CPU")

    reject(backend, bell_circuit(), DeviceUnavailableError, report.reason, device="GPU")
    with pytest.raises(DeviceUnavailableError, match="is not usable") as raised:
        backend.set_options(device="GPU")
    assert report.reason in str(raised.value)
    assert backend.options.device == "CPU"
    with pytest.raises(DeviceUnavailableError, match="is not usable") as raised:
        GPUSimulator(device="GPU")
    assert report.reason in str(raised.value)


def test_operation_wider_than_the_engine_takes_is_rejected(device, precision, reject):
    """The GPU engine gathers at most ``max_matrix_qubits`` qubits per thread; the run must
    say so up front (shown on every device by a policy whose limit is 2)."""
    from qiskit.quantum_info import random_unitary

    narrow = devices.by_name(device).with_policy(max_matrix_qubits=2)
    backend = GPUSimulator(device=narrow, precision=precision)
    circuit = QuantumCircuit(3)
    circuit.unitary(random_unitary(8, seed=1), [0, 1, 2])
    reject(backend, circuit, InvalidCircuitError, "3-qubit", "at most 2")


# --- hand-built instructions and values (issue 12) ------------------------------------------


def _raw(circuit: QuantumCircuit, operation, qubits, clbits=()) -> QuantumCircuit:
    """Append without QuantumCircuit.append's checks, as hand-built data can be."""
    from qiskit.circuit import CircuitInstruction

    circuit._append(CircuitInstruction(operation, [circuit.qubits[q] for q in qubits],
                                       [circuit.clbits[c] for c in clbits]))
    return circuit


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_gate_parameters_and_global_phases_are_rejected(backend, reject, value):
    circuit = QuantumCircuit(2, name="nan_gate")
    circuit.h(0)
    circuit.rx(value, 1)
    reject(backend, circuit, InvalidCircuitError, "'rx'", "[1]", repr(value).strip("'"),
           "finite")
    circuit = QuantumCircuit(1, name="nan_phase", global_phase=value)
    circuit.h(0)
    reject(backend, circuit, InvalidCircuitError, "global phase", "finite")
    circuit = QuantumCircuit(1, name="nan_unitary")
    matrix = np.eye(2, dtype=complex)
    matrix[0, 0] = value
    circuit.append(UnitaryGate(np.eye(2)), [0])
    circuit.data[0].operation.params[0] = matrix
    reject(backend, circuit, InvalidCircuitError, "'unitary'", "finite")


def test_a_repeated_qubit_or_clbit_is_rejected(backend, reject):
    from qiskit.circuit.library import CXGate

    circuit = _raw(QuantumCircuit(2, name="cx00"), CXGate(), [0, 0])
    reject(backend, circuit, InvalidCircuitError, "'cx'", "twice", "[0, 0]")
    from qiskit.circuit import Instruction

    circuit = _raw(QuantumCircuit(2, 2), Instruction("measure", 2, 2, []), [0, 1], [1, 1])
    reject(backend, circuit, InvalidCircuitError, "'measure'", "twice")


def test_an_instruction_on_the_wrong_number_of_bits_is_rejected(backend, reject):
    from qiskit.circuit import Instruction
    from qiskit.circuit.library import CXGate

    reject(backend, _raw(QuantumCircuit(3), CXGate(), [0, 1, 2]), InvalidCircuitError,
           "'cx'", "2-qubit", "3 qubit(s)")
    reject(backend, _raw(QuantumCircuit(1, 1), Instruction("measure", 1, 0, []), [0]),
           InvalidCircuitError, "'measure'", "needs its own clbit")


def test_a_matrix_of_the_wrong_size_is_rejected(backend, reject):
    circuit = QuantumCircuit(2, name="wrong_size")
    circuit.unitary(np.eye(4), [0, 1])
    circuit.data[0].operation.params[0] = np.eye(2)
    reject(backend, circuit, InvalidCircuitError, "'unitary'", "(2, 2)", "(4, 4)")
    wide = Gate("wide", 1, [])
    wide.to_matrix = lambda: np.eye(4)  # a gate whose matrix does not fit its qubits
    reject(backend, QuantumCircuit(1).compose(_raw(QuantumCircuit(1), wide, [0])),
           InvalidCircuitError, "'wide'", "(4, 4)", "(2, 2)")


def test_initialize_values_that_do_not_fit_their_qubits_are_rejected(backend, reject):
    circuit = QuantumCircuit(2, name="wide_init")
    circuit.initialize([1, 0], [0])
    circuit.data[0].operation.params = [0.5, 0.5, 0.5, 0.5]
    reject(backend, circuit, InvalidCircuitError, "'initialize'", "4 amplitudes", "need 2")
    circuit = QuantumCircuit(2)
    circuit.initialize(1, [0])
    circuit.data[0].operation.params = [5]
    reject(backend, circuit, InvalidCircuitError, "'initialize'", "0 .. 1")
    circuit = QuantumCircuit(2)
    circuit.initialize("01", [0, 1])
    circuit.data[0].operation.params = ["0", "1", "+"]
    reject(backend, circuit, InvalidCircuitError, "'initialize'", "2 characters")


def test_a_sweep_value_where_an_expression_has_no_finite_value_fails_the_job():
    a = Parameter("a")
    circuit = QuantumCircuit(1, 1)
    circuit.rx(1 / a, 0)
    circuit.measure(0, 0)
    job = GPUSimulator(device="CPU").run(circuit, parameter_binds=[{a: [1.0, 0.0]}])
    from qiskit.providers import JobError, JobStatus

    with pytest.raises(JobError, match="rx.*1/a cannot be evaluated") as info:
        job.result()
    assert "a=0.0" in str(info.value)
    assert job.status() is JobStatus.ERROR


def test_huge_shots_count_without_per_shot_memory_and_refuse_memory_true(backend, reject):
    shots = 2**40
    reject(backend, bell_circuit(), CapacityError, "memory=True", f"{shots:,} shots",
           "memory=False", shots=shots, memory=True)
    counts = backend.run(bell_circuit(), shots=shots, seed_simulator=1).result().get_counts()
    assert set(counts) == {"00", "11"} and sum(counts.values()) == shots
    assert abs(counts["00"] / shots - 0.5) < 1e-5
