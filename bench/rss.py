"""Resident memory of this process: psutil for the current RSS (every platform), the
kernel's high-water mark for the peak.

On Linux the peak is ``VmHWM`` and ``reset_peak()`` sets it back to the current RSS
(``/proc/self/clear_refs`` = 5) so a peak can be attributed to one runtime; on Windows it
is psutil's ``peak_wset``; elsewhere ``ru_maxrss`` (never reset, an upper bound).
"""

from __future__ import annotations

import sys

import psutil


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def rss_mb() -> float | None:
    """Current resident set size in MiB."""
    try:
        return psutil.Process().memory_info().rss / 2**20
    except psutil.Error:
        return None


def peak_mb() -> float | None:
    """Peak resident set size in MiB since start or the last ``reset_peak()``."""
    kb = _status_kb("VmHWM")
    peak_wset = getattr(psutil.Process().memory_info(), "peak_wset", None)  # Windows
    if kb is None and peak_wset:
        return peak_wset / 2**20
    if kb is None:  # no /proc: ru_maxrss (kB on Linux, bytes on macOS), never reset
        import resource  # Unix only: Windows returned above

        ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return ru / (1024 * 1024) if sys.platform == "darwin" else ru / 1024
    return kb / 1024


def reset_peak() -> bool:
    """Reset the high-water mark to the current RSS; False where the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


class MemoryWatch:
    """RSS before, after and at peak around a block, as MiB deltas.

    Args:
        baseline: the RSS (MiB) the peak is measured from (default: the RSS on entry),
            e.g. the RSS before a runtime was loaded, to attribute a batch's peak to it.

    Example:
        >>> with MemoryWatch() as m:
        ...     buf = bytearray(50 * 2**20)
        >>> m.result()["peak_delta_mb"] >= 0
        True
    """

    def __init__(self, baseline: float | None = None):
        self.baseline = baseline

    def __enter__(self):
        self.peak_reset = reset_peak()
        self.before = rss_mb()
        if self.baseline is None:
            self.baseline = self.before
        self.after = self.peak = None
        return self

    def __exit__(self, *exc):
        self.after, self.peak = rss_mb(), peak_mb()

    def result(self) -> dict:
        """``rss_before_mb``, ``rss_delta_mb`` (after - before), ``peak_delta_mb``
        (peak - baseline; an upper bound when the peak could not be reset)."""
        if None in (self.before, self.after, self.peak, self.baseline):
            return {"rss_before_mb": None, "rss_delta_mb": None, "peak_delta_mb": None,
                    "peak_exact": False}
        return {"rss_before_mb": round(self.before, 1),
                "rss_delta_mb": round(self.after - self.before, 1),
                "peak_delta_mb": round(max(self.peak - self.baseline, 0.0), 1),
                "peak_exact": self.peak_reset}
