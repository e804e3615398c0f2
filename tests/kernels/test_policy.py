"""Machine facts the CPU kernels act on: the tile size from the L2 (Linux sysfs), read once, and
OpenMP's wait policy, set before OpenMP loads."""

from __future__ import annotations

import pytest
from gpuprovider.kernels.policy import L2_DEFAULT_BYTES, cpu_tile_qubits, l2_cache_bytes


@pytest.mark.parametrize("l2, expected", [
    (1 << 20, {16: 15, 8: 16}),  # the AMD EPYC development machine
    (2 << 20, {16: 16, 8: 17}),  # the Intel one
    (256 << 10, {16: 13, 8: 14}),
    (1 << 10, {16: 12, 8: 12}),
    (1 << 30, {16: 18, 8: 18}),
])
def test_tile_qubits_fill_half_the_l2(l2, expected):
    assert cpu_tile_qubits(l2) == expected


def _cache(root, index: int, level: str, size: str) -> None:
    directory = root / f"index{index}"
    directory.mkdir()
    (directory / "level").write_text(level + "\n")
    (directory / "size").write_text(size + "\n")


def test_l2_is_read_from_sysfs(tmp_path):
    _cache(tmp_path, 0, "1", "48K")
    _cache(tmp_path, 2, "2", "2048K")
    _cache(tmp_path, 3, "3", "480M")
    assert l2_cache_bytes(tmp_path) == 2 << 20


@pytest.mark.parametrize("size", ["", "lots", "12Q"])
def test_an_unreadable_l2_falls_back_to_the_default(tmp_path, size):
    assert l2_cache_bytes(tmp_path) == L2_DEFAULT_BYTES
    _cache(tmp_path, 2, "2", size)
    assert l2_cache_bytes(tmp_path) == L2_DEFAULT_BYTES


@pytest.mark.parametrize("given, expected", [(None, "passive"), ("active", "active")])
def test_openmp_threads_sleep_between_kernels_unless_the_user_says(given, expected):
    """The CPU kernels set OMP_WAIT_POLICY before OpenMP loads, and keep a user's value."""
    import os
    import subprocess
    import sys

    env = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
    if given is not None:
        env["OMP_WAIT_POLICY"] = given
    code = "import os, gpuprovider.kernels.cpu; print(os.environ['OMP_WAIT_POLICY'])"
    shown = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                           text=True, timeout=120, check=True).stdout.strip()
    assert shown == expected
