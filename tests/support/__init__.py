"""Helpers shared by the test packages (kernel sets and oracles, fake devices)."""
