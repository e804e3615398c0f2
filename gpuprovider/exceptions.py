"""Errors raised by gpuprovider (all derive from Qiskit's ``QiskitError``), and how their
messages write byte counts."""

from __future__ import annotations

from qiskit.exceptions import QiskitError


class GPUProviderError(QiskitError):
    """Base class of every error gpuprovider raises itself."""


class InvalidCircuitError(GPUProviderError):
    """A circuit cannot be simulated as given (the message names the instruction or value)."""


class InvalidOptionError(GPUProviderError, ValueError):
    """An option has a value the simulator does not accept (the message names both)."""


class CapacityError(GPUProviderError):
    """A circuit needs more memory than the device has (the message gives both in bytes)."""


def format_bytes(count: int) -> str:
    """How error messages write a byte count: exact, and in GiB."""
    return f"{count:,} bytes ({count / 2**30:.2f} GiB)"


class DeviceUnavailableError(GPUProviderError):
    """The requested device cannot be used here (the message says why)."""


class JobCancelledError(GPUProviderError):
    """Raised inside a job's thread to unwind it when the job is cancelled."""
