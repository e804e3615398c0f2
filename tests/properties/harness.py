"""What the property tests share: settings profiles, backends, runs and comparisons."""

from __future__ import annotations

import os

import numpy as np
from hypothesis import HealthCheck, Phase, settings
from qiskit import QuantumCircuit
from qiskit.quantum_info import Statevector

import gpuprovider.instructions  # noqa: F401 - adds QuantumCircuit.save_statevector & co.
from gpuprovider import GPUSimulator

CI_EXAMPLES = 30
"""Examples per test (and per device / precision / fusion variant) in the "ci" profile; tests
scale it with :func:`examples`."""

PROFILE_NAME = os.environ.get("GPUPROVIDER_HYPOTHESIS_PROFILE", "ci")


def register_profiles() -> None:
    common = dict(
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                               HealthCheck.data_too_large, HealthCheck.filter_too_much],
        print_blob=False,
        # No "explain" phase: it reruns a failing test many times for little gain here.
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    )
    settings.register_profile("ci", max_examples=CI_EXAMPLES, derandomize=True, database=None,
                              **common)
    settings.register_profile("long", max_examples=10 * CI_EXAMPLES, derandomize=False,
                              **common)


register_profiles()
if PROFILE_NAME not in ("ci", "long"):
    raise ValueError(f"GPUPROVIDER_HYPOTHESIS_PROFILE={PROFILE_NAME!r}: use 'ci' or 'long'")
PROFILE = settings.get_profile(PROFILE_NAME)


def examples(factor: float = 1.0) -> settings:
    """The profile's settings with ``factor`` times its examples (at least 2)."""
    return settings(PROFILE, max_examples=max(2, round(PROFILE.max_examples * factor)))


FUSION = [True, False]
FUSION_IDS = ["fusion", "nofusion"]


def backend_for(device: str, precision: str, fusion: bool, **options) -> GPUSimulator:
    return GPUSimulator(device=device, precision=precision, fusion_enable=fusion, **options)


def backend_options(device: str, precision: str, fusion: bool) -> dict:
    return {"device": device, "precision": precision, "fusion_enable": fusion}


def with_save(circuit: QuantumCircuit) -> QuantumCircuit:
    saved = circuit.copy()
    saved.save_statevector()
    return saved


def saved_state(backend, circuit: QuantumCircuit, **run_options) -> np.ndarray:
    """The statevector the backend saves at the end of ``circuit``."""
    result = backend.run(with_save(circuit), shots=1, **run_options).result()
    return np.asarray(result.get_statevector())


def exact_state(circuit: QuantumCircuit) -> np.ndarray:
    return np.asarray(Statevector(circuit).data)


def state_error(actual, expected) -> float:
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    if actual.shape != expected.shape:
        return float("inf")
    return float(np.max(np.abs(actual - expected)))


def phase_insensitive_error(actual, expected) -> float:
    """1 - |<expected|actual>| (0 when equal up to a global phase)."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    if actual.shape != expected.shape:
        return float("inf")
    return float(abs(1 - abs(np.vdot(expected, actual))))


def ev_tolerance(tolerance: float, num_qubits: int, coefficients) -> float:
    """An expectation value's error allowed from amplitude errors of ``tolerance``."""
    scale = float(np.sum(np.abs(np.asarray(coefficients)))) if np.size(coefficients) else 1.0
    return 4 * tolerance * np.sqrt(2**num_qubits) * max(1.0, scale)


def state_message(what: str, description: str, actual, expected, error: float,
                  tolerance: float) -> str:
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    lines = [f"{what}: max amplitude error {error:.3g} > tolerance {tolerance:g}"]
    if actual.shape == expected.shape:
        worst = int(np.argmax(np.abs(actual - expected)))
        lines.append(f"worst amplitude {worst}: got {actual[worst]:.6g}, "
                     f"expected {expected[worst]:.6g}; overlap |<e|a>| = "
                     f"{abs(np.vdot(expected, actual)):.9f}")
    else:
        lines.append(f"shapes differ: got {actual.shape}, expected {expected.shape}")
    lines.append(description)
    return "\n".join(lines)


def normalized_counts(counts: dict) -> dict[str, int]:
    """Counts with register separators removed (Aer and BackendV2 put spaces between)."""
    out: dict[str, int] = {}
    for key, value in counts.items():
        key = key.replace(" ", "")
        out[key] = out.get(key, 0) + int(value)
    return out


# --- exact distributions of dynamic circuits ------------------------------------------------


def dynamic_distribution(circuit: QuantumCircuit) -> dict[str, float]:
    """The exact distribution of every classical bit of ``circuit`` (keys as counts write them,
    clbit 0 rightmost, no register spaces), for circuits of unitary gates and per-qubit
    ``measure`` / ``reset``: one density matrix per classical record."""
    from qiskit.quantum_info import Operator

    n, m = circuit.num_qubits, circuit.num_clbits
    dim = 2**n
    indices = np.arange(dim)
    rho = np.zeros((dim, dim), dtype=complex)
    rho[0, 0] = 1.0
    records: dict[tuple[int, ...], np.ndarray] = {(0,) * m: rho}
    for instruction in circuit.data:
        operation = instruction.operation
        qubits = [circuit.find_bit(q).index for q in instruction.qubits]
        if operation.name == "barrier":
            continue
        if operation.name in ("measure", "reset"):
            if len(qubits) != 1:
                raise ValueError("dynamic_distribution takes per-qubit measure / reset only")
            q = qubits[0]
            zero = ((indices >> q) & 1) == 0
            flip = indices ^ (1 << q)
            updated: dict[tuple[int, ...], np.ndarray] = {}
            for record, rho in records.items():
                rho0 = rho * np.outer(zero, zero)
                rho1 = rho * np.outer(~zero, ~zero)
                if operation.name == "reset":
                    moved = np.zeros_like(rho)
                    moved[np.ix_(flip, flip)] = rho1  # |0><1| rho1 |1><0|
                    outcomes = [(record, rho0 + moved)]
                else:
                    c = circuit.find_bit(instruction.clbits[0]).index
                    outcomes = [(record[:c] + (bit,) + record[c + 1:], part)
                                for bit, part in ((0, rho0), (1, rho1))]
                for key, part in outcomes:
                    if np.real(np.trace(part)) <= 1e-15:
                        continue
                    updated[key] = updated[key] + part if key in updated else part
            records = updated
            continue
        single = QuantumCircuit(n)
        single.append(operation, qubits)
        unitary = Operator(single).data
        records = {key: unitary @ rho @ unitary.conj().T for key, rho in records.items()}
    return {"".join(str(bit) for bit in reversed(record)): float(np.real(np.trace(rho)))
            for record, rho in records.items()}
