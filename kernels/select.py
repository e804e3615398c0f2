"""Which device runs a job: probed once, cached with the reason.

``device="auto"`` takes the GPU when :func:`gpu_report` says it is usable, else the CPU.
Probing imports numba-cuda only when asked, so ``import gpuprovider`` stays fast and never fails
on a machine without CUDA.
"""

from __future__ import annotations

import importlib
import math
import os
from dataclasses import dataclass
from functools import cache
from types import ModuleType

from .precision import bytes_per_amplitude

DEVICES = ("auto", "GPU", "CPU")
"""The values of the ``device`` option (matched case-insensitively)."""

_KERNEL_MODULES = {"CPU": "gpuprovider.kernels.cpu", "GPU": "gpuprovider.kernels.cuda"}
"""Device -> module with the kernel operation set."""


@dataclass(frozen=True)
class DeviceReport:
    """What probing one device found."""

    device: str
    usable: bool
    reason: str
    name: str = ""
    total_memory: int = 0


def _meminfo(field: str) -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def cpu_total_memory() -> int:
    """Physical memory of this machine in bytes."""
    total = _meminfo("MemTotal")
    if total is None:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return total


def cpu_available_memory() -> int:
    """Memory that can be allocated now without swapping, in bytes."""
    available = _meminfo("MemAvailable")
    if available is None:
        available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    return available


@cache
def cpu_report() -> DeviceReport:
    """The CPU engine is always usable."""
    return DeviceReport(
        "CPU", True, f"Numba CPU engine on {os.cpu_count()} cores", "CPU", cpu_total_memory()
    )


@cache
def gpu_report() -> DeviceReport:
    """Probe for a usable NVIDIA GPU once; the reason says what was found or missing."""
    try:
        from numba import config as numba_config
        from numba import cuda
    except Exception as exc:  # ImportError, or numba-cuda failing to load its libraries
        return DeviceReport(
            "GPU", False,
            f"numba-cuda is not importable ({exc.__class__.__name__}: {exc}); install it with "
            "pip install 'gpuprovider[cuda12]' or 'gpuprovider[cuda13]'",
        )
    if numba_config.ENABLE_CUDASIM:
        return DeviceReport(
            "GPU", False, "NUMBA_ENABLE_CUDASIM=1: Numba's CUDA simulator is not a GPU"
        )
    try:
        context = cuda.current_context()
        device = context.device
        total = int(context.get_memory_info().total)
    except Exception as exc:  # CudaSupportError: no driver, no device, driver too old
        return DeviceReport("GPU", False, f"no usable CUDA device: {' '.join(str(exc).split())}")
    name = device.name.decode() if isinstance(device.name, bytes) else str(device.name)
    capability = ".".join(map(str, device.compute_capability))
    return DeviceReport(
        "GPU", True, f"{name} (compute capability {capability}) via numba-cuda", name, total
    )


def report(device: str) -> DeviceReport:
    """The cached probe of ``device`` ("CPU" or "GPU")."""
    return gpu_report() if device == "GPU" else cpu_report()


def normalize_device(device: str) -> str:
    """``device`` spelled as in :data:`DEVICES`; ValueError naming the choices otherwise."""
    if isinstance(device, str):
        for choice in DEVICES:
            if device.lower() == choice.lower():
                return choice
    raise ValueError(f"device={device!r} is not one of {', '.join(map(repr, DEVICES))}")


def resolve(device: str) -> DeviceReport:
    """The device that runs a job asked for with ``device`` ("auto", "GPU" or "CPU").

    Raises:
        RuntimeError: if ``device`` is "GPU" and no GPU is usable; the message says why.
    """
    device = normalize_device(device)
    if device == "auto":
        return gpu_report() if gpu_report().usable else cpu_report()
    chosen = report(device)
    if not chosen.usable:
        raise RuntimeError(f"device='{device}' was requested but is not usable: {chosen.reason}")
    return chosen


def kernels_for(device: str) -> ModuleType:
    """The kernel module of a resolved device ("CPU" or "GPU")."""
    return importlib.import_module(_KERNEL_MODULES[device])


def available_memory(device: str) -> int:
    """Bytes a new job on ``device`` could allocate now."""
    if device == "GPU":
        from numba import cuda

        return int(cuda.current_context().get_memory_info().free)
    return cpu_available_memory()


def max_qubits(device: str, precision: str, states: int = 1) -> int:
    """Most qubits whose ``states`` statevectors fit in ``device``'s total memory."""
    total = report(device).total_memory
    return int(math.floor(math.log2(total / (states * bytes_per_amplitude(precision)))))
