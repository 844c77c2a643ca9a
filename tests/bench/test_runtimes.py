"""Each runtime predicts like the Keras reference; each says what ran; asking for a GPU
that is not there is refused unless allow_fallback (and then the row says CPU); a bench
row carries what was measured. The GPU paths run on fakes where this machine has none.
The tests on the tiny exports are slow."""

from __future__ import annotations

import os

import numpy as np
import pytest

from edgeproof.bench import one_artifact
from edgeproof.bench.one_artifact import bench_batches
from edgeproof.bench.measure import Measurement
from edgeproof.bench.row import BenchRow
from edgeproof.bench.runtimes import open_runtime, runtime_names
from edgeproof.bench.runtimes.base import Runtime
from edgeproof.bench.settings import BenchSettings, EvalData
from edgeproof.errors import RuntimeFailure

FAST = Measurement(min_runs=3, min_seconds=0.0, warmup_runs=1, warmup_seconds=0.0)
# Conformance cases per registered runtime: (export format, runtime options).
RUNTIME_CASES = {
    "keras": [("keras", {})],
    "litert": [("tflite-fp32", {"xnnpack": True}), ("tflite-fp32", {"xnnpack": False}),
               ("tflite-int8", {})],
    "onnxruntime": [("onnx-fp32", {"graph_optimization": "all"}),
                    ("onnx-fp32", {"graph_optimization": "disable", "profile": True})],
    "tflm": [("tflite-int8", {})],  # the microcontroller interpreter, on this host
    "openvino": [("onnx-fp32", {}), ("onnx-fp32", {"precision": "f32", "streams": 2})],
}
# Runtimes of an optional extra: skipped without it.
NEEDS = {"tflm": "tflite_micro", "openvino": "openvino"}
CASES = [(fmt, runtime, kw) for runtime, cases in RUNTIME_CASES.items() for fmt, kw in cases]
# Runtimes whose artifacts are not exports of the tiny Keras model: their conformance test
# (parity with the framework's own answers) lives in the named test.
ELSEWHERE = {"pytorch": "tests/export/test_torch_exports.py::test_every_runtime_honours_per_channel_normalisation",
             "executorch": "tests/export/test_executorch.py::test_executorch_and_litert_torch_files_agree_with_pytorch"}


def test_every_registered_runtime_has_a_conformance_case():
    from tests.helpers import ROOT

    assert sorted({*RUNTIME_CASES, *ELSEWHERE}) == runtime_names(), \
        "add a RUNTIME_CASES (or ELSEWHERE) row for the new runtime"
    for where in ELSEWHERE.values():
        path, _, name = where.partition("::")
        assert f"def {name}(" in (ROOT / path).read_text(), where


def _has_gpu() -> bool:
    from edgeproof.bench.env import gpu_info

    return gpu_info() is not None


@pytest.mark.slow
@pytest.mark.parametrize("fmt,runtime,kw", CASES, ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in CASES])
def test_predict_parity_with_the_reference(tiny_exports, tiny_dataset, tiny_reference, fmt,
                                           runtime, kw):
    if runtime in NEEDS:
        pytest.importorskip(NEEDS[runtime], reason=f"{runtime} needs {NEEDS[runtime]}")
    with open_runtime(tiny_exports[fmt], runtime, threads=2, **kw) as rt:
        probs = rt.predict_images(tiny_dataset.x_test, batch_size=16)
        info = rt.info()
    agree = (probs.argmax(1) == tiny_reference.argmax(1)).mean()
    assert agree >= (0.95 if fmt.endswith("int8") else 0.999)
    if not fmt.endswith("int8"):
        assert np.abs(probs - tiny_reference).max() < 1e-3
    assert info["device"] == "cpu" and info["fallback"] is False and info["providers"]


