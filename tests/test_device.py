"""Devices (``gpuprovider.device``): choosing one, one error for an unusable one, lazily
loaded kernels, one admission each, policies as data, and a device of the test's own
running real circuits."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.quantum_info import Statevector
from support.fake_device import FakeKernels, fake_device

from gpuprovider import GPUSimulator, SaveStatevector  # noqa: F401 - registers the save
from gpuprovider import device as devices
from gpuprovider.device import Device, DeviceReport
from gpuprovider.exceptions import DeviceUnavailableError, InvalidOptionError
from gpuprovider.kernels.interface import OPERATIONS, KernelSet
from gpuprovider.kernels.policy import CPU_POLICY, GPU_POLICY, POLICIES


def unusable_device() -> Device:
    loads = []
    device = Device(
        CPU_POLICY,
        lambda: DeviceReport("CPU", False, "the test unplugged it"),
        lambda: loads.append(1) or FakeKernels(),
        lambda: 0,
    )
    device.loads = loads
    return device


@pytest.mark.parametrize("spelling", ["cpu", "CPU", "Cpu"])
def test_names_are_matched_case_insensitively(spelling):
    assert devices.normalize_choice(spelling) == "CPU"
    assert devices.resolve(spelling) is devices.CPU


def test_auto_takes_the_gpu_only_where_it_is_usable():
    expected = devices.GPU if devices.GPU.usable else devices.CPU
    assert devices.resolve("auto") is expected


@pytest.mark.parametrize("bad", ["TPU", "", None, 3])
def test_a_bad_name_is_an_error_naming_the_choices(bad):
    with pytest.raises(ValueError, match="'auto', 'GPU', 'CPU'"):
        devices.normalize_choice(bad)
    with pytest.raises(InvalidOptionError, match="is not one of"):
        GPUSimulator(device=bad)


def test_an_unusable_device_raises_one_error_with_its_reason_and_never_loads_kernels():
    device = unusable_device()
    for attempt in (device.require, lambda: device.kernels, lambda: devices.resolve(device),
                    lambda: GPUSimulator(device=device)):
        with pytest.raises(DeviceUnavailableError, match="the test unplugged it"):
            attempt()
    assert device.loads == []


def test_the_gpu_without_a_gpu_raises_the_same_error():
    if devices.GPU.usable:
        pytest.skip(f"a GPU is usable here: {devices.GPU.report.reason}")
    for attempt in (lambda: devices.resolve("GPU"), lambda: devices.GPU.kernels,
                    lambda: GPUSimulator(device="gpu")):
        with pytest.raises(DeviceUnavailableError, match=devices.GPU.report.reason[:40]):
            attempt()


def test_kernels_load_once_on_first_use():
    loads = []
    kernels = FakeKernels()
    device = Device(CPU_POLICY, lambda: DeviceReport("CPU", True, "ok", "CPU", 1 << 30),
                    lambda: loads.append(1) or kernels, lambda: 1 << 30)
    assert loads == []
    assert device.kernels is kernels and device.kernels is kernels
    assert loads == [1]


def test_each_built_in_kernel_set_satisfies_the_protocol_and_names_its_policy():
    cpu = devices.CPU.kernels
    assert isinstance(cpu, KernelSet)
    assert all(callable(getattr(cpu, name)) for name in OPERATIONS)
    assert cpu.POLICY is CPU_POLICY is POLICIES["CPU"]
    assert devices.GPU.policy is GPU_POLICY


def test_planning_for_the_gpu_needs_no_cuda_import():
    """The planner reads the GPU's policy, which is data: no kernel module is imported."""
    import subprocess

    code = (
        "import sys, numpy as np\n"
        "from qiskit.circuit.library import QFT\n"
        "from gpuprovider.compile.lower import lower_circuit\n"
        "from gpuprovider.compile.plan import planned\n"
        "from gpuprovider.kernels.policy import GPU_POLICY\n"
        "dtype = np.dtype(np.complex128)\n"
        "program = lower_circuit(QFT(8).decompose(), dtype)\n"
        "planned(program, GPU_POLICY.plan_policy(dtype))\n"
        "loaded = [m for m in ('numba.cuda', 'gpuprovider.kernels.cuda') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr


def test_one_admission_per_device_sized_by_its_memory():
    device = fake_device(total_memory=1000, free_memory=1000)
    assert device.admission is device.admission
    assert device.admission.total_memory == 1000
    assert devices.CPU.admission is not device.admission


def test_with_policy_changes_only_the_policy():
    narrow = devices.CPU.with_policy(fusion_max_qubits=2, max_matrix_qubits=4)
    assert narrow.policy.fusion_max_qubits == 2 and narrow.policy.max_matrix_qubits == 4
    assert narrow.policy.tile_qubits == CPU_POLICY.tile_qubits
    assert narrow.kernels is devices.CPU.kernels
    assert narrow.admission is not devices.CPU.admission


def test_max_qubits_follows_the_memory_and_the_precision():
    device = fake_device(total_memory=16 << 20)
    assert device.max_qubits("double") == 20
    assert device.max_qubits("single") == 21
    assert device.max_qubits("double", states=2) == 19


def test_a_device_of_ones_own_runs_circuits_with_the_same_answers():
    """A fake device (the CPU kernels behind hooks) and a policy changed as data give the
    same statevector as Qiskit, and the result names the device."""
    rng = np.random.default_rng(3)
    circuit = QuantumCircuit(13)
    for _ in range(40):
        a, b = rng.choice(13, 2, replace=False)
        circuit.ry(float(rng.uniform(0, 3)), int(a))
        circuit.cx(int(a), int(b))
    expected = Statevector(circuit).data
    circuit.save_statevector()
    kernels = FakeKernels()
    for device in (fake_device(kernels), devices.CPU.with_policy(fusion_max_qubits=1)):
        result = GPUSimulator(device=device).run(circuit, shots=1).result()
        assert np.allclose(result.get_statevector().data, expected, atol=1e-10)
        assert result.results[0].metadata["device"] == device.name
    assert kernels.calls, "the fake device's kernels did not run"


SMALL_RUN = """
import sys
from qiskit import QuantumCircuit
from gpuprovider import GPUSimulator
circuit = QuantumCircuit(5)
circuit.h(0)
for qubit in range(4):
    circuit.cx(qubit, qubit + 1)
circuit.measure_all()
counts = GPUSimulator().run(circuit, shots=1000, seed_simulator=3).result().get_counts()
assert set(counts) == {"00000", "11111"} and sum(counts.values()) == 1000, counts
print(sorted(name for name in ("numba", "numba_cuda") if name in sys.modules))
"""


def test_a_small_run_in_a_fresh_process_loads_no_numba():
    """Start-up: a 5-qubit circuit runs on the NumPy kernels, and where the CUDA driver
    reports no device the GPU probe never imports numba-cuda."""
    import subprocess

    if devices.cuda_driver_devices()[0]:
        pytest.skip("a CUDA device is present: device='auto' loads numba-cuda to use it")
    result = subprocess.run([sys.executable, "-c", SMALL_RUN], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", result.stdout


def test_the_gpu_probe_names_a_missing_driver(monkeypatch):
    monkeypatch.setattr(devices, "CUDA_DRIVER_LIBRARIES", ("libno-such-cuda-driver.so",))
    monkeypatch.delenv("NUMBA_ENABLE_CUDASIM", raising=False)
    count, why = devices.cuda_driver_devices()
    assert count == 0 and "libno-such-cuda-driver.so" in why
    report = devices._probe_gpu()
    assert not report.usable and "no CUDA driver library" in report.reason


def test_the_hosts_available_memory_is_read_again_once_its_reading_is_old(monkeypatch):
    from types import SimpleNamespace

    from gpuprovider import device as devices_module

    reads = []
    monkeypatch.setattr(devices_module, "_meminfo", lambda name: reads.append(name) or 4096)
    monkeypatch.setattr(devices_module, "_available_reading", (-float("inf"), 0))
    clock = [100.0]
    monkeypatch.setattr(devices_module, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    assert devices_module.host_available_memory() == 4096
    clock[0] += devices_module.AVAILABLE_MEMORY_MAX_AGE / 2
    assert devices_module.host_available_memory() == 4096
    assert reads == ["MemAvailable"]
    clock[0] += devices_module.AVAILABLE_MEMORY_MAX_AGE
    devices_module.host_available_memory()
    assert reads == ["MemAvailable"] * 2
