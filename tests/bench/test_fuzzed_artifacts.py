"""Hostile artifacts meet the runtimes: byte and structure mutants never crash a loader or
the CLI, a file on the wrong runtime, inputs of the wrong shape or dtype and a library
error without a message all end as one clear error. Every test uses the tiny exports."""

import json
import subprocess
import sys

import numpy as np
import pytest

from edgeproof.bench.runtimes import open_runtime
from edgeproof.errors import RuntimeFailure
from tests.helpers import ROOT

pytestmark = pytest.mark.slow

FUZZ_CASES = 200
SCRIPTS = ROOT / "scripts" / "reliability"


@pytest.mark.parametrize("fmt", ["tflite-int8", "tflite-fp32", "onnx-fp32", "keras"])
@pytest.mark.parametrize("verify", [True, False], ids=["verified", "raw-loader"])
def test_fuzzed_artifacts_never_crash(tiny_exports, fmt, verify):
    """200 mutants per format (bit flips, truncation, random bytes), loaded and run in a
    child process: no crash (the child would die), no unclean exception. With the
    manifest check every mutant is refused before a native loader sees it."""
    cmd = [sys.executable, str(SCRIPTS / "fuzz_artifacts.py"), str(tiny_exports[fmt]),
           "--cases", str(FUZZ_CASES), "--json"] + ([] if verify else ["--no-verify"])
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"loader crashed (rc {proc.returncode}): {proc.stderr[-2000:]}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert sum(result["outcomes"].values()) == FUZZ_CASES
    assert result["unclean"] == [] and "unclean" not in result["outcomes"]
    if verify:
        assert result["outcomes"].get("refused", 0) >= FUZZ_CASES - 1


@pytest.mark.parametrize("fmt", ["tflite-fp32", "onnx-fp32"])
@pytest.mark.parametrize("through", ["predict", "bench"])
def test_structured_mutants_without_manifest_never_crash_the_cli(tiny_exports, fmt, through):
    """Valid flatbuffers / protobufs with one hostile value each (huge or negative dims,
    out-of-range indices, mismatched buffers), handed over without a manifest: every case a
    one-line error, a failed row or a result; none kills or tracebacks the CLI process.
    CI runs a few per cell; docs/RELIABILITY.md gives the long run."""
    cases = 8
    cmd = [sys.executable, str(SCRIPTS / "fuzz_structured.py"), str(tiny_exports[fmt]),
           "--cases", str(cases), "--seed", "3", "--through", through, "--json"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"CLI process died (rc {proc.returncode}): {proc.stderr[-2000:]}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert sum(result["outcomes"].values()) == cases and len(result["mutations"]) >= 3
    assert result["unclean"] == [] and "unclean" not in result["outcomes"]


def test_wrong_runtime_for_the_file(tiny_exports):
    with pytest.raises(RuntimeFailure, match="not a litert artifact"):
        open_runtime(tiny_exports["onnx-fp32"], "litert").load()


@pytest.mark.parametrize("fmt", ["tflite-int8", "onnx-fp32", "keras"])
def test_wrong_input_names_expected_and_got(tiny_exports, fmt):
    with open_runtime(tiny_exports[fmt]) as rt:
        dtype = np.dtype(rt.manifest.input.dtype)
        with pytest.raises(RuntimeFailure, match=r"\[1, 20, 20, 1\].*\[-1, 16, 16, 1\]"):
            rt.predict(np.zeros((1, 20, 20, 1), dtype))
        with pytest.raises(RuntimeFailure, match=r"\[1, 16, 16, 3\]"):
            rt.predict(np.zeros((1, 16, 16, 3), dtype))
        with pytest.raises(RuntimeFailure, match="dtype float64"):
            rt.predict(np.zeros((1, 16, 16, 1), np.float64))


def test_library_errors_without_a_message_still_give_one_line(tiny_exports, monkeypatch):
    """A native library raising with an empty message (``ValueError()``) used to turn
    ``str(e).splitlines()[0]`` into an IndexError; every site now quotes ``first_line``."""
    from ai_edge_litert import interpreter as litert_interp

    def boom(*a, **k):
        raise ValueError()

    monkeypatch.setattr(litert_interp, "Interpreter", boom)
    with pytest.raises(RuntimeFailure, match="ValueError"):
        open_runtime(tiny_exports["tflite-fp32"]).load()
