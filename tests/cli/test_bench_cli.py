"""`edgeproof bench` end to end, as a subprocess: report + plots, the gate's exit codes, the
refusal of a GPU that is not there, and benchmarking with TensorFlow unimportable. Every
test runs the tiny exports: slow."""

from __future__ import annotations

import json
import os
import shutil
import textwrap

import pytest

from tests.helpers import run_cli

pytestmark = pytest.mark.slow

FAST = ["--min-runs", "3", "--min-seconds", "0", "--warmup-runs", "1", "--warmup-seconds", "0"]
NO_TF = textwrap.dedent("""
    import sys

    class _NoTensorFlow:
        BLOCKED = ("tensorflow", "tf_keras", "keras")

        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in self.BLOCKED:
                raise ImportError(f"{name} is blocked: this test runs without TensorFlow")
            return None

    sys.meta_path.insert(0, _NoTensorFlow())
""")


def _gpu() -> bool:
    from edgeproof.bench.env import gpu_info

    return gpu_info() is not None


@pytest.fixture
def no_tf_env(tmp_path):
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(NO_TF)
    return {"PYTHONPATH": str(shim)}


def test_bench_without_tensorflow(tiny_exports, tmp_path, no_tf_env):
    probe = run_cli("--version", env=dict(no_tf_env))
    assert probe.returncode == 0
    import subprocess
    import sys

    blocked = subprocess.run([sys.executable, "-c", "import tensorflow"], env={
        **os.environ, **no_tf_env}, capture_output=True, text=True)
    assert blocked.returncode != 0 and "blocked" in blocked.stderr  # the shim works
    out = tmp_path / "report"
    r = run_cli("bench", tiny_exports["tflite-fp32"], tiny_exports["onnx-fp32"],
                "--batch-sizes", "1,2", "--out", out, "--quiet", *FAST, env=no_tf_env)
    assert r.returncode == 0, r.stderr + r.stdout
    rep = json.loads((out / "report.json").read_text())
    assert [(x["runtime"], x["batch_size"]) for x in rep["results"]] == [
        ("litert", 1), ("litert", 2), ("onnxruntime", 1), ("onnxruntime", 2)]
    assert rep["env"]["tensorflow"]  # the version from metadata, without importing it


def test_bench_writes_report_markdown_and_plots(tiny_exports, tmp_path):
    out = tmp_path / "b"
    r = run_cli("bench", tiny_exports["tflite-int8"], tiny_exports["onnx-fp32"], "--batch-sizes",
                "1,4", "--bare-loop", "--runtime-option", "profile=true", "--out", out, "--json", tmp_path / "b.json",
                *FAST)
    assert r.returncode == 0, r.stderr + r.stdout
    rep = json.loads((out / "report.json").read_text())
    assert set(rep) >= {"edgeproof_version", "dataset", "model", "env", "results"}
    assert set(rep["env"]) >= {"python", "tensorflow", "onnxruntime", "ai_edge_litert", "cpu",
                               "gpu", "isa", "cores"}
    assert "threads" not in rep["env"]  # threads are per row: each runtime's own, auto-tuned
    assert all(isinstance(r["threads"], int) and r["thread_sweep"]["p50_ms"]
               and r["threads_default"] is (r["thread_sweep"]["threads"] is None)
               for r in rep["results"])
    row = rep["results"][0]
    for key in ("format", "runtime", "device", "providers", "artifact", "size_bytes", "accuracy",
                "accuracy_delta", "top1_agreement", "max_abs_diff", "batch_size", "threads",
                "latency_ms", "status", "error", "bare_loop", "memory_mb", "load_ms"):
        assert key in row
    assert row["providers"] == ["XNNPACK", "CPU"]
    assert rep["results"][2]["runtime_details"]["node_providers"]
    for name in ("latency.png", "pareto.png", "throughput.png"):
        assert (out / name).stat().st_size > 1000
    md = (out / "report.md").read_text()
    assert "Bare-loop check" in md and "What ran" in md
    assert json.loads((tmp_path / "b.json").read_text())["results"]


