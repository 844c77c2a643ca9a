"""Capture the C++ chatter TensorFlow, the TFLite converter and LiteRT print on fd 2.

Their logs bypass Python's ``sys.stderr``, so the file descriptor itself is redirected.
The captured text is kept (``.text``) so a failure can still say what the library said.
"""

from __future__ import annotations

import os
import sys
import tempfile
import warnings
from contextlib import contextmanager


class _Captured:
    text = ""


@contextmanager
def quiet_native(enabled: bool = True):
    """Silence native stderr and Python warnings inside the block; yields the capture."""
    cap = _Captured()
    if not enabled or os.environ.get("EDGEPROOF_VERBOSE"):
        yield cap
        return
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        yield cap  # no real fd (e.g. captured by a test harness)
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile(mode="w+b") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        os.dup2(tmp.fileno(), fd)
        try:
            yield cap
        finally:
            sys.stderr.flush()
            os.dup2(saved, fd)
            os.close(saved)
            tmp.seek(0)
            cap.text = tmp.read().decode(errors="replace")
