"""Helpers the tests import: paths, the shared datasets (skip when absent), the CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"
TINY_FORMATS = ("keras", "tflite-fp32", "tflite-int8", "onnx-fp32")


def shared_path(*parts: str) -> Path:
    """A path under ../shared/datasets, or skip the test when it is absent."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"shared dataset {p} not present")
    return p


def run_cli(*args: str, cwd: str | Path | None = None, env: dict | None = None,
            timeout: int = 600) -> subprocess.CompletedProcess:
    """Run ``edgeproof ARGS`` as a subprocess (``python -m edgeproof``, the installed package)."""
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "edgeproof", *map(str, args)], cwd=cwd or ROOT,
                          env=e, capture_output=True, text=True, timeout=timeout)


def assert_doc_in_sync(script: str) -> None:
    """``scripts/SCRIPT render --check`` passes: a docs page matches its kept data."""
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / script), "render", "--check"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
