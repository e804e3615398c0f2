"""Statevector compute kernels, installed as ``gpuprovider.kernels``.

Every device module (``cpu`` now, ``cuda`` next) offers the same operations with the same
signatures; :mod:`gpuprovider.kernels.select` picks one and remembers why. Nothing heavy is
imported here: Numba and CuPy load only when a device module is first used.
"""
