"""Statevector compute kernels, installed as ``gpuprovider.kernels``.

Every device module (``cpu``: Numba on the CPU; ``cuda``: numba-cuda on an NVIDIA GPU) offers
the same operations with the same signatures; :mod:`gpuprovider.kernels.select` picks one and
remembers why. Nothing heavy is imported here: Numba and numba-cuda load only when a device
module is first used.
"""
