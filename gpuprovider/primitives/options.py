"""The primitives' options: qiskit-aer's spelling, checked when a primitive is made."""

from __future__ import annotations

import numbers
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..backend import GPUSimulator
from ..exceptions import InvalidOptionError
from ..execution import Execution

Seed = int | np.random.Generator | None


def check_seed(seed: Any) -> Seed:
    """``seed`` if it is None, an integer >= 0 or a NumPy Generator."""
    if seed is None or isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise InvalidOptionError(
            f"seed={seed!r} must be None, an integer >= 0 or a numpy.random.Generator"
        )
    return int(seed)


def draw_seed(seed: Seed) -> int:
    """The integer seed of one run: ``seed`` itself, or drawn (from the Generator, or fresh)."""
    if seed is None:
        return secrets.randbits(63)
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(2**63))
    return seed


def rng_for(seed: int, pub: int, binding: int) -> np.random.Generator:
    """The random stream of one parameter set of one pub: independent of the others."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(pub, binding)))


@dataclass(frozen=True)
class PrimitiveOptions:
    """What a primitive runs with.

    ``backend_options`` are :class:`~gpuprovider.GPUSimulator` options (``device``,
    ``precision``, ``fusion_enable``, ``enable_truncation``, ``method``, ``distributed``,
    ``executor`` and ``max_job_size``, which spread the pubs over an executor's workers;
    ``noise_model`` is refused with the reason); ``seed`` makes runs reproducible.
    """

    seed: Seed = None
    backend_options: Mapping[str, Any] = field(default_factory=dict)


BACKEND_OPTIONS = ("device", "precision", "fusion_enable", "enable_truncation", "method",
                   "noise_model", "distributed", "executor", "max_job_size")
"""The GPUSimulator options a primitive takes (shots and seeds are the primitive's own)."""

RUN_OPTION_SEED = "seed_simulator"
"""qiskit-aer's ``run_options`` key for the seed; the one run option the primitives read."""


def build_options(
    seed: Any, options: Mapping[str, Any] | None, defaults: dict[str, Any],
    backend: GPUSimulator | None,
) -> tuple[PrimitiveOptions, dict[str, Any], GPUSimulator]:
    """Check a primitive's constructor arguments.

    Args:
        seed: the ``seed`` argument.
        options: qiskit-aer's ``options`` dict: ``backend_options``, ``run_options`` (only
            ``seed_simulator``) and the primitive's own defaults (the keys of ``defaults``).
        defaults: the primitive's default fields (``default_shots`` or ``default_precision``)
            with the values given as arguments; ``options`` may override them.
        backend: a GPUSimulator whose options are the base of ``backend_options``.

    Returns:
        The options, the defaults, and the backend that runs the pubs.

    Raises:
        InvalidOptionError: an unknown key or a bad value, named.
    """
    options = dict(options or {})
    known = {"backend_options", "run_options", *defaults}
    unknown = sorted(set(options) - known)
    if unknown:
        raise InvalidOptionError(
            f"unknown primitive option(s) {', '.join(map(repr, unknown))}; the options are "
            f"{', '.join(sorted(known))}"
        )
    run_options = dict(options.pop("run_options", None) or {})
    if set(run_options) - {RUN_OPTION_SEED}:
        raise InvalidOptionError(
            f"run_options {sorted(run_options)!r}: only {RUN_OPTION_SEED!r} is read here; "
            "give simulator options as backend_options"
        )
    if RUN_OPTION_SEED in run_options:
        if seed is not None:
            raise InvalidOptionError("give the seed once: seed= or run_options['seed_simulator']")
        seed = run_options[RUN_OPTION_SEED]
    backend_options = dict(options.pop("backend_options", None) or {})
    if set(backend_options) - set(BACKEND_OPTIONS):
        raise InvalidOptionError(
            f"backend_options {sorted(set(backend_options) - set(BACKEND_OPTIONS))!r} are not "
            f"taken by the primitives; they take {', '.join(BACKEND_OPTIONS)}"
        )
    if backend is None:
        backend = GPUSimulator()
    elif not isinstance(backend, GPUSimulator):
        raise InvalidOptionError(f"backend must be a GPUSimulator, not {type(backend).__name__}")
    backend_config = {name: backend.options[name] for name in BACKEND_OPTIONS}
    runner = backend.with_options(**{**backend_config, **backend_options})  # validated
    return PrimitiveOptions(check_seed(seed), backend_options), {**defaults, **options}, runner


def execution_for(backend: GPUSimulator, seed: Seed) -> Execution:
    """The backend's run path for one primitive run, with its seed drawn."""
    return backend.execution(seed_simulator=draw_seed(seed))
