"""Mid-circuit measurement and reset, per-qubit and as raw multi-qubit instructions
(``Instruction("measure", k, k, [])``, ``Instruction("reset", k, 0, [])``): counts against the
exact distribution of the same circuit written with one measure / reset per qubit (a density
matrix per classical record, ``harness.dynamic_distribution``), against qiskit-aer, and
against exactly known outcomes on basis states.

(Aer is the cross-check, not the main reference: for some dynamic circuits its counts are
nearly the same for different seeds and off the exact distribution by 3 sigma, e.g. 2109 /
1891 for a fair coin with seeds 1-4, so a chi-square against Aer alone would be unsound.)"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister, transpile
from qiskit.circuit import Instruction
from testkit import ALPHA, chi_square_pvalue, homogeneity_pvalue

from gpuprovider.primitives import SamplerV2
from properties.harness import (
    FUSION,
    FUSION_IDS,
    backend_for,
    backend_options,
    dynamic_distribution,
    examples,
    normalized_counts,
)
from properties.strategies import Case, dynamic_circuits

pytestmark = pytest.mark.parametrize("fusion", FUSION, ids=FUSION_IDS)

SHOTS = 4000


def compare_with_exact(what: str, ours: dict[str, int], case: Case) -> None:
    expected = dynamic_distribution(case.reference)
    assert sum(ours.values()) == SHOTS, f"{what}: {sum(ours.values())} shots\n{case.describe()}"
    impossible = {key: n for key, n in ours.items() if expected.get(key, 0.0) <= 1e-12}
    assert not impossible, (
        f"{what}: outcomes of probability 0 observed: {impossible}\n"
        f"expected {dict(sorted(expected.items()))}\n(keys: register 'fin' then 'mid')\n"
        + case.describe())
    pvalue = chi_square_pvalue(ours, expected)
    assert pvalue > ALPHA, (
        f"{what}: chi-square p = {pvalue:.3g} <= {ALPHA} against the exact distribution of "
        f"the per-qubit circuit\nours     {dict(sorted(ours.items()))}\nexpected "
        f"{dict(sorted((k, round(p, 6)) for k, p in expected.items()))}\n"
        f"(keys: register 'fin' then 'mid')\n{case.describe()}")


def backend_counts(device, precision, fusion, case, seed) -> dict[str, int]:
    backend = backend_for(device, precision, fusion)
    result = backend.run(case.circuit, shots=SHOTS, seed_simulator=seed).result()
    return normalized_counts(result.get_counts())


def sampler_counts(device, precision, fusion, case, seed) -> dict[str, int]:
    sampler = SamplerV2(seed=seed, options={"backend_options": backend_options(device, precision,
                                                                               fusion)})
    data = sampler.run([(case.circuit,)], shots=SHOTS).result()[0].data
    ours: dict[str, int] = {}
    for mid, fin in zip(data.mid.get_bitstrings(), data.fin.get_bitstrings()):
        ours[fin + mid] = ours.get(fin + mid, 0) + 1
    return ours


@examples(2)
@given(case=dynamic_circuits(raw=False), seed=st.integers(0, 2**31 - 1))
def test_mid_circuit_measure_reset(device, precision, fusion, case, seed):
    compare_with_exact(f"backend.run ({device}, {precision}, fusion={fusion}, seed={seed})",
                       backend_counts(device, precision, fusion, case, seed), case)


@examples(2)
@given(case=dynamic_circuits(raw=True), seed=st.integers(0, 2**31 - 1))
def test_raw_multi_qubit_measure_reset(device, precision, fusion, case, seed):
    compare_with_exact(f"backend.run ({device}, {precision}, fusion={fusion}, seed={seed})",
                       backend_counts(device, precision, fusion, case, seed), case)


@examples(1)
@given(case=dynamic_circuits(raw=False), seed=st.integers(0, 2**31 - 1))
def test_sampler_dynamic(device, precision, fusion, case, seed):
    compare_with_exact(f"SamplerV2 ({device}, {precision}, fusion={fusion}, seed={seed})",
                       sampler_counts(device, precision, fusion, case, seed), case)


@examples(1)
@given(case=dynamic_circuits(raw=True), seed=st.integers(0, 2**31 - 1))
def test_sampler_raw_multi_qubit_measure_reset(device, precision, fusion, case, seed):
    compare_with_exact(f"SamplerV2 ({device}, {precision}, fusion={fusion}, seed={seed})",
                       sampler_counts(device, precision, fusion, case, seed), case)


_AER: list = []


def _aer():
    """One AerSimulator and its Target (Aer builds its Target anew, 0.1 s, on every access)."""
    if not _AER:
        from qiskit_aer import AerSimulator

        aer = AerSimulator(method="statevector")
        _AER.append((aer, aer.target))
    return _AER[0]


@examples(0.3)
@given(case=dynamic_circuits(raw=True), seed=st.integers(0, 2**31 - 1))
def test_raw_multi_qubit_measure_reset_matches_aer(device, precision, fusion, case, seed):
    """The raw multi-qubit forms on our backend against Aer on the per-qubit circuit
    (a two-sample test)."""
    ours = backend_counts(device, precision, fusion, case, seed)
    aer, target = _aer()
    circuit = transpile(case.reference, target=target, optimization_level=0)
    reference = normalized_counts(aer.run(circuit, shots=SHOTS, seed_simulator=seed ^ 0x5EED)
                                  .result().get_counts())
    pvalue = homogeneity_pvalue(ours, reference)
    assert pvalue > ALPHA, (
        f"backend.run ({device}, {precision}, fusion={fusion}, seed={seed}): counts differ from "
        f"qiskit-aer's on the per-qubit circuit (homogeneity p = {pvalue:.3g} <= {ALPHA}); "
        f"outcomes Aer never gave: {sorted(set(ours) - set(reference))[:8]}\n"
        f"ours {dict(sorted(ours.items()))}\naer  {dict(sorted(reference.items()))}\n"
        f"(keys: register 'fin' then 'mid')\n{case.describe()}")


@st.composite
def basis_state_cases(draw):
    """A basis state |x>, a raw measure of k qubits into k clbits, a raw reset of some
    qubits, a raw measure of every qubit: every shot gives one known bitstring."""
    n = draw(st.integers(2, 5))
    x = draw(st.integers(0, 2**n - 1))
    k = draw(st.integers(2, n))
    measured = draw(st.permutations(range(n)))[:k]
    clbits = draw(st.permutations(range(n)))[:k]
    r = draw(st.integers(1, n))
    reset = draw(st.permutations(range(n)))[:r]
    circuit = QuantumCircuit(QuantumRegister(n, "q"), ClassicalRegister(n, "mid"),
                             ClassicalRegister(n, "fin"))
    lines = [f"qc = QuantumCircuit(QuantumRegister({n}, 'q'), ClassicalRegister({n}, 'mid'), "
             f"ClassicalRegister({n}, 'fin'))"]
    for q in range(n):
        if x >> q & 1:
            circuit.x(q)
            lines.append(f"qc.x({q})")
    circuit.append(Instruction("measure", k, k, []), measured, clbits)
    lines.append(f"qc.append(Instruction('measure', {k}, {k}, []), {measured}, {clbits})")
    circuit.append(Instruction("reset", r, 0, []), reset)
    lines.append(f"qc.append(Instruction('reset', {r}, 0, []), {reset})")
    circuit.append(Instruction("measure", n, n, []), range(n), range(n, 2 * n))
    lines.append(f"qc.append(Instruction('measure', {n}, {n}, []), range({n}), "
                 f"range({n}, {2 * n}))")
    mid = ["0"] * n
    for q, cb in zip(measured, clbits):
        mid[cb] = str(x >> q & 1)
    after = x
    for q in reset:
        after &= ~(1 << q)
    fin = format(after, f"0{n}b")
    expected = fin + "".join(reversed(mid))
    return Case(circuit, "\n".join(lines), extra={"expected": expected})


@examples(2)
@given(case=basis_state_cases())
def test_raw_multi_qubit_forms_on_basis_states(device, precision, fusion, case):
    backend = backend_for(device, precision, fusion)
    counts = normalized_counts(backend.run(case.circuit, shots=64, seed_simulator=1)
                               .result().get_counts())
    assert counts == {case.extra["expected"]: 64}, (
        f"backend.run ({device}, {precision}, fusion={fusion}): counts {counts}, expected "
        f"every shot to read {case.extra['expected']} (register 'fin' then 'mid')\n"
        f"{case.describe()}")
