"""The environment a measurement ran in: CPU model, cores, ISA flags, versions, GPU.

Library versions come from package metadata, so nothing heavy is imported; the
runtimes' versions are read from the runtime registry (each class names its library).
"""

from __future__ import annotations

import platform

from edgeproof.bench.runtimes import RUNTIMES
from edgeproof.machine import cpu_info, gpu_info
from edgeproof.manifest import library_versions


def environment() -> dict:
    """The report's ``env`` block: Python, each registered runtime's library, the CPU
    (model, cores, ISA flags), the platform and the GPU. Threads are per row (each
    runtime's own, usually auto-tuned), never a machine-wide figure.

    Example:
        >>> sorted(environment())[:3]  # doctest: +SKIP
        ['ai_edge_litert', 'cores', 'cpu']
    """
    v = library_versions()
    cpu = cpu_info()
    env = {"python": v.get("python"), "tf2onnx": v.get("tf2onnx"), "numpy": v.get("numpy")}
    env.update({cls.version_key: cls.version() for cls in RUNTIMES.rows()})
    env.update({"platform": platform.platform(), "cpu": cpu["cpu"], "cores": cpu["cores"],
                "isa": cpu["isa"], "gpu": gpu_info()})
    return env
