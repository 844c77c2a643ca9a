"""The environment a measurement ran in: CPU model, cores, ISA flags, versions, GPU.

Library versions come from package metadata, so nothing heavy is imported; the
runtimes' versions are read from the runtime registry (each class names its library).
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess

from edgeproof.bench.runtimes import RUNTIMES
from edgeproof.manifest import library_versions

_ISA = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8",
        "amx_bf16", "avx_vnni", "fma", "neon", "asimd", "sve")


def cpu_info() -> dict:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, _, val = line.partition(":")
                key = key.strip()
                if key in ("model name", "Model") and model in ("", platform.machine(), platform.processor()):
                    model = val.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = set(val.split())
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": model, "cores": cores, "isa": [f for f in _ISA if f in flags]}


def gpu_info() -> dict | None:
    """Name and driver of the first NVIDIA GPU (via nvidia-smi), or None."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return None
    try:
        out = subprocess.run([smi, "--query-gpu=name,driver_version,memory.total",
                              "--format=csv,noheader"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    line = out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else ""
    if not line:
        return None
    name, driver, mem = [s.strip() for s in (line.split(",") + ["", ""])[:3]]
    return {"name": name, "driver": driver, "memory": mem}


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
