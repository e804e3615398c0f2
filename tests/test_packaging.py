"""The wheel holds every package of the source tree (a non-editable install must work)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_every_gpuprovider_package_is_listed_in_pyproject():
    tomllib = pytest.importorskip("tomllib")
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"])
    found = {"gpuprovider", "gpuprovider.kernels"} | {
        "gpuprovider." + init.parent.relative_to(ROOT / "gpuprovider").as_posix().replace("/", ".")
        for init in (ROOT / "gpuprovider").rglob("__init__.py")
        if init.parent != ROOT / "gpuprovider"
    }
    assert found == listed
