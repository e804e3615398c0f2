"""Run options: the defaults and the one validator both ``set_options`` and ``run`` use."""

from __future__ import annotations

import numbers
import secrets
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import device as devices
from . import mpi
from .compile.noise import NoiseSpec, read_noise_model
from .exceptions import InvalidOptionError
from .kernels.precision import PRECISIONS

DEFAULTS: dict[str, Any] = {
    "shots": 1024,
    "seed_simulator": None,
    "memory": False,
    "precision": "double",
    "device": "auto",
    "fusion_enable": True,
    "enable_truncation": True,
    "method": "automatic",
    "noise_model": None,
    "executor": None,
    "max_job_size": None,
    "distributed": "auto",
}

MAX_SHOTS = 2**62
"""Most shots of one circuit (shot counts stay exact 64-bit integers in every draw)."""

METHODS = ("automatic", "statevector", "density_matrix")
"""The values of qiskit-aer's ``method`` option this simulator runs: "statevector"
(trajectories and branches under noise), "density_matrix" (noisy straight-line circuits on
few qubits: :mod:`gpuprovider.compile.density`), "automatic" (the density matrix where it is
cheaper, else the statevector)."""


def _shots(value: Any) -> int:
    """A positive integer; integral floats and NumPy integers are accepted, as by Aer."""
    integral = isinstance(value, numbers.Integral) or (
        isinstance(value, (float, np.floating)) and float(value).is_integer())
    if isinstance(value, (bool, np.bool_)) or not integral or value <= 0:
        raise InvalidOptionError(f"shots={value!r} must be a positive integer")
    if value > MAX_SHOTS:
        raise InvalidOptionError(f"shots={value!r} exceeds the limit of {MAX_SHOTS} (2**62)")
    return int(value)


def _method(value: Any) -> str:
    if value not in METHODS:
        raise InvalidOptionError(
            f"method={value!r} is not supported: method must be one of "
            f"{', '.join(map(repr, METHODS))}"
        )
    return value


def _noise_model(value: Any) -> Any:
    """A qiskit-aer NoiseModel (read now, so that a model this simulator cannot apply is
    refused when it is set) or None."""
    read_noise_model(value)
    return value


SEED_LIMIT = 2**64
"""Seeds are unsigned 64-bit integers, as in Aer."""
EXPERIMENT_SEED_STRIDE = 2113
"""Experiment ``i`` of a run seeded ``S`` runs with seed ``S + 2113 i`` (mod 2**64), as in
Aer, and reports it: rerunning it alone with that seed reproduces it."""


def experiment_seed(seed: int, index: int) -> int:
    """The seed experiment ``index`` of a run seeded ``seed`` runs with."""
    return (seed + EXPERIMENT_SEED_STRIDE * index) % SEED_LIMIT


def _seed(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or \
            not 0 <= value < SEED_LIMIT:
        raise InvalidOptionError(
            f"seed_simulator={value!r} must be None or an integer 0 <= seed < 2**64"
        )
    return int(value)


def _flag(name: str):
    def validate(value: Any) -> bool:
        if not isinstance(value, (bool, np.bool_)):
            raise InvalidOptionError(f"{name}={value!r} must be True or False")
        return bool(value)

    return validate


def _precision(value: Any) -> str:
    if value not in PRECISIONS:
        raise InvalidOptionError(
            f"precision={value!r} is not one of {', '.join(map(repr, PRECISIONS))}"
        )
    return value


def _device(value: Any) -> str | devices.Device:
    """A device name as spelled in DEVICE_CHOICES, or a Device; either must be usable."""
    if isinstance(value, devices.Device):
        return value.require()
    try:
        name = devices.normalize_choice(value)
    except ValueError as exc:
        raise InvalidOptionError(str(exc)) from exc
    if name != "auto":
        devices.by_name(name).require()
    return name


def _executor(value: Any) -> Any:
    """None, or anything with ``submit(fn, *args)`` returning a future
    (:mod:`gpuprovider.fanout`)."""
    if value is not None and not callable(getattr(value, "submit", None)):
        raise InvalidOptionError(
            f"executor={value!r} has no submit(): give a concurrent.futures.Executor, a "
            "dask.distributed Client (or its get_executor()), or None"
        )
    return value


def _max_job_size(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or \
            value <= 0:
        raise InvalidOptionError(
            f"max_job_size={value!r} must be None or a positive integer (experiments per "
            "batch an executor runs)")
    return int(value)


_VALIDATORS = {
    "shots": _shots,
    "seed_simulator": _seed,
    "memory": _flag("memory"),
    "precision": _precision,
    "device": _device,
    "fusion_enable": _flag("fusion_enable"),
    "enable_truncation": _flag("enable_truncation"),
    "method": _method,
    "noise_model": _noise_model,
    "executor": _executor,
    "max_job_size": _max_job_size,
    "distributed": mpi.validate_distributed,
}


READ_WHEN_RUN = frozenset({"noise_model"})
"""Options that :meth:`RunConfig.from_options` reads in full, and so validates, for every run:
a ``run()`` override of one skips its separate validator (a noise model is read once per run,
not twice); ``set_options`` and the constructor keep it, so a bad value fails when it is set."""


def unknown_option_warning(name: str, stacklevel: int) -> None:
    """What the constructor, ``set_options`` and ``run`` all do with an unknown option."""
    warnings.warn(f"Option {name} is not used by this backend", UserWarning,
                  stacklevel=stacklevel + 1)


def validate_option(name: str, value: Any) -> Any:
    """``value`` normalised for option ``name``.

    Raises:
        InvalidOptionError: the value is not accepted; the message names it and the choices.
        DeviceUnavailableError: ``device="GPU"`` where no GPU is usable.
    """
    return _VALIDATORS[name](value)


@dataclass(frozen=True)
class RunConfig:
    """The options one run uses, validated, with the device resolved and the seed drawn."""

    shots: int
    seed: int
    memory: bool
    precision: str
    device: devices.Device
    fusion_enable: bool
    enable_truncation: bool = True
    noise: NoiseSpec | None = None
    """The noise model's channels and readout errors (None: ideal)."""
    method: str = "automatic"
    """One of :data:`METHODS`: which simulation of a noisy circuit the run may choose."""

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> RunConfig:
        seed = options["seed_simulator"]
        distributed = options["distributed"]
        if options.get("executor") is not None and distributed == "auto":
            distributed = False  # the experiments run on the executor's workers, each alone
        device = mpi.spread(devices.resolve(options["device"]), distributed)
        return cls(
            shots=options["shots"],
            seed=device.agreed(secrets.randbits(64)) if seed is None else seed,
            memory=options["memory"],
            precision=options["precision"],
            device=device,
            fusion_enable=options["fusion_enable"],
            enable_truncation=options["enable_truncation"],
            noise=read_noise_model(options["noise_model"]),
            method=options["method"],
        )
