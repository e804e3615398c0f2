"""The CPU's generated drivers (``kernels/cpu_parallel.py``) are what their generator makes
from the current bodies and range loops: a stale file would keep Numba's disk cache of
code compiled from old bodies."""

from __future__ import annotations

from gpuprovider.kernels import cpu, cpu_parallel, drivers


def test_regenerating_the_drivers_changes_nothing():
    assert drivers.OUTPUT.read_text() == drivers.render(), (
        "kernels/cpu_parallel.py is stale: run python -m gpuprovider.kernels.drivers"
    )


def test_the_header_hashes_the_bodies_and_the_range_loops():
    assert cpu_parallel.SOURCE_HASH == drivers.source_hash()
    assert {"updates.py", "cpu.py", "cpu_tiles.py", "tiles.py"} <= set(drivers.SOURCES)
    assert drivers.render().splitlines()[2] == f"# {drivers.source_hash()}"


def test_every_range_loop_has_a_cached_serial_and_parallel_driver():
    from gpuprovider.kernels import cpu_tiles

    loops = {name[1:-len("_range")] for module in (cpu, cpu_tiles) for name in vars(module)
             if name.startswith("_") and name.endswith("_range")}
    loops.discard("pauli")  # called only by _pauli_groups_small, which is cached itself
    assert set(cpu_parallel.DRIVERS) == loops
    for serial, chunks in cpu_parallel.DRIVERS.values():
        for driver in (serial, chunks):
            assert driver.targetoptions["nogil"]
            assert type(driver._cache).__name__ != "NullCache", driver
        assert chunks.targetoptions["parallel"] and not serial.targetoptions.get("parallel")
