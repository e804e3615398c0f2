"""benchmarks/workloads_bench.py at tiny sizes: every workload gives a row, both peers agree
where values are compared, and the hand-built QNN pubs give EstimatorQNN's values."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "workloads_bench.py"
TINY = ["--repeats", "1", "--startup-repeats", "1", "--vqe-maxiter", "10", "--qnn-qubits", "2",
        "--qnn-samples", "2", "--sets", "4", "--sweep-qubits", "3", "--bindings", "4",
        "--issue6-qubits", "3", "--issue6-sets", "2", "--reruns", "2"]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("workloads_bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("workload", ["vqe", "qnn", "sets880", "sweep", "rerun", "issue6"])
def test_each_workload_gives_a_row(bench, workload):
    row = bench.RUNNERS[workload](bench.build_parser().parse_args(TINY))
    assert row["workload"] == workload
    assert row["ours_s"] > 0
    if row["aer_s"] is not None and row["max_difference"] is not None:
        assert row["max_difference"] < 1e-10


def test_hand_built_qnn_pubs_match_estimator_qnn(bench):
    pytest.importorskip("qiskit_machine_learning")
    from qiskit_machine_learning.gradients import ParamShiftEstimatorGradient
    from qiskit_machine_learning.neural_networks import EstimatorQNN

    circuit, features, weights = bench.qnn_circuit(2)
    rng = np.random.default_rng(0)
    inputs = rng.uniform(0, np.pi, (3, features.num_parameters))
    weight_values = rng.uniform(0, np.pi, weights.num_parameters)
    estimator = bench.EstimatorV2()
    network = EstimatorQNN(circuit=circuit, estimator=estimator,
                           input_params=features.parameters, weight_params=weights.parameters,
                           default_precision=0.0,
                           gradient=ParamShiftEstimatorGradient(estimator))
    forward, gradient = bench.qnn_by_hand(estimator, circuit, features, weights, inputs,
                                          weight_values)
    np.testing.assert_allclose(forward, network.forward(inputs, weight_values), atol=1e-12)
    np.testing.assert_allclose(gradient, network.backward(inputs, weight_values)[1],
                               atol=1e-12)


def test_unknown_workload_exits_2(bench, monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["workloads_bench.py", "--only", "vqe,nope"])
    with pytest.raises(SystemExit) as stopped:
        bench.main()
    assert stopped.value.code == 2
    assert "'nope'" in capsys.readouterr().err
