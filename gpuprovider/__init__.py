"""gpuprovider: a GPU-accelerated statevector simulator for Qiskit.

    from gpuprovider import GPUSimulator
    counts = GPUSimulator().run(circuit, shots=1000).result().get_counts()

The public names load on first use, so ``import gpuprovider`` is fast and needs no GPU.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "GPUSimulator": "gpuprovider.backend",
    "GPUProvider": "gpuprovider.provider",
    "GPUJob": "gpuprovider.job",
    "Device": "gpuprovider.device",
    "SaveStatevector": "gpuprovider.instructions",
    "GPUPool": "gpuprovider.gpu_pool",
}

__all__ = [*_EXPORTS, "__version__"]

if TYPE_CHECKING:
    from .backend import GPUSimulator
    from .device import Device
    from .gpu_pool import GPUPool
    from .instructions import SaveStatevector
    from .job import GPUJob
    from .provider import GPUProvider


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gpuprovider' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
