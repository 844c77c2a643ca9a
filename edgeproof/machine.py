"""The machine a measurement ran on: CPU model, cores, ISA flags, GPU (nothing imported).

Example:
    >>> sorted(cpu_info())
    ['cores', 'cpu', 'isa']
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess

_ISA = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8",
        "amx_bf16", "avx_vnni", "fma", "neon", "asimd", "sve")


def _cpuinfo() -> dict[str, str]:
    """The first value of each key of /proc/cpuinfo (empty where there is none)."""
    out: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, _, val = line.partition(":")
                out.setdefault(key.strip(), val.strip())
    except OSError:
        pass
    return out


def cpu_flags() -> set[str]:
    """The CPU's feature flags (``flags`` on x86, ``Features`` on Arm)."""
    info = _cpuinfo()
    return set((info.get("flags") or info.get("Features") or "").split())


def cpu_info() -> dict:
    """Model name, usable cores and the ISA flags that matter for inference speed."""
    info = _cpuinfo()
    model = info.get("model name") or info.get("Model") or platform.processor() or \
        platform.machine()
    flags = cpu_flags()
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
