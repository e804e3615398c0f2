"""Qiskit V2 primitives on gpuprovider's engine: the statevector is read directly.

    from gpuprovider.primitives import EstimatorV2, SamplerV2
    evs = EstimatorV2().run([(circuit, observables, parameter_values)]).result()[0].data.evs
    bits = SamplerV2(seed=7).run([(circuit, parameter_values)], shots=1000).result()[0].data.meas

Both take the options of ``GPUSimulator`` (``device``, ``precision``, ``fusion_enable``) as
``options={"backend_options": {...}}``, as qiskit-aer's primitives do, or a ``backend=``.
"""

from __future__ import annotations

from .estimator import EstimatorV2
from .job import GPUPrimitiveJob
from .sampler import SamplerV2

__all__ = ["EstimatorV2", "GPUPrimitiveJob", "SamplerV2"]