@pytest.mark.slow
def test_litert_proves_xnnpack_was_applied(tiny_exports):
    for xnnpack, want in ((True, ["XNNPACK", "CPU"]), (False, ["CPU"])):
        with open_runtime(tiny_exports["tflite-fp32"], "litert", xnnpack=xnnpack) as rt:
            d = rt.info()["runtime_details"]
            assert rt.providers == want
            assert d["delegate_nodes"] == (1 if xnnpack else 0) and d["ops"] > 0


@pytest.mark.slow
def test_onnxruntime_reports_node_assignment(tiny_exports):
    with open_runtime(tiny_exports["onnx-fp32"], "onnxruntime", profile=True) as rt:
        nodes = rt.info()["runtime_details"]["node_providers"]
    assert nodes.get("CPUExecutionProvider", 0) > 0


@pytest.mark.slow
@pytest.mark.parametrize("fmt,runtime,device", [("onnx-fp32", "onnxruntime", "cuda"),
                                                ("onnx-fp32", "onnxruntime", "tensorrt"),
                                                ("tflite-fp32", "litert", "gpu"),
                                                ("keras", "keras", "gpu")])
def test_gpu_without_gpu_is_refused_unless_fallback(tiny_exports, fmt, runtime, device):
    if _has_gpu():
        pytest.skip("this machine has a GPU: the refusal path is not reachable")
    with pytest.raises(RuntimeFailure, match="--allow-fallback"):
        open_runtime(tiny_exports[fmt], runtime, device=device).load()
    with open_runtime(tiny_exports[fmt], runtime, device=device, allow_fallback=True) as rt:
        info = rt.info()
    assert info["device"] == "cpu" and info["requested_device"] == device and info["fallback"]
    assert not any("CUDA" in p or "Tensorrt" in p or "GPU" in p for p in info["providers"])


@pytest.fixture
def recorded(monkeypatch):
    """What bench_batches measured, as it measured it: each runtime's load time and the
    statistics of each timed preprocessing pass."""
    seen = {"load_seconds": [], "prepare": []}
    real_load, real_measure = Runtime.load, one_artifact.measure

    def load(self):
        loaded_before = self._loaded
        out = real_load(self)
        if not loaded_before:  # a second call returns at once: no new load
            seen["load_seconds"].append(self.load_seconds)
        return out

    def measure(fn, *, batch_size=1, settings=Measurement()):
        stats = real_measure(fn, batch_size=batch_size, settings=settings)
        if settings is one_artifact._PREPARE:
            seen["prepare"].append(stats)
        return stats

    monkeypatch.setattr(Runtime, "load", load)
    monkeypatch.setattr(one_artifact, "measure", measure)
    return seen


@pytest.mark.slow
def test_bench_rows_per_batch_size_with_parity(tiny_exports, tiny_dataset, tiny_reference,
                                               recorded):
    settings = BenchSettings(threads="2", batch_sizes=(1, 4), measurement=FAST, bare_loop=True)
    data = EvalData(tiny_dataset.x_test, tiny_dataset.y_test, tiny_reference)
    rows, probs = bench_batches(tiny_exports["tflite-int8"], settings, data)
    assert all(isinstance(r, BenchRow) for r in rows)
    assert [r.batch_size for r in rows] == [1, 4] and probs.shape == tiny_reference.shape
    (load_seconds,) = recorded["load_seconds"]  # loaded once for every batch size
    assert [round(s.p50, 4) for s in recorded["prepare"]] == [r.preprocess_ms for r in rows]
    assert [s.batch_size for s in recorded["prepare"]] == [1, 4]
    for r in rows:
        assert r.status == "ok", r.error
        assert r.load_ms == round(load_seconds * 1e3, 2) and isinstance(r.load_ms, float)
        assert set(r.latency_ms) >= {"p50", "p90", "p99", "mean", "std", "min", "n", "first_ms"}
        assert r.latency_ms["n"] >= 3 and r.threads == 2 and r.threads_default is False
        assert r.throughput_ips == pytest.approx(r.batch_size * 1e3 / r.latency_ms["p50"],
                                                 rel=0.01)
        bare = r.bare_loop
        assert bare["pairs"] >= 10 and bare["bare"] == "interpreter.invoke()"
        assert bare["ratio"] == pytest.approx(bare["edgeproof_p50_ms"] / bare["bare_p50_ms"],
                                              rel=0.02)
        assert len(r.per_class_accuracy_delta) == tiny_dataset.num_classes
        assert 0 <= r.top1_agreement <= 1 and r.kl_divergence >= 0
        d = r.to_dict()
        assert d["threads_default"] is False and d["bare_loop"] == bare and "micro" not in d
    assert rows[0].accuracy == rows[1].accuracy  # one accuracy pass, shared by the batch sizes
    from edgeproof.bench import rss

    if rss.rss_mb() is not None:  # Linux: /proc readings exist, so every row carries them
        for r in rows:
            mem = r.memory_mb
            assert mem["rss_before_load"] > 0, mem
            assert mem["load_delta"] is not None and mem["peak_delta"] is not None, mem


