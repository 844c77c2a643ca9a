"""The environment a measurement ran in: CPU model, cores, ISA flags, versions, GPU.

Library versions come from package metadata, so nothing heavy is imported; the
runtimes' versions are read from the runtime registry (each class names its library).
"""

from __future__ import annotations

import platform

from edgeproof.bench.row import as_rows
from edgeproof.bench.runtimes import RUNTIMES
from edgeproof.machine import busy, cpu_info, gpu_info, machine_state
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


def state_section(before: dict, rows) -> dict:
    """report.json's ``env.machine_state``: the state before and after the measurements,
    and ``busy`` (why the timings are suspect) or None.

    Example:
        >>> before = machine_state()  # doctest: +SKIP
        >>> state_section(before, rows)["busy"]  # doctest: +SKIP
    """
    threads = max((r.threads or 1 for r in as_rows(rows) if r.ok), default=1)
    return {"before": before, "after": machine_state(), "busy": busy(before, threads)}


def busy_warning(report: dict) -> str | None:
    """The warning a busy machine puts above the results, or None.

    Example:
        >>> busy_warning({"env": {"machine_state": {"busy": "load average 3 before"}}})
        'WARNING: the machine was busy (load average 3 before): latencies are flagged, compare them with care.'
    """
    why = ((report.get("env") or {}).get("machine_state") or {}).get("busy")
    return f"WARNING: the machine was busy ({why}): latencies are flagged, compare them " \
           "with care." if why else None
