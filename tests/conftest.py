"""Shared fixtures: every test that takes ``device`` runs on each device kind, and is skipped
with the probe's reason where that device is not usable; ``precision`` runs both."""

from __future__ import annotations

import os

import pytest
from gpuprovider import device as devices
from gpuprovider.kernels.precision import PRECISIONS

TOLERANCE = {"double": 1e-10, "single": 1e-5}
"""Largest amplitude error accepted against qiskit.quantum_info.Statevector."""


SHARD_VARIABLE = "GPUPROVIDER_TEST_SHARD"
"""``"i/n"``: keep only every n-th collected test from the i-th (a subprocess's share of a
file that a test runs in several processes at once)."""


def pytest_collection_modifyitems(config, items) -> None:
    shard = os.environ.get(SHARD_VARIABLE)
    if not shard:
        return
    index, count = (int(part) for part in shard.split("/"))
    config.hook.pytest_deselected(items=[item for k, item in enumerate(items)
                                         if k % count != index])
    items[:] = [item for k, item in enumerate(items) if k % count == index]


def pytest_report_header(config) -> list[str]:
    lines = []
    for device in ("CPU", "GPU"):
        report = devices.by_name(device).report
        state = "usable" if report.usable else "NOT usable, its tests skip"
        lines.append(f"gpuprovider {device}: {state}: {report.reason}")
    return lines


def _device_param(device: str):
    marks = [pytest.mark.gpu] if device == "GPU" else []
    return pytest.param(device, marks=marks, id=device)


@pytest.fixture(params=[_device_param("CPU"), _device_param("GPU")])
def device(request) -> str:
    """A device kind: "CPU" always, "GPU" where one is usable (skipped with the reason)."""
    report = devices.by_name(request.param).report
    if not report.usable:
        pytest.skip(f"{request.param} not usable: {report.reason}")
    return request.param


@pytest.fixture(params=list(PRECISIONS))
def precision(request) -> str:
    return request.param


@pytest.fixture
def tolerance(precision: str) -> float:
    return TOLERANCE[precision]


@pytest.fixture
def backend(device: str, precision: str):
    """A GPUSimulator on ``device`` in ``precision``."""
    from gpuprovider import GPUSimulator

    return GPUSimulator(device=device, precision=precision)