@pytest.mark.slow
def test_fallback_row_says_what_ran(tiny_exports):
    if _has_gpu():
        pytest.skip("this machine has a GPU")
    rows, _ = bench_batches(tiny_exports["onnx-fp32"], BenchSettings(device="cuda",
                                                                     measurement=FAST))
    assert rows[0].status == "failed" and "CUDAExecutionProvider" in rows[0].error
    rows, _ = bench_batches(tiny_exports["onnx-fp32"],
                            BenchSettings(device="cuda", allow_fallback=True, measurement=FAST))
    r = rows[0]
    assert r.status == "ok" and r.device == "cpu" and r.requested_device == "cuda"
    assert r.fallback is True and r.providers == ["CPUExecutionProvider"]


@pytest.mark.slow
def test_isolated_bench_matches_in_process_and_survives_a_dead_worker(tiny_exports, tiny_dataset,
                                                                      tiny_reference, monkeypatch):
    """bench_isolated runs the same measurement in a fresh process; a worker that dies
    (as a native crash would) becomes a failed row, not a dead benchmark."""
    from edgeproof.bench import isolate
    from edgeproof.bench.one_artifact import bench_isolated

    settings = BenchSettings(measurement=Measurement(min_runs=5, min_seconds=0.01))
    data = EvalData(tiny_dataset.x_test, tiny_dataset.y_test, tiny_reference)
    alone, probs_alone = bench_isolated(tiny_exports["tflite-int8"], settings, data)
    here, probs_here = bench_batches(tiny_exports["tflite-int8"], settings, data)
    assert alone[0].status == "ok" and alone[0].latency_ms["n"] >= 5
    assert alone[0].top1_agreement == here[0].top1_agreement
    np.testing.assert_array_equal(probs_alone, probs_here)

    real = isolate.run_isolated
    monkeypatch.setattr(one_artifact, "run_isolated", lambda *a, **k: real(os._exit, 3))
    dead, probs = bench_isolated(tiny_exports["onnx-fp32"], settings, data)
    assert dead[0].status == "failed" and "worker process died" in dead[0].error
    assert probs is None


@pytest.mark.slow
def test_runtime_options_are_validated_against_the_class(tiny_exports):
    from edgeproof.errors import UsageError

    with pytest.raises(UsageError, match="does not take option.*xnnpak.*Valid options: .*xnnpack"):
        open_runtime(tiny_exports["tflite-fp32"], xnnpak=False)
    with pytest.raises(UsageError, match="must be true or false"):
        open_runtime(tiny_exports["tflite-fp32"], xnnpack="maybe")
    with pytest.raises(UsageError, match="Did you mean 'extended'"):
        open_runtime(tiny_exports["onnx-fp32"], graph_optimization="extnded")
    with open_runtime(tiny_exports["tflite-fp32"], xnnpack="false") as rt:  # CLI text parses
        assert rt.info()["runtime_details"]["options"]["xnnpack"] is False
        assert rt.providers == ["CPU"]


