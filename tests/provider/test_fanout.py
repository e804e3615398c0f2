"""A run's experiments spread over an executor (``executor=``, :mod:`gpuprovider.fanout`):
the same Result as the same run without one, cancellation and failures as for any job."""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.providers import JobError, JobStatus
from qiskit.quantum_info import SparsePauliOp
from testkit import random_circuit, visible_gpu, wait_until

from gpuprovider import GPUPool, GPUSimulator
from gpuprovider.exceptions import DeviceUnavailableError, InvalidOptionError
from gpuprovider.fanout import batches
from gpuprovider.compile.sweep import parse_parameter_binds


def _families() -> tuple[list[QuantumCircuit], list[dict]]:
    """Random, dynamic, saving and swept circuits, with their parameter_binds."""
    theta = Parameter("theta")
    swept = QuantumCircuit(3, name="swept")
    swept.h(0)
    swept.ry(theta, 1)
    swept.cx(0, 2)
    swept.crx(theta / 2, 1, 2)
    swept.save_expectation_value(SparsePauliOp(["ZZI", "XIX"], [0.5, -1.0]), [0, 1, 2])
    swept.measure_all()
    dynamic = QuantumCircuit(3, 2, name="dynamic")
    dynamic.h(0)
    dynamic.measure(0, 0)
    with dynamic.if_test((dynamic.clbits[0], 1)):
        dynamic.x(1)
    dynamic.h(2)
    dynamic.measure([1, 2], [0, 1])
    saving = random_circuit(4, 30, seed=11)
    saving.name = "saving"
    saving.save_statevector()
    saving.measure_all()
    random = random_circuit(5, 40, seed=12)
    random.measure_all()
    circuits = [swept, dynamic, saving, random]
    binds = [{theta: list(np.linspace(-3, 3, 9))}, {}, {}, {}]
    return circuits, binds


def _same_results(local, fanned) -> None:
    assert len(fanned.results) == len(local.results)
    for ours, theirs in zip(fanned.results, local.results):
        assert ours.header == theirs.header
        assert ours.seed_simulator == theirs.seed_simulator
        assert ours.data.counts == theirs.data.counts
        if hasattr(theirs.data, "memory"):
            assert ours.data.memory == theirs.data.memory
        for key, value in theirs.data.to_dict().items():
            if key not in ("counts", "memory"):
                np.testing.assert_allclose(np.asarray(getattr(ours.data, key)),
                                           np.asarray(value), rtol=0, atol=1e-12)


@pytest.mark.parametrize("max_job_size", [None, 1, 4, 100])
def test_thread_pool_gives_the_local_result(max_job_size):
    circuits, binds = _families()
    backend = GPUSimulator(device="CPU", seed_simulator=21, shots=200, memory=True)
    local = backend.run(circuits, parameter_binds=binds).result()
    with ThreadPoolExecutor(3) as executor:
        job = backend.run(circuits, parameter_binds=binds, executor=executor,
                          max_job_size=max_job_size)
        fanned = job.result()
    _same_results(local, fanned)
    assert job.status() is JobStatus.DONE
    assert fanned.metadata["executor"] == "ThreadPoolExecutor"
    assert fanned.metadata["seed_simulator"] == 21
    if max_job_size == 1:
        assert fanned.metadata["batches"] == len(local.results) == 12
    assert job.progress() == (job.progress()[1], job.progress()[1])


def test_noisy_runs_fan_out_alike():
    aer_noise = pytest.importorskip("qiskit_aer.noise")
    model = aer_noise.NoiseModel()
    model.add_all_qubit_quantum_error(aer_noise.depolarizing_error(0.05, 1), ["h", "rx"])
    model.add_all_qubit_quantum_error(aer_noise.depolarizing_error(0.1, 2), ["cx"])
    circuit = random_circuit(4, 25, seed=3)
    circuit.h(range(4))
    circuit.measure_all()
    backend = GPUSimulator(device="CPU", seed_simulator=8, shots=500, noise_model=model)
    local = backend.run([circuit] * 5).result()
    with ThreadPoolExecutor(2) as executor:
        fanned = backend.run([circuit] * 5, executor=executor, max_job_size=2).result()
    _same_results(local, fanned)
    assert len({str(result.data.counts) for result in local.results}) > 1, \
        "experiments differ by their seeds; the fan-out must keep each one's"


