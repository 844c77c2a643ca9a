"""The machine a measurement ran on: CPU model, cores, ISA flags, GPU, and its state.

psutil reads cores, load, frequency and memory on Linux, macOS and Windows alike;
NVIDIA's NVML (``nvidia-ml-py``) names the GPU. The CPU's model name and feature flags
come from /proc/cpuinfo on Linux (``sysctl`` on macOS, ``platform`` elsewhere).

Example:
    >>> sorted(cpu_info())
    ['cores', 'cpu', 'isa']
"""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

import psutil

_ISA = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8",
        "amx_bf16", "avx_vnni", "fma", "neon", "asimd", "sve")
_GOVERNOR = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")


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
    """The CPU's feature flags (``flags`` on x86, ``Features`` on Arm Linux)."""
    info = _cpuinfo()
    return set((info.get("flags") or info.get("Features") or "").split())


def _model_name(info: dict) -> str:
    name = info.get("model name") or info.get("Model")
    if not name and platform.system() == "Darwin":
        try:
            name = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"],
                                  capture_output=True, text=True, timeout=5).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            name = None
    return name or platform.processor() or platform.machine()


def usable_cores() -> int:
    """CPUs this process may run on (its affinity where the OS has one)."""
    try:
        return len(psutil.Process().cpu_affinity())
    except (AttributeError, psutil.Error):  # macOS has no affinity
        return psutil.cpu_count() or 1


def cpu_info() -> dict:
    """Model name, usable cores and the ISA flags that matter for inference speed."""
    info = _cpuinfo()
    flags = cpu_flags()
    return {"cpu": _model_name(info), "cores": usable_cores(),
            "isa": [f for f in _ISA if f in flags]}


def gpu_info() -> dict | None:
    """Name, driver and memory of the first NVIDIA GPU (NVML), or None without one."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # no nvidia-ml-py, no driver, or no GPU: all mean "no NVIDIA GPU"
        return None
    try:
        if not pynvml.nvmlDeviceGetCount():
            return None
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        name = pynvml.nvmlDeviceGetName(handle)
        return {"name": name.decode() if isinstance(name, bytes) else name,
                "driver": pynvml.nvmlSystemGetDriverVersion(),
                "memory": f"{pynvml.nvmlDeviceGetMemoryInfo(handle).total / 2**30:.0f} GiB"}
    except Exception:
        return None
    finally:
        pynvml.nvmlShutdown()


def machine_state(sample_s: float = 0.5) -> dict:
    """Load averages (1, 5, 15 min), the cores busy right now (CPU use over ``sample_s``
    seconds, while this process waits), CPU frequency and governor where the OS shows
    them, usable cores and available memory.

    Example:
        >>> sorted(machine_state(0.1))
        ['available_memory_mb', 'busy_cores', 'cores', 'cpu_freq_mhz', 'governor', 'load_avg']
    """
    freq = psutil.cpu_freq()
    try:
        governor = _GOVERNOR.read_text().strip()
    except OSError:
        governor = None
    cores = usable_cores()
    return {"load_avg": [round(x, 2) for x in psutil.getloadavg()],
            "busy_cores": round(psutil.cpu_percent(interval=sample_s) / 100 * cores, 2),
            "cpu_freq_mhz": {"current": round(freq.current), "min": round(freq.min) or None,
                             "max": round(freq.max) or None} if freq else None,
            "governor": governor, "cores": cores,
            "available_memory_mb": round(psutil.virtual_memory().available / 2**20)}


def busy(before: dict, threads: int) -> str | None:
    """Why the machine was too busy for clean timings, or None: the cores other processes
    kept busy just before the bench (a CPU-use sample, not the 1-minute load average,
    which still counts what this command itself did a minute ago: training, say) plus the
    threads the bench runs exceed the cores by more than half a core.

    Example:
        >>> busy({"busy_cores": 1.8, "load_avg": [3.6, 2.0, 1.0], "cores": 2}, 2)
        '1.8 of 2 cores busy before the bench (load average 3.6), which also ran 2 thread(s)'
        >>> busy({"busy_cores": 0.1, "load_avg": [1.7, 0.9, 0.4], "cores": 2}, 2) is None
        True
    """
    other, cores = before.get("busy_cores", before["load_avg"][0]), before["cores"]
    if other + threads > cores + 0.5:
        return (f"{other:g} of {cores} cores busy before the bench (load average "
                f"{before['load_avg'][0]:g}), which also ran {threads} thread(s)")
    return None
