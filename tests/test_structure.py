"""Rules of the codebase's structure, checked on its source (issue 13): the primitives use the
backend's public layer only, nothing above the device layer branches on a device's name, and
every module says its role in its first docstring line."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = sorted((ROOT / "gpuprovider").rglob("*.py"))
KERNELS = sorted((ROOT / "kernels").glob("*.py"))
DEVICE_NAMES = {"CPU", "GPU"}


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", sorted((ROOT / "gpuprovider" / "primitives").glob("*.py")),
                         ids=_relative)
def test_primitives_use_no_private_name_of_the_backend_or_the_run_path(path):
    found = []
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.ImportFrom) and node.level and node.module in {
                "backend", "execution", "engine", "options"}:
            found += [alias.name for alias in node.names if alias.name.startswith("_")]
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") \
                and not node.attr.startswith("__"):
            owner = ast.unparse(node.value)
            if "backend" in owner or "execution" in owner:
                found.append(f"{owner}.{node.attr}")
    assert not found, f"{_relative(path)} reaches into private names: {found}"


@pytest.mark.parametrize("path", [p for p in PACKAGE if p.name != "device.py"], ids=_relative)
def test_nothing_above_the_devices_compares_a_device_name(path):
    """Device facts come from a Device and its policy, never from `name == "GPU"`."""
    found = []
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(isinstance(o, ast.Constant) and o.value in DEVICE_NAMES for o in operands):
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
    assert not found, f"{_relative(path)} branches on a device name: {found}"


@pytest.mark.parametrize("path", [*PACKAGE, *KERNELS], ids=_relative)
def test_every_module_opens_with_a_docstring_saying_its_role(path):
    docstring = ast.get_docstring(_tree(path))
    assert docstring and len(docstring.split()) >= 4, f"{_relative(path)} has no role line"


def test_the_planner_and_the_run_path_import_no_kernel_module():
    """Planning and checking use the device's policy (data); only a Device loads kernels."""
    for name in ("compile/plan.py", "compile/lower.py", "execution.py", "backend.py"):
        tree = _tree(ROOT / "gpuprovider" / name)
        imported = {node.module or "" for node in ast.walk(tree)
                    if isinstance(node, ast.ImportFrom)}
        imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                     for alias in node.names}
        assert not {m for m in imported if m.endswith(("kernels.cpu", "kernels.cuda", "cuda"))
                    or m in {"numba", "numba.cuda"}}, (name, imported)
