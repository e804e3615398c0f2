"""SamplerV2 against Qiskit's StatevectorSampler, exact distributions and qiskit-aer."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
from qiskit.primitives import BaseSamplerV2, BitArray, StatevectorSampler
from qiskit.quantum_info import Statevector
from testkit import (
    ALPHA,
    chi_square_pvalue,
    homogeneity_pvalue,
    parameterized_circuit,
    random_values,
)

from gpuprovider.exceptions import (
    CapacityError,
    InvalidCircuitError,
    InvalidOptionError,
)
from gpuprovider.primitives import SamplerV2

SHOTS = 4000


def sampler(device: str, precision: str, **kwargs) -> SamplerV2:
    return SamplerV2(options={"backend_options": {"device": device, "precision": precision}},
                     **kwargs)


def two_register_circuit(num_qubits: int = 4) -> QuantumCircuit:
    """The parameterised ansatz measured into two registers, one bit left unmeasured and
    one register written out of order."""
    ansatz = parameterized_circuit(num_qubits, layers=1, seed=2)
    alpha = ClassicalRegister(2, "alpha")
    beta = ClassicalRegister(3, "beta")
    circuit = QuantumCircuit(QuantumRegister(num_qubits), alpha, beta)
    circuit.compose(ansatz, range(num_qubits), inplace=True)
    circuit.measure([2, 0], alpha)
    circuit.measure([1, 3], [beta[2], beta[0]])  # beta[1] stays 0
    return circuit


def register_distribution(circuit: QuantumCircuit, values: np.ndarray,
                          qubits: list[int | None]) -> dict[str, float]:
    """Exact distribution of a register whose bit j reads ``qubits[j]`` (None: always 0)."""
    bound = circuit.remove_final_measurements(inplace=False).assign_parameters(values)
    measured = [q for q in qubits if q is not None]
    marginal = Statevector(bound).probabilities_dict(measured)
    out: dict[str, float] = {}
    for key, p in marginal.items():
        bits = {q: key[::-1][j] for j, q in enumerate(measured)}
        label = "".join(bits[q] if q is not None else "0" for q in reversed(qubits))
        out[label] = out.get(label, 0.0) + p
    return out


def test_is_a_base_sampler_v2():
    assert isinstance(SamplerV2(), BaseSamplerV2)


@pytest.mark.parametrize("shape", [(), (3,), (2, 2)])
def test_matches_exact_and_statevector_sampler_with_two_registers(device, precision, shape):
    circuit = two_register_circuit()
    values = random_values(circuit, shape, seed=len(shape))
    pub = (circuit, values)
    ours = sampler(device, precision, seed=11).run([pub], shots=SHOTS).result()[0]
    reference = StatevectorSampler(seed=12).run([pub], shots=SHOTS).result()[0]
    assert ours.data.shape == shape
    assert ours.metadata["shots"] == SHOTS
    registers = {"alpha": [2, 0], "beta": [3, None, 1]}
    for name, qubits in registers.items():
        bits = getattr(ours.data, name)
        assert bits.shape == shape
        assert bits.num_shots == SHOTS and bits.num_bits == len(qubits)
        for index in np.ndindex(shape):
            counts = bits.get_counts(index)
            exact = register_distribution(circuit, values[index], qubits)
            assert chi_square_pvalue(counts, exact) > ALPHA
            assert homogeneity_pvalue(counts, getattr(reference.data, name).get_counts(index)) \
                > ALPHA
    # a wrong answer fails the same test: the first set's counts under another set's law
    if shape == (3,):
        other = register_distribution(circuit, values[1], registers["alpha"])
        assert chi_square_pvalue(ours.data.alpha.get_counts(0), other) < ALPHA


def test_bits_of_each_shot_agree_across_registers():
    """Both registers of one shot come from the same outcome: a GHZ state reads all 0s or
    all 1s in every register of every shot."""
    circuit = QuantumCircuit(QuantumRegister(10), ClassicalRegister(3, "a"),
                             ClassicalRegister(7, "b"))
    circuit.h(0)
    for q in range(9):
        circuit.cx(q, q + 1)
    circuit.measure(range(10), range(10))
    data = SamplerV2(seed=3).run([circuit], shots=500).result()[0].data
    a = data.a.get_int_counts()
    assert set(a) == {0, 7}
    joined = BitArray.concatenate_bits([data.a, data.b]).get_bitstrings()
    assert set(joined) <= {"0" * 10, "1" * 10}


def test_dynamic_circuit_runs_and_matches_qiskit_aer(device):
    """Mid-circuit measurement, reset and a condition: the dynamic path, not a refusal."""
    from qiskit_aer.primitives import SamplerV2 as AerSampler

    circuit = QuantumCircuit(QuantumRegister(3), ClassicalRegister(2, "mid"),
                             ClassicalRegister(2, "out"))
    circuit.ry(1.1, 0)
    circuit.h(1)
    circuit.measure(0, circuit.clbits[0])
    with circuit.if_test((circuit.clbits[0], 1)):
        circuit.x(2)
    circuit.reset(0)
    circuit.cx(1, 0)
    circuit.measure(1, circuit.clbits[1])
    circuit.measure([0, 2], circuit.clbits[2:])
    ours = SamplerV2(seed=4, options={"backend_options": {"device": device}}).run(
        [circuit], shots=SHOTS).result()[0]
    assert ours.metadata["simulator_metadata"]["sampled"] is False
    aer = AerSampler(seed=5).run([circuit], shots=SHOTS).result()[0]
    for name in ("mid", "out"):
        assert homogeneity_pvalue(getattr(ours.data, name).get_counts(),
                                  getattr(aer.data, name).get_counts()) > ALPHA
    p_one = np.sin(1.1 / 2) ** 2
    mid = ours.data.mid.get_counts()
    exact = {"00": (1 - p_one) / 2, "01": p_one / 2, "10": (1 - p_one) / 2, "11": p_one / 2}
    assert chi_square_pvalue(mid, exact) > ALPHA


def test_shots_per_pub_default_and_seeds():
    circuit = parameterized_circuit(3, layers=1, seed=1)
    circuit.measure_all()
    values = random_values(circuit, (2,), seed=1)
    sampler = SamplerV2(default_shots=123, seed=8)
    assert sampler.default_shots == 123
    first, second = sampler.run([(circuit, values), (circuit, values, 77)]).result()
    assert first.data.meas.num_shots == 123 and second.data.meas.num_shots == 77
    again = SamplerV2(default_shots=123, options={"run_options": {"seed_simulator": 8}}).run(
        [(circuit, values)]).result()[0]
    np.testing.assert_array_equal(first.data.meas.array, again.data.meas.array)
    other = SamplerV2(default_shots=123, seed=9).run([(circuit, values)]).result()[0]
    assert not np.array_equal(first.data.meas.array, other.data.meas.array)


def test_zero_parameter_sets_give_empty_bit_arrays():
    circuit = parameterized_circuit(2, layers=1, seed=1)
    circuit.measure_all()
    data = SamplerV2().run([(circuit, np.zeros((0, circuit.num_parameters)))],
                           shots=10).result()[0].data
    assert data.meas.shape == (0,) and data.meas.num_shots == 10


def test_circuit_without_registers_warns_and_gives_empty_data():
    with pytest.warns(UserWarning, match="no output classical registers"):
        job = SamplerV2().run([QuantumCircuit(2)])
    assert len(job.result()[0].data) == 0


def test_bad_pubs_and_options_raise_before_any_job():
    circuit = parameterized_circuit(2, 1, seed=1)
    circuit.measure_all()
    with pytest.raises(ValueError, match="shots must be positive"):
        SamplerV2().run([circuit], shots=0)
    with pytest.raises(ValueError, match="inconsistent"):
        SamplerV2().run([(circuit, np.zeros((2, 3)))])
    with pytest.raises(ValueError, match="finite"):
        SamplerV2().run([(circuit, np.full((1, 4), np.inf))])
    too_big = QuantumCircuit(75, 1)
    too_big.h(range(70))
    too_big.measure(0, 0)
    with pytest.raises(CapacityError, match="70 qubits"):
        SamplerV2().run([too_big])
    from qiskit.circuit import Instruction

    odd = QuantumCircuit(1, 1)
    odd.append(Instruction("mystery", 1, 0, []), [0])
    with pytest.raises(InvalidCircuitError, match="mystery"):
        SamplerV2().run([odd])
    with pytest.raises(InvalidOptionError, match="default_shots=0"):
        SamplerV2(default_shots=0)
    with pytest.raises(InvalidOptionError, match="unknown primitive option"):
        SamplerV2(options={"default_precision": 0.1})