def test_process_pool_gives_the_local_result():
    circuits, binds = _families()
    backend = GPUSimulator(device="CPU", seed_simulator=4, shots=100)
    local = backend.run(circuits, parameter_binds=binds).result()
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as executor:
        fanned = backend.run(circuits, parameter_binds=binds, executor=executor).result()
    _same_results(local, fanned)


def test_a_gpu_pool_gives_each_worker_one_gpu_and_the_local_result():
    circuits, binds = _families()
    backend = GPUSimulator(device="CPU", seed_simulator=4, shots=100)
    local = backend.run(circuits, parameter_binds=binds).result()
    with GPUPool(gpus=[1, 0]) as pool:
        assert pool._max_workers == 2
        seen = [pool.submit(visible_gpu, 0.5) for _ in range(4)]
        assert sorted(future.result(timeout=120) for future in seen) == ["0", "0", "1", "1"]
        fanned = backend.run(circuits, parameter_binds=binds, executor=pool).result()
    _same_results(local, fanned)


def test_a_gpu_pool_cancels_queued_calls_and_refuses_bad_gpus():
    with GPUPool(gpus=1) as pool:
        running = pool.submit(visible_gpu, 1.0)
        queued = pool.submit(visible_gpu)
        assert queued.cancel() is True
        assert running.result(timeout=120) == "0"
        assert queued.cancelled()
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(visible_gpu)
    for gpus in ([], [0, 0], [-1]):
        with pytest.raises(ValueError, match="distinct ordinals"):
            GPUPool(gpus=gpus)


def test_a_gpu_pool_needs_a_gpu_when_it_counts_them(monkeypatch):
    from gpuprovider import device

    monkeypatch.setattr(device, "cuda_driver_devices", lambda: (0, "no driver here"))
    with pytest.raises(DeviceUnavailableError, match="GPUPool found no GPU: no driver here"):
        GPUPool()


def test_batches_cut_experiments_in_order():
    circuits, binds = _families()
    sweeps = parse_parameter_binds(binds, circuits)
    steps = [10 * (1 if sweep is None else len(sweep)) for sweep in sweeps]
    for size in (1, 2, 5, 12, 50):
        cut = batches(circuits, sweeps, steps, size)
        assert [batch.first for batch in cut] == list(np.cumsum([0] + [b.size for b in cut]))[:-1]
        assert sum(batch.size for batch in cut) == 12
        assert all(batch.size <= size for batch in cut)
        assert sum(batch.steps for batch in cut) == sum(steps)
        values = [v for batch in cut for binding in batch.parameter_binds
                  for v in (next(iter(binding.values())) if binding else [None])]
        assert values == list(np.linspace(-3, 3, 9)) + [None] * 3


