"""Every instruction form a user can build runs untranspiled with the exact answer: the
repros of issue 12 and the library's operations (annotated, Clifford, definitions only)."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit, qasm3
from qiskit.circuit import (
    AnnotatedOperation,
    ControlModifier,
    Gate,
    Instruction,
    InverseModifier,
    Parameter,
    PowerModifier,
)
from qiskit.circuit.library import (
    GR,
    C3SXGate,
    DiagonalGate,
    HamiltonianGate,
    HGate,
    IntegerComparatorGate,
    Isometry,
    LinearFunction,
    MCMTGate,
    MCPhaseGate,
    MSGate,
    PauliEvolutionGate,
    PermutationGate,
    QFTGate,
    RC3XGate,
    RXGate,
    RYGate,
    StatePreparation,
    SXGate,
    U1Gate,
    UCRYGate,
    UCRZGate,
    UnitaryGate,
    XGate,
    XXPlusYYGate,
)
from qiskit.quantum_info import SparsePauliOp, Statevector, random_clifford, random_unitary
from qiskit.synthesis import SuzukiTrotter
from testkit import ALPHA, chi_square_pvalue

from gpuprovider import SaveStatevector
from gpuprovider.primitives import EstimatorV2, SamplerV2


def _custom_bell() -> Gate:
    definition = QuantumCircuit(2)
    definition.h(0)
    definition.cx(0, 1)
    return definition.to_gate(label="bell")


FORMS = {
    "mcmt-2c-2t": (4, lambda c: c.append(MCMTGate(HGate(), 2, 2), [3, 0, 2, 1])),
    "mcmt-1c-2t": (3, lambda c: c.append(MCMTGate(RYGate(0.7), 1, 2), [1, 2, 0])),
    "mcmt-3c-1t": (4, lambda c: c.append(MCMTGate(XGate(), 3, 1), [0, 1, 2, 3])),
    "mcphase-1c": (2, lambda c: c.append(MCPhaseGate(0.3, 1), [1, 0])),
    "mcphase-2c-open": (3, lambda c: c.append(MCPhaseGate(0.9, 2, ctrl_state=1), [0, 2, 1])),
    "custom-controlled-1c": (3, lambda c: c.append(
        _custom_bell().control(1, annotated=False), [2, 0, 1])),
    "custom-controlled-2c": (4, lambda c: c.append(
        _custom_bell().control(2, ctrl_state=2, annotated=False), [3, 1, 0, 2])),
    "unitary-controlled-1c": (2, lambda c: c.append(
        UnitaryGate(random_unitary(2, seed=1)).control(1, annotated=False), [1, 0])),
    "annotated-control": (3, lambda c: c.append(
        AnnotatedOperation(SXGate(), [ControlModifier(2, ctrl_state=1)]), [2, 0, 1])),
    "annotated-nested": (4, lambda c: c.append(AnnotatedOperation(
        RYGate(0.4), [InverseModifier(), ControlModifier(1), PowerModifier(2),
                      ControlModifier(2, ctrl_state=2)]), [0, 1, 2, 3])),
    "control-annotated": (3, lambda c: c.append(RXGate(0.4).control(2, annotated=True),
                                                [1, 2, 0])),
    "clifford": (3, lambda c: c.append(random_clifford(2, seed=1), [0, 2])),
    "isometry": (3, lambda c: c.append(
        Isometry(random_unitary(4, seed=2).data[:, :2], 0, 0), [1, 2])),
    "hamiltonian": (2, lambda c: c.append(HamiltonianGate(np.array([[1, .5], [.5, -1]]), .7),
                                          [1])),
    "pauli-evolution": (2, lambda c: c.append(PauliEvolutionGate(
        SparsePauliOp(["XZ", "YY"], [0.3, 0.2]), 0.9, synthesis=SuzukiTrotter(reps=2)),
        [0, 1])),
    "linear-function": (2, lambda c: c.append(LinearFunction([[1, 1], [0, 1]]), [0, 1])),
    "permutation": (3, lambda c: c.append(PermutationGate([2, 0, 1]), [0, 1, 2])),
    "ucry": (3, lambda c: c.append(UCRYGate([0.1, 0.2, 0.3, 0.4]), [0, 1, 2])),
    "ucrz": (2, lambda c: c.append(UCRZGate([0.1, 0.2]), [1, 0])),
    "ms": (3, lambda c: c.append(MSGate(3, 0.4), [0, 1, 2])),
    "gr": (2, lambda c: c.append(GR(2, 0.3, 0.2), [0, 1])),
    "power": (1, lambda c: c.append(SXGate().power(0.5), [0])),
    "qft-inverse": (3, lambda c: c.append(QFTGate(3).inverse(), [2, 0, 1])),
    "c3sx": (4, lambda c: c.append(C3SXGate(), [3, 1, 0, 2])),
    "rc3x": (4, lambda c: c.append(RC3XGate(), [0, 1, 2, 3])),
    "u1-3-controls": (4, lambda c: c.append(U1Gate(0.4).control(3, ctrl_state=5, annotated=False),
                                            [0, 1, 2, 3])),
    "state-preparation-inverse": (2, lambda c: c.append(
        StatePreparation([0.6, 0.8]).inverse(), [1])),
    "diagonal": (3, lambda c: c.append(DiagonalGate(list(np.exp(1j * np.arange(8)))),
                                       [2, 0, 1])),
    "integer-comparator": (3, lambda c: c.append(IntegerComparatorGate(2, 2), [0, 1, 2])),
    "xx-plus-yy": (2, lambda c: c.append(XXPlusYYGate(0.3, 0.2), [1, 0])),
    "opaque-name-rzz": (2, lambda c: c.append(_opaque("rzz", 2, [0.6], "rzz"), [1, 0])),
    "opaque-name-ccz": (3, lambda c: c.append(_opaque("ccz", 3, [], "ccz"), [2, 0, 1])),
}


def _opaque(name: str, width: int, params: list, standard: str) -> Gate:
    """A plain Gate under a standard name, known only by its definition (as OpenQASM 3
    files written by Qiskit's exporter load)."""
    definition = QuantumCircuit(width)
    getattr(definition, standard)(*params, *range(width))
    gate = Gate(name, width, params)
    gate.definition = definition.decompose()
    return gate


def prepared(width: int) -> QuantumCircuit:
    circuit = QuantumCircuit(width)
    for q in range(width):
        circuit.ry(0.3 + 0.5 * q, q)
        circuit.rz(0.2 * q - 0.4, q)
    for q in range(width - 1):
        circuit.cx(q, q + 1)
    return circuit


@pytest.mark.parametrize("fusion", [True, False], ids=["fused", "unfused"])
@pytest.mark.parametrize("form", sorted(FORMS))
def test_instruction_form_gives_the_exact_state(backend, tolerance, form, fusion):
    width, append = FORMS[form]
    circuit = prepared(width)
    append(circuit)
    expected = Statevector(circuit)
    circuit.append(SaveStatevector(width), circuit.qubits)
    state = backend.run(circuit, fusion_enable=fusion).result().get_statevector()
    np.testing.assert_allclose(state.data, expected.data, atol=tolerance * 10,
                               err_msg=f"{form}:\n{circuit.draw()}")


def test_rx_of_a_difference_is_right_for_every_binding(backend, tolerance):
    """Issue 12, item 1: rx(a - b) was classified at a == b as the identity."""
    a, b = Parameter("a"), Parameter("b")
    circuit = QuantumCircuit(2)
    circuit.rx(a - b, 0)
    circuit.crz(a * b, 0, 1)
    circuit.p(2 * a + b, 1)
    circuit.rzz(a - a + b, 0, 1)
    circuit.global_phase = a - b
    values = {a: [1.0, 0.5, np.pi, 0.0], b: [0.0, 0.5, 0.0, 0.0]}
    saved = circuit.copy()
    saved.append(SaveStatevector(2), saved.qubits)
    result = backend.run(saved, parameter_binds=[values]).result()
    for j in range(4):
        bound = circuit.assign_parameters({p: values[p][j] for p in values})
        np.testing.assert_allclose(result.get_statevector(j).data, Statevector(bound).data,
                                   atol=tolerance * 10, err_msg=f"binding {j}")


def test_rx_of_a_difference_in_both_primitives(device, precision):
    a, b = Parameter("a"), Parameter("b")
    circuit = QuantumCircuit(1)
    circuit.rx(a - b, 0)
    values = np.array([[np.pi, 0.0], [1.0, 1.0], [1.0, 0.0]])
    options = {"backend_options": {"device": device, "precision": precision}}
    evs = EstimatorV2(options=options).run([(circuit, "Z", values)]).result()[0].data.evs
    np.testing.assert_allclose(evs, np.cos(values[:, 0] - values[:, 1]), atol=1e-5)
    measured = circuit.copy()
    measured.measure_all()
    bits = SamplerV2(seed=2, options=options).run([(measured, values)], shots=2000).result()[0]
    counts = bits.data.meas
    assert counts.slice_shots(range(2000))[0].get_counts() == {"1": 2000}
    assert counts[1].get_counts() == {"0": 2000}
    p_one = np.sin(0.5) ** 2
    assert chi_square_pvalue(counts[2].get_counts(), {"0": 1 - p_one, "1": p_one}) > ALPHA


def test_mcmt_in_the_sampler_and_estimator(device, precision):
    circuit = QuantumCircuit(4)
    circuit.h([0, 1])
    circuit.append(MCMTGate(HGate(), 2, 2), [0, 1, 2, 3])
    state = Statevector(circuit)
    options = {"backend_options": {"device": device, "precision": precision}}
    observable = SparsePauliOp(["ZZII", "XIXI", "IIII"], [1.0, 0.5, 0.25])
    evs = EstimatorV2(options=options).run([(circuit, observable)]).result()[0].data.evs
    assert float(evs) == pytest.approx(state.expectation_value(observable).real, abs=1e-5)
    measured = circuit.measure_all(inplace=False)
    counts = SamplerV2(seed=5, options=options).run([measured], shots=4000).result()[0] \
        .data.meas.get_counts()
    assert chi_square_pvalue(counts, state.probabilities_dict()) > ALPHA


def test_raw_multi_qubit_measure_and_reset_act_on_every_qubit(backend):
    circuit = QuantumCircuit(3, 3)
    circuit.x([0, 2])
    circuit.append(Instruction("measure", 3, 3, []), [0, 1, 2], [2, 0, 1])
    assert backend.run(circuit, shots=20).result().get_counts() == {"110": 20}  # c2 c1 c0

    circuit = QuantumCircuit(3, 3)
    circuit.x([0, 1, 2])
    circuit.append(Instruction("reset", 2, 0, []), [2, 0])
    circuit.measure([0, 1, 2], [0, 1, 2])
    assert backend.run(circuit, shots=20).result().get_counts() == {"010": 20}


def test_qasm3_files_that_redefine_standard_names_run(backend, tolerance):
    """Qiskit's exporter writes ``gate rzz``, ``gate ccz``, ... definitions; the importer
    loads them as opaque Gates named like standard gates, which transpile() keeps."""
    theta = Parameter("theta")
    circuit = prepared(3)
    circuit.rzz(0.7, 0, 2)
    circuit.ccz(0, 1, 2)
    circuit.append(RXGate(theta).control(2, annotated=False), [2, 1, 0])
    circuit.append(_custom_bell(), [1, 2])
    loaded = qasm3.loads(qasm3.dumps(circuit))
    assert any(type(i.operation) is Gate for i in loaded.data)
    for value in (0.0, 1.3):
        expected = Statevector(circuit.assign_parameters({theta: value}))
        bound = loaded.assign_parameters({loaded.parameters[0]: value})
        bound.append(SaveStatevector(3), bound.qubits)
        state = backend.run(bound).result().get_statevector()
        np.testing.assert_allclose(state.data, expected.data, atol=tolerance * 10)
    sweep = loaded.copy()
    sweep.append(SaveStatevector(3), sweep.qubits)
    result = backend.run(sweep, parameter_binds=[{loaded.parameters[0]: [0.0, 1.3]}]).result()
    for j, value in enumerate((0.0, 1.3)):
        expected = Statevector(circuit.assign_parameters({theta: value}))
        np.testing.assert_allclose(result.get_statevector(j).data, expected.data,
                                   atol=tolerance * 10)
