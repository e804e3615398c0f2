"""A device whose states are not NumPy arrays: the CPU kernels behind an opaque box.

:class:`BoxedKernels` runs every operation with the CPU's kernels, but the states it hands out
are :class:`Boxed` and its policy says ``memory_kind="device"``, like a GPU's. Code that
treats a state as a host array (slicing it, multiplying it, sending it to MPI) fails on it,
so a run on this device checks that a layer above the kernels (the distributed kernel set's
host staging, for one) goes through the :class:`~gpuprovider.kernels.interface.KernelSet`
only, without a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from gpuprovider.device import Device, DeviceReport, host_available_memory, host_total_memory
from gpuprovider.kernels import cpu
from gpuprovider.kernels.policy import CPU_POLICY

MAKES_STATES = ("allocate", "from_host", "clone")


@dataclass(eq=False)
class Boxed:
    """A state in "device memory": only the kernels open it."""

    array: np.ndarray

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype

    @property
    def size(self) -> int:
        return self.array.size


def _opened(value: Any) -> Any:
    return value.array if isinstance(value, Boxed) else value


class BoxedKernels:
    """The CPU kernel set on :class:`Boxed` states; counts the calls of each operation."""

    POLICY = replace(CPU_POLICY, name="BOXED", memory_kind="device")

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        original = getattr(cpu, name)
        if not callable(original) or name.isupper():
            return original

        def operation(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            result = original(*(_opened(arg) for arg in args), **kwargs)
            return Boxed(result) if name in MAKES_STATES else result

        return operation


def boxed_device(kernels: BoxedKernels | None = None) -> Device:
    """A usable device named "BOXED" running ``kernels`` (default: a new BoxedKernels)."""
    kernels = kernels if kernels is not None else BoxedKernels()
    report = DeviceReport("BOXED", True, "CPU kernels on boxed states, for tests", "BOXED",
                          host_total_memory())
    return Device(BoxedKernels.POLICY, lambda: report, lambda: kernels, host_available_memory)
