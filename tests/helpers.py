"""Helpers the tests import: paths, the shared datasets (skip when absent), the CLI runner."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"
TINY_FORMATS = ("keras", "tflite-fp32", "tflite-int8", "onnx-fp32")
ERROR_LINE = re.compile(r"^edgeproof(?: [\w-]+)?: error: ")


CURRENT_TEST = None  # the running test's node (set by an autouse fixture in conftest.py)


def shared_path(*parts: str) -> Path:
    """A path under ../shared/datasets, or skip the test when it is absent.

    The calling test must be marked ``shared`` (``pytest -m "not shared"`` deselects it).
    """
    if CURRENT_TEST is not None and CURRENT_TEST.get_closest_marker("shared") is None:
        pytest.fail(f"{CURRENT_TEST.nodeid} reads ../shared: mark it pytest.mark.shared",
                    pytrace=False)
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"shared dataset {p} not present")
    return p


def small_flowers_folder(tmp_path: Path) -> Path:
    """A folder dataset of symlinks to 6 shared flowers per class for 3 classes, plus one
    corrupt and one empty image (the caller is marked ``shared``)."""
    src = shared_path("flowers")
    root = tmp_path / "flowers"
    for cls in ("daisy", "rose", "tulip"):
        (root / cls).mkdir(parents=True)
        for f in sorted((src / cls).iterdir())[:6]:
            (root / cls / f.name).symlink_to(f)
    (root / "rose" / "broken.jpg").write_bytes(b"not a jpeg at all")
    (root / "tulip" / "empty.png").write_bytes(b"")
    return root


def run_cli(*args: str, cwd: str | Path | None = None, env: dict | None = None,
            timeout: int = 600) -> subprocess.CompletedProcess:
    """Run ``edgeproof ARGS`` as a subprocess (``python -m edgeproof``, the installed package)."""
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "edgeproof", *map(str, args)], cwd=cwd or ROOT,
                          env=e, capture_output=True, text=True, timeout=timeout)


def assert_doc_in_sync(script: str) -> None:
    """``scripts/SCRIPT render --check`` passes (SCRIPT relative to scripts/, e.g.
    ``benchmarks/bench_docs.py``): a docs page matches its kept data."""
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / script), "render", "--check"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    """``proc`` exited 0 (else fail with the tail of its output)."""
    assert proc.returncode == 0, (f"exit {proc.returncode}\n" + proc.stderr[-3000:]
                                  + proc.stdout[-2000:])
    return proc


def one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    """The CLI failed with exactly one error line on stderr (``edgeproof: error: ...``, or
    argparse's ``edgeproof CMD: error: ...``), no traceback and no internal error, and that
    line names every one of ``needles`` (case-insensitive); returns the line."""
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ERROR_LINE.match(ln)]
    assert len(errors) == 1, proc.stderr
    for n in needles:
        assert n.lower() in errors[0].lower(), errors[0]
    return errors[0]
