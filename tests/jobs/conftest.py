"""Fixtures shared by the job tests."""

from __future__ import annotations

import pytest

from gpuprovider import GPUJob


@pytest.fixture
def reaper():
    """Jobs appended here are cancelled at teardown, so a failing test leaves none running."""
    jobs: list[GPUJob] = []
    yield jobs
    for job in jobs:
        job.cancel()
