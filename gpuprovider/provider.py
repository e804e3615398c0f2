"""GPUProvider: lists and hands out the simulator backends."""

from __future__ import annotations

from typing import Any

from qiskit.providers import QiskitBackendNotFoundError

from .backend import GPUSimulator


class GPUProvider:
    """Provider of :class:`GPUSimulator` backends.

    Example:
        >>> backend = GPUProvider().get_backend("gpu_simulator", precision="single")
    """

    _BACKENDS = {"gpu_simulator": GPUSimulator}

    def backends(self, name: str | None = None, **options: Any) -> list[GPUSimulator]:
        """New backends (one per kind), optionally only the one called ``name``."""
        return [
            backend_class(provider=self, **options)
            for backend_name, backend_class in self._BACKENDS.items()
            if name is None or name == backend_name
        ]

    def get_backend(self, name: str = "gpu_simulator", **options: Any) -> GPUSimulator:
        """A new backend called ``name``, with ``options`` (device, precision, shots, ...) set.

        Raises:
            QiskitBackendNotFoundError: if no backend has that name.
        """
        if name not in self._BACKENDS:
            raise QiskitBackendNotFoundError(
                f"no backend named {name!r}; available: {', '.join(self._BACKENDS)}"
            )
        return self._BACKENDS[name](provider=self, **options)

    def __repr__(self) -> str:
        return "GPUProvider()"
