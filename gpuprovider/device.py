"""Devices: what runs a job. One :class:`Device` per engine, probed once.

A :class:`Device` is a name, a pure-data :class:`~gpuprovider.kernels.policy.DevicePolicy`
(everything the planner and the limits need), a kernel set loaded on first use (the
:class:`~gpuprovider.kernels.interface.KernelSet` that applies the operations), its memory
figures and its memory admission. Code above the kernels takes a ``Device`` and never branches
on a device's name; a test can hand the simulator a device of its own (``device=Device(...)``).

``device="auto"`` takes the GPU when it is usable, else the CPU. Probing asks the CUDA driver
library first and imports numba-cuda only where the driver reports a device, so neither
``import gpuprovider`` nor a CPU run on a machine without a GPU pays for numba-cuda.
"""

from __future__ import annotations

import ctypes
import importlib
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from .admission import MemoryAdmission, Turnstile
from .exceptions import DeviceUnavailableError
from .kernels.interface import KernelSet
from .kernels.policy import CPU_POLICY, GPU_POLICY, DevicePolicy
from .kernels.precision import bytes_per_amplitude

DEVICE_CHOICES = ("auto", "GPU", "CPU")
"""The names the ``device`` option takes (matched case-insensitively)."""


@dataclass(frozen=True)
class DeviceReport:
    """What probing one device found."""

    device: str
    usable: bool
    reason: str
    name: str = ""
    total_memory: int = 0