def test_suffix_map_and_headers_come_from_the_classes(tmp_path):
    from edgeproof.bench.runtimes import RUNTIMES, runtime_for

    for cls in RUNTIMES.rows():
        for suffix in cls.suffixes:
            assert runtime_for(f"m{suffix}") == cls.name
            bad = tmp_path / f"bad{suffix}"
            bad.write_bytes(b"\x00" * 64)  # no format starts with zeros
            with pytest.raises(RuntimeFailure, match="not a valid"):
                cls.check_header(bad)
    with pytest.raises(RuntimeFailure, match="Cannot tell which runtime"):
        runtime_for("model.xyz")


# -- GPU labelling, with fakes (this machine has no GPU) ------------------------------------
class _FakeSession:
    """An InferenceSession on a box where TensorRT cannot be created but CUDA can."""

    made: list = []

    def __init__(self, model, options, providers):
        _FakeSession.made.append((providers, options.enable_profiling))
        self._providers = [p for p in providers if p != "TensorrtExecutionProvider"]
        self._profile = options.profile_file_prefix if options.enable_profiling else None

    def get_providers(self):
        return list(self._providers)

    def get_inputs(self):
        class Spec:
            name, shape, type = "input", ["N", 16, 16, 1], "tensor(float)"
        return [Spec()]

    def run(self, outputs, feed):
        return [np.full((len(next(iter(feed.values()))), 10), 0.1, np.float32)]

    def end_profiling(self):
        import json

        path = f"{self._profile}.json"
        events = [{"cat": "Node", "name": f"n{i}_kernel_time", "args": {"provider": p}}
                  for i, p in enumerate(["CUDAExecutionProvider"] * 3)]
        with open(path, "w") as fh:
            json.dump(events, fh)
        return path


@pytest.fixture
def fake_gpu_ort(monkeypatch):
    import onnxruntime

    _FakeSession.made = []
    monkeypatch.setattr(onnxruntime, "InferenceSession", _FakeSession)
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: [
        "TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(onnxruntime, "preload_dlls", lambda: None, raising=False)
    return _FakeSession


@pytest.mark.slow
def test_tensorrt_request_that_ran_on_cuda_says_cuda(tiny_exports, fake_gpu_ort):
    onnx = tiny_exports["onnx-fp32"]
    with pytest.raises(RuntimeFailure, match="TensorrtExecutionProvider.*accept cuda"):
        open_runtime(onnx, device="tensorrt").load()
    with open_runtime(onnx, device="tensorrt", allow_fallback=True) as rt:
        info = rt.info()
    assert (info["device"], info["requested_device"], info["fallback"]) == \
        ("cuda", "tensorrt", True)
    assert info["providers"] == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    with open_runtime(onnx, device="cuda") as rt:  # asked for CUDA, got CUDA: no fallback
        assert (rt.info()["device"], rt.info()["fallback"]) == ("cuda", False)


@pytest.mark.slow
def test_profile_uses_the_one_session_outside_the_timed_load(tiny_exports, fake_gpu_ort):
    with open_runtime(tiny_exports["onnx-fp32"], device="cuda", profile=True) as rt:
        nodes = rt.info()["runtime_details"]["node_providers"]
    assert nodes == {"CUDAExecutionProvider": 3}
    assert len(fake_gpu_ort.made) == 1 and fake_gpu_ort.made[0][1] is True


@pytest.mark.slow
def test_keras_model_is_loaded_inside_its_device_scope(tiny_exports, tiny_model, monkeypatch):
    from tensorflow.python.eager import context

    from edgeproof.bench.runtimes import keras as keras_runtime

    seen = []

    def loader(path, safe_mode=True):
        seen.append(context.context().device_name)
        return tiny_model

    monkeypatch.setattr(keras_runtime, "load_keras_model", loader)
    with open_runtime(tiny_exports["keras"]) as rt:
        assert rt.info()["runtime_details"]["tf_device"] == "/CPU:0"
    assert seen and seen[0].endswith("CPU:0"), seen
