"""Hypothesis profiles for the property tests.

``GPUPROVIDER_HYPOTHESIS_PROFILE`` picks one (default "ci"):

- ``ci``: derandomized (the same examples every run), ``harness.CI_EXAMPLES`` examples (times
  a per-test factor) so that the whole folder runs in well under three minutes on two cores
  with the CPU device only (about 2 minutes measured while the code passes; a failing test
  adds its shrinking time);
- ``long``: ten times the examples, random, with Hypothesis' example database.

Every test here takes its settings from the selected profile through
``properties.harness.examples(factor)`` (a ``@settings`` decorator) rather than from a global
``settings.load_profile``, so that this folder does not change the settings of the Hypothesis
tests elsewhere in tests/ when the whole suite runs.
"""

from __future__ import annotations

from properties.harness import register_profiles

register_profiles()