@dataclass(eq=False)
class Device:
    """One engine: its policy, its kernels (loaded lazily), its memory and admission.

    Args:
        policy: the device's facts (its ``name`` names the device).
        probe: says whether the device is usable here, why, and its total memory; called
            once.
        load_kernels: returns the kernel set; called on first use of :attr:`kernels`.
        free_memory: returns the bytes a new job could allocate now.
        load_small_kernels: returns the kernel set for states of fewer than the policy's
            ``small_state_qubits`` qubits (None: :attr:`kernels` runs every state). It acts
            on the same states as the main set.
        agree: for a device spread over MPI ranks (:mod:`gpuprovider.mpi`), returns rank
            0's value of what every rank passes it (a drawn seed, a job id); None: one
            process.
        turnstile: makes jobs run one at a time in submission order (the ranks of a spread
            device share one); None: jobs run at once.
    """

    policy: DevicePolicy
    probe: Callable[[], DeviceReport]
    load_kernels: Callable[[], KernelSet]
    free_memory: Callable[[], int]
    load_small_kernels: Callable[[], KernelSet] | None = None
    agree: Callable[[Any], Any] | None = None
    turnstile: Turnstile | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _report: DeviceReport | None = field(default=None, repr=False)
    _kernels: KernelSet | None = field(default=None, repr=False)
    _small_kernels: KernelSet | None = field(default=None, repr=False)
    _admission: MemoryAdmission | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.policy.name

    def __repr__(self) -> str:
        return f"Device({self.name!r})"

    @property
    def report(self) -> DeviceReport:
        """The probe's finding, made once."""
        with self._lock:
            if self._report is None:
                self._report = self.probe()
            return self._report

    @property
    def usable(self) -> bool:
        return self.report.usable

    def require(self) -> Device:
        """This device, or DeviceUnavailableError saying why it cannot run here."""
        if not self.usable:
            raise DeviceUnavailableError(
                f"device='{self.name}' was requested but is not usable: {self.report.reason}; "
                "use device='CPU' or device='auto'"
            )
        return self

    @property
    def kernels(self) -> KernelSet:
        """The kernel set, loaded on first use (DeviceUnavailableError if unusable)."""
        self.require()
        with self._lock:
            if self._kernels is None:
                self._kernels = self.load_kernels()
            return self._kernels

    def is_small(self, num_qubits: int) -> bool:
        """Whether a state of ``num_qubits`` qubits runs on the small-state (NumPy) kernels:
        below the policy's ``small_state_qubits``, where the device has them."""
        return self.load_small_kernels is not None and \
            num_qubits < self.policy.small_state_qubits

    def kernels_for(self, num_qubits: int) -> KernelSet:
        """The kernel set that runs a state of ``num_qubits`` qubits: the small-state set
        where :meth:`is_small`, else :attr:`kernels`. Neither is loaded before it is first
        asked for."""
        if not self.is_small(num_qubits):
            return self.kernels
        self.require()
        with self._lock:
            if self._small_kernels is None:
                self._small_kernels = self.load_small_kernels()
            return self._small_kernels

    @property
    def total_memory(self) -> int:
        return self.report.total_memory

    @property
    def admission(self) -> MemoryAdmission:
        """The memory admission every job on this device reserves through."""
        report = self.report
        with self._lock:
            if self._admission is None:
                self._admission = MemoryAdmission(self.free_memory, report.total_memory)
            return self._admission

    def with_policy(self, **changes: Any) -> Device:
        """A device with the same probe, kernels and memory and a policy changed by
        ``changes`` (a tuning experiment or a test). It has an admission of its own."""
        return Device(replace(self.policy, **changes), self.probe, self.load_kernels,
                      self.free_memory, self.load_small_kernels, self.agree, self.turnstile)

    def ordered(self, admit: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """A job's admission ``admit``, with a turnstile also waiting for the jobs submitted
        before it to finish (:class:`~gpuprovider.admission.Turnstile`)."""
        return admit if self.turnstile is None else self.turnstile.ordered(admit)

    def agreed(self, value: Any) -> Any:
        """``value`` as every rank of the device holds it: rank 0's (``value`` itself on a
        device of one process)."""
        return value if self.agree is None else self.agree(value)

    def max_qubits(self, precision: str, states: int = 1) -> int:
        """Most qubits whose ``states`` statevectors fit in the device's total memory."""
        per_state = states * bytes_per_amplitude(precision)
        return int(math.floor(math.log2(max(self.total_memory, per_state) / per_state)))


def _meminfo(field_name: str) -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def host_total_memory() -> int:
    """Physical memory of this machine in bytes."""
    total = _meminfo("MemTotal")
    if total is None:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return total


AVAILABLE_MEMORY_MAX_AGE = 0.05
"""Seconds a reading of the host's available memory is reused: reading ``/proc/meminfo``
took a quarter of a tiny circuit's job (about 0.1 ms of 0.5), and a job waiting for memory
re-reads it only every ``admission.POLL_SECONDS`` (0.1 s) anyway."""

_available_reading = (-math.inf, 0)
"""(``time.monotonic()`` when read, bytes)."""


def host_available_memory() -> int:
    """Host memory that can be allocated now without swapping, in bytes (read at most
    :data:`AVAILABLE_MEMORY_MAX_AGE` seconds ago)."""
    global _available_reading
    read_at, available = _available_reading
    now = time.monotonic()
    if now - read_at <= AVAILABLE_MEMORY_MAX_AGE:
        return available
    available = _meminfo("MemAvailable")
    if available is None:
        available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    _available_reading = (now, available)
    return available


def _probe_cpu() -> DeviceReport:
    return DeviceReport(
        "CPU", True, f"Numba CPU engine on {os.cpu_count()} cores", "CPU", host_total_memory()
    )


SIMULATOR_IS_NOT_A_GPU = "NUMBA_ENABLE_CUDASIM=1: Numba's CUDA simulator is not a GPU"

CUDA_DRIVER_LIBRARIES = ("libcuda.so.1", "libcuda.so", "/usr/lib/libcuda.so.1",
                         "/usr/lib64/libcuda.so.1", "nvcuda.dll")
"""Where the CUDA driver API lives (Linux, Windows): the names numba-cuda loads it by."""


def cuda_driver_devices() -> tuple[int, str]:
    """``(devices, why)``: how many CUDA devices the driver reports, asked through the driver
    library itself (milliseconds, where importing numba-cuda takes a third of a second); with
    no device, ``why`` says what is missing."""
    for library in CUDA_DRIVER_LIBRARIES:
        try:
            driver = ctypes.CDLL(library)
        except OSError:
            continue
        status = driver.cuInit(0)
        if status != 0:
            return 0, f"the CUDA driver ({library}) failed to initialise (CUresult {status})"
        count = ctypes.c_int(0)
        status = driver.cuDeviceGetCount(ctypes.byref(count))
        if status != 0:
            return 0, f"the CUDA driver ({library}) cannot count devices (CUresult {status})"
        if count.value == 0:
            return 0, f"the CUDA driver ({library}) reports no device"
        return count.value, ""
    return 0, f"no CUDA driver library ({', '.join(CUDA_DRIVER_LIBRARIES)}) can be loaded"


def _probe_gpu() -> DeviceReport:
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return DeviceReport("GPU", False, SIMULATOR_IS_NOT_A_GPU)
    devices, why = cuda_driver_devices()
    if not devices:
        return DeviceReport("GPU", False, f"no usable CUDA device: {why}")
    try:
        from numba import config as numba_config
        from numba import cuda
    except Exception as exc:  # noqa: BLE001 - ImportError, or numba-cuda failing to load
        return DeviceReport(
            "GPU", False,
            f"numba-cuda is not importable ({exc.__class__.__name__}: {exc}); install it with "
            "pip install 'gpuprovider[cuda12]' or 'gpuprovider[cuda13]'",
        )
    if numba_config.ENABLE_CUDASIM:
        return DeviceReport("GPU", False, SIMULATOR_IS_NOT_A_GPU)
    try:
        context = cuda.current_context()
        device = context.device
        total = int(context.get_memory_info().total)
    except Exception as exc:  # noqa: BLE001 - CudaSupportError: no driver or device, old driver
        return DeviceReport("GPU", False, f"no usable CUDA device: {' '.join(str(exc).split())}")
    name = device.name.decode() if isinstance(device.name, bytes) else str(device.name)
    capability = ".".join(map(str, device.compute_capability))
    return DeviceReport(
        "GPU", True, f"{name} (compute capability {capability}) via numba-cuda", name, total
    )


def _gpu_free_memory() -> int:
    from numba import cuda

    return int(cuda.current_context().get_memory_info().free)


def _module_loader(module: str) -> Callable[[], KernelSet]:
    return lambda: importlib.import_module(module)


CPU = Device(CPU_POLICY, _probe_cpu, _module_loader("gpuprovider.kernels.cpu"),
             host_available_memory, _module_loader("gpuprovider.kernels.small"))
"""The Numba CPU engine, with NumPy kernels for small states: always usable."""
GPU = Device(GPU_POLICY, _probe_gpu, _module_loader("gpuprovider.kernels.cuda"),
             _gpu_free_memory)
"""The numba-cuda engine: usable where an NVIDIA GPU and its driver are."""
BUILT_IN = {device.name: device for device in (GPU, CPU)}


def normalize_choice(choice: str) -> str:
    """``choice`` spelled as in :data:`DEVICE_CHOICES`; ValueError naming them otherwise."""
    if isinstance(choice, str):
        for name in DEVICE_CHOICES:
            if choice.lower() == name.lower():
                return name
    raise ValueError(f"device={choice!r} is not one of {', '.join(map(repr, DEVICE_CHOICES))}")


def resolve(choice: str | Device) -> Device:
    """The device that runs a job asked for with ``choice``: "auto", "GPU", "CPU" or a
    :class:`Device`.

    Raises:
        ValueError: ``choice`` is not a device name.
        DeviceUnavailableError: the chosen device is not usable here; the message says why.
    """
    if isinstance(choice, Device):
        return choice.require()
    name = normalize_choice(choice)
    if name == "auto":
        return GPU if GPU.usable else CPU
    return BUILT_IN[name].require()


def by_name(name: str) -> Device:
    """The built-in device called ``name`` ("CPU" or "GPU"), usable or not."""
    return BUILT_IN[normalize_choice(name)]