def _broken_copy(tiny_exports, tmp_path):
    """The int8 TFLite file whose manifest forgets the 1/255 scaling (the input quantization
    then saturates): must fail the gate."""
    src = tiny_exports["tflite-int8"]
    dst = tmp_path / "broken.tflite"
    shutil.copy(src, dst)
    m = json.loads(src.with_name(src.name + ".json").read_text())
    m["preprocessing"]["scale"] = 1.0
    dst.with_name(dst.name + ".json").write_text(json.dumps(m))
    return dst


def test_gate_exit_codes(tiny_exports, tmp_path):
    """0 passes, 1 fails, 4 undecided. The digits test split's 360 images prove 99%
    agreement at 95% for an export that agrees on every one of them (299 would do); 200
    images cannot, however well it agrees: undecided, exit 4, not a pass."""
    ref, good = tiny_exports["onnx-fp32"], tiny_exports["tflite-fp32"]
    common = ["--dataset", "digits", "--reference", ref, "--quiet", *FAST]
    limits = ["--min-agreement", "0.99", "--max-accuracy-drop", "2"]
    ok = run_cli("bench", good, *common, *limits, "--out", tmp_path / "ok")
    assert ok.returncode == 0, ok.stderr + ok.stdout
    rep = json.loads((tmp_path / "ok" / "report.json").read_text())
    assert rep["gate"]["passed"] is True
    verdict = rep["results"][0]["verdict"]
    assert verdict["answer"] == "passes" and verdict["agreement_low"] >= 0.99
    assert verdict["drop_low"] <= 0 <= verdict["drop_high"] <= 0.02  # an interval in the JSON
    few = run_cli("bench", good, *common, *limits, "--limit", "200", "--out", tmp_path / "few")
    assert few.returncode == 4, few.stderr + few.stdout
    assert "undecided" in few.stderr and "Traceback" not in few.stderr
    assert json.loads((tmp_path / "few" / "report.json").read_text())["gate"]["passed"] is False
    point = run_cli("bench", good, *common, *limits, "--limit", "200", "--gate", "point",
                    "--json", tmp_path / "point.json")
    assert point.returncode == 0, point.stderr + point.stdout  # today's behaviour, on request
    common += ["--limit", "200"]
    bad = run_cli("bench", _broken_copy(tiny_exports, tmp_path), *common, "--min-agreement",
                  "0.99", "--out", tmp_path / "bad")
    assert bad.returncode == 1
    assert "gate failed" in bad.stderr and "Traceback" not in bad.stderr
    assert "top-1 agreement" in bad.stderr  # the message names the rule that failed
    rep = json.loads((tmp_path / "bad" / "report.json").read_text())
    assert rep["gate"]["passed"] is False and rep["results"][0]["top1_agreement"] < 0.99
    assert rep["gate"]["max_accuracy_drop"] is None and rep["gate"]["enforced"] is True
    usage = run_cli("bench", good, "--min-agreement", "0.9", "--quiet")
    assert usage.returncode == 2 and "need --dataset and --reference" in usage.stderr


def test_cuda_refused_without_gpu_unless_fallback(tiny_exports, tmp_path):
    if _gpu():
        pytest.skip("this machine has a GPU")
    onnx = tiny_exports["onnx-fp32"]
    r = run_cli("bench", onnx, "--device", "cuda", "--quiet", *FAST)
    assert r.returncode != 0 and "CUDAExecutionProvider" in r.stdout
    assert "Traceback" not in r.stderr
    r = run_cli("bench", onnx, "--device", "cuda", "--allow-fallback", "--quiet",
                "--json", tmp_path / "f.json", *FAST)
    assert r.returncode == 0, r.stderr + r.stdout
    row = json.loads((tmp_path / "f.json").read_text())["results"][0]
    assert (row["device"], row["requested_device"], row["fallback"]) == ("cpu", "cuda", True)
    assert row["providers"] == ["CPUExecutionProvider"]