class _GatedExecutor:
    """One worker thread; every batch after the first waits for ``release``."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(1)
        self.release = threading.Event()
        self.started = 0

    def submit(self, fn, *args) -> Future:
        def run():
            self.started += 1
            if self.started > 1:
                self.release.wait(30)
            return fn(*args)

        return self.pool.submit(run)


def test_cancel_stops_the_batches_not_started():
    executor = _GatedExecutor()
    circuit = random_circuit(3, 10, seed=1)
    circuit.measure_all()
    job = GPUSimulator(device="CPU", shots=10).run([circuit] * 20, executor=executor,
                                                     max_job_size=1)
    assert wait_until(lambda: job.progress()[0] >= 1, 30), "the first batch finishes"
    assert job.cancel() is True or job.status() is JobStatus.CANCELLED
    executor.release.set()
    assert job.wait_for_final_state(timeout=30) is None
    assert job.status() is JobStatus.CANCELLED
    executor.pool.shutdown(wait=True)
    assert executor.started < 20, "cancelled batches never started"
    with pytest.raises(JobError):
        job.result()


class _FailingExecutor(ThreadPoolExecutor):
    def submit(self, fn, *args):
        future = Future()
        future.set_exception(RuntimeError("worker 3 lost its connection"))
        return future


def test_a_failed_batch_fails_the_job_with_its_cause():
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.measure_all()
    with _FailingExecutor(1) as executor:
        job = GPUSimulator(device="CPU").run(circuit, executor=executor)
        job.wait_for_final_state(timeout=30)
    assert job.status() is JobStatus.ERROR
    with pytest.raises(JobError, match="worker 3 lost its connection"):
        job.result()


@pytest.mark.parametrize("name, value, message", [
    ("executor", 5, "executor=5 has no submit"),
    ("max_job_size", 0, "max_job_size=0 must be None or a positive integer"),
    ("max_job_size", 2.5, "max_job_size=2.5"),
])
def test_bad_executor_options_are_refused(name, value, message):
    circuit = QuantumCircuit(1)
    circuit.measure_all()
    with pytest.raises(InvalidOptionError, match=message):
        GPUSimulator(device="CPU").run(circuit, **{name: value})
    with pytest.raises(InvalidOptionError, match=message):
        GPUSimulator(device="CPU", **{name: value})


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def test_a_thousand_circuits_on_a_dask_cluster_match_the_local_run(dask_client):
    circuits = []
    for seed in range(1000):
        circuit = random_circuit(3, 6, seed=seed)
        circuit.measure_all()
        circuits.append(circuit)
    backend = GPUSimulator(device="CPU", seed_simulator=99, shots=64)
    local = backend.run(circuits).result()
    for executor in (dask_client, dask_client.get_executor()):
        fanned = backend.run(circuits, executor=executor).result()
        _same_results(local, fanned)


def test_a_dask_job_can_be_cancelled_midway(dask_client):
    circuit = random_circuit(12, 200, seed=5)
    circuit.measure_all()
    job = GPUSimulator(device="CPU", shots=10).run([circuit] * 200, executor=dask_client,
                                                     max_job_size=1)
    assert wait_until(lambda: job.progress()[0] >= 1, 60), "some batches finish"
    job.cancel()
    job.wait_for_final_state(timeout=60)
    assert job.status() is JobStatus.CANCELLED
    assert job.progress()[0] < job.progress()[1]


def _pubs():
    from qiskit.circuit.library import real_amplitudes

    circuit = real_amplitudes(3, reps=2)
    measured = circuit.measure_all(inplace=False)
    rng = np.random.default_rng(1)
    values = [rng.uniform(0, 2 * np.pi, (sets, circuit.num_parameters)) for sets in (3, 5, 2, 4)]
    observables = SparsePauliOp(["ZZI", "XXY", "IZX"], [1.0, 0.4, -0.7])
    return ([(measured, v) for v in values],
            [(circuit, observables, v, precision) for v, precision in zip(values, (0, .05, .1, 0))])


def _primitive_runs(executor, max_job_size):
    from gpuprovider.primitives import EstimatorV2, SamplerV2

    options = {"backend_options": {"device": "CPU", "executor": executor,
                                   "max_job_size": max_job_size}}
    sampler_pubs, estimator_pubs = _pubs()
    sampled = SamplerV2(seed=3, options=options).run(sampler_pubs, shots=64).result()
    estimated = EstimatorV2(seed=3, options=options).run(estimator_pubs).result()
    return sampled, estimated


def _same_primitive_results(local, fanned) -> None:
    (local_sampled, local_estimated), (sampled, estimated) = local, fanned
    assert len(sampled) == len(local_sampled) and len(estimated) == len(local_estimated)
    for ours, theirs in zip(sampled, local_sampled):
        np.testing.assert_array_equal(ours.data.meas.array, theirs.data.meas.array)
    for ours, theirs in zip(estimated, local_estimated):
        # Exact values of pubs of one circuit come from batches of states they share, so a
        # batch that holds other pubs' sets may round differently in the last bit or two.
        np.testing.assert_allclose(ours.data.evs, theirs.data.evs, rtol=0, atol=1e-13)
        np.testing.assert_allclose(ours.data.stds, theirs.data.stds, rtol=0, atol=1e-13)


@pytest.mark.parametrize("max_job_size", [None, 1, 6])
def test_primitives_on_a_thread_pool_give_the_local_results(max_job_size):
    local = _primitive_runs(None, None)
    with ThreadPoolExecutor(2) as executor:
        fanned = _primitive_runs(executor, max_job_size)
    _same_primitive_results(local, fanned)
    assert fanned[0].metadata["executor"] == "ThreadPoolExecutor"
    if max_job_size == 1:
        assert fanned[1].metadata["batches"] == 4, "a pub is never split"


def test_primitives_on_a_dask_cluster_give_the_local_results(dask_client):
    _same_primitive_results(_primitive_runs(None, None), _primitive_runs(dask_client, 2))
