"""Run options: the defaults and the one validator both ``set_options`` and ``run`` use."""

from __future__ import annotations

import numbers
import secrets
from dataclasses import dataclass
from typing import Any

import numpy as np

from .exceptions import DeviceUnavailableError, InvalidOptionError
from .kernels import select
from .kernels.precision import PRECISIONS

DEFAULTS: dict[str, Any] = {
    "shots": 1024,
    "seed_simulator": None,
    "memory": False,
    "precision": "double",
    "device": "auto",
    "fusion_enable": True,
}


def _shots(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise InvalidOptionError(f"shots={value!r} must be a positive integer")
    return int(value)


def _seed(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise InvalidOptionError(f"seed_simulator={value!r} must be None or an integer >= 0")
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


def _device(value: Any) -> str:
    try:
        device = select.normalize_device(value)
    except ValueError as exc:
        raise InvalidOptionError(str(exc)) from exc
    if device == "GPU" and not select.gpu_report().usable:
        raise DeviceUnavailableError(
            f"device='GPU' was requested but no GPU is usable: {select.gpu_report().reason}; "
            "use device='CPU' or device='auto'"
        )
    return device


_VALIDATORS = {
    "shots": _shots,
    "seed_simulator": _seed,
    "memory": _flag("memory"),
    "precision": _precision,
    "device": _device,
    "fusion_enable": _flag("fusion_enable"),
}


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
    device: str
    fusion_enable: bool

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> RunConfig:
        seed = options["seed_simulator"]
        device = select.resolve(options["device"]).device
        return cls(
            shots=options["shots"],
            seed=secrets.randbits(63) if seed is None else seed,
            memory=options["memory"],
            precision=options["precision"],
            device=device,
            fusion_enable=options["fusion_enable"],
        )
