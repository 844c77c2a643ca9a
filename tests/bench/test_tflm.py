"""The tflm runtime (TensorFlow Lite Micro, the [micro] extra, installed by CI's [dev]):
the arena it reports is the smallest that works (exactly that arena builds, one byte less
fails cleanly, in a sandbox process); an op TFLM lacks is a failed row naming it; its
rows carry the microcontroller figures and a host-latency label; its predictions agree
with LiteRT's on the same int8 file; without tflite-micro it says how to install it.

Fast tests use hand-built flatbuffers (tests/bench/micro_models.py); the ones on a real
converted model are slow."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgeproof.bench.isolate import run_isolated
from edgeproof.errors import RuntimeFailure
from tests.bench.micro_models import manifest_for, tiny_int8, write_tiny

pytest.importorskip("tflite_micro", reason="tflite-micro (the [micro] extra) not installed")

from edgeproof.bench import tflm_arena  # noqa: E402
from edgeproof.bench.one_artifact import bench_batches  # noqa: E402
from edgeproof.bench.measure import Measurement  # noqa: E402
from edgeproof.bench.settings import BenchSettings, EvalData  # noqa: E402

FAST = Measurement(min_runs=3, min_seconds=0.0, warmup_runs=1, warmup_seconds=0.0)
TFLM = BenchSettings(runtime="tflm", measurement=FAST)


def _builds(data: bytes, arena: int) -> tuple[bool, str | None]:
    """In a sandbox process: does TFLM build with ``arena`` bytes, and if not, why."""
    interp, _, why = tflm_arena.construct(data, arena)
    return interp is not None, why


def _assert_smallest(data: bytes) -> dict:
    m = tflm_arena.measure(data)
    assert m.measured and m.tflm_error is None
    arena, recorded = m.arena_bytes, m.arena_recorded_bytes
    assert recorded == m.arena_head_bytes + m.arena_tail_bytes
    recorded_builds, _ = run_isolated(_builds, data, recorded)
    if recorded_builds:  # the recording allocator's total works: it is the answer or above it
        assert arena <= recorded
    else:  # the planner's temporary memory did not fit in it: the searched minimum is higher
        assert arena > recorded
    assert run_isolated(_builds, data, arena) == (True, None)
    ok, why = run_isolated(_builds, data, arena - 1)  # fails cleanly: no crash, a reason
    assert not ok and why
    assert m.arena_search == {"probes": m.arena_search["probes"],
                                 "one_byte_less_fails": True,
                                 "outputs_match_large_arena": True}
    return m


def test_the_arena_is_the_smallest_that_works_on_a_tiny_model():
    m = _assert_smallest(tiny_int8())
    # For a model this small the recorded total (1344 B) leaves out the planner's scratch:
    # the searched minimum is higher, and both are recorded.
    assert m.arena_bytes > m.arena_recorded_bytes


@pytest.mark.slow
def test_the_arena_of_a_converted_int8_model_is_the_recorded_total(tiny_exports):
    data = tiny_exports["tflite-int8"].read_bytes()
    m = _assert_smallest(data)
    assert m.arena_bytes == m.arena_recorded_bytes  # ordinary models: they agree
    assert m.flash_bytes == len(data) and m.manifest_bytes > 0
    assert set(m.ops) >= {"CONV_2D", "FULLY_CONNECTED"} and all(m.ops.values())


def test_an_op_tflm_lacks_is_a_failed_row_naming_it(tmp_path):
    path = write_tiny(tmp_path, "GELU")
    rows, probs = bench_batches(path, TFLM, report_dir=tmp_path)
    assert rows[0].status == "failed" and probs is None
    assert "GELU" in rows[0].error and "no kernel" in rows[0].error
    assert rows[0].runtime == "tflm"
    m = tflm_arena.measure(path.read_bytes())
    assert m.ops == {"RESHAPE": True, "FULLY_CONNECTED": True, "GELU": False}


def test_a_tflm_row_carries_the_microcontroller_figures(tmp_path):
    path = write_tiny(tmp_path, name="tiny")
    images = np.random.default_rng(0).integers(0, 256, (40, 4, 4, 1), dtype=np.uint8)
    rows, probs = bench_batches(path, TFLM, EvalData(images, np.zeros(40, int)), tmp_path)
    row = rows[0]
    assert row.ok, row.error
    assert row.providers == ["TFLM"] and row.threads == 1
    assert "not microcontroller time" in row.runtime_details["latency"]
    m = row.to_dict()["micro"]
    assert {"arena_bytes", "arena_head_bytes", "arena_tail_bytes", "flash_bytes", "ops",
            "macs"} <= set(m)
    assert m["flash_bytes"] == path.stat().st_size and m["macs"] == 160
    assert row.runtime_details["arena_size"] == m["arena_bytes"]  # it ran in that arena
    assert probs.shape == (40, 10) and np.allclose(probs.sum(1), 1, atol=0.05)


def _litert_and_tflm(data: bytes, x: np.ndarray):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    lite = Interpreter(model_content=data,
                       experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    lite.allocate_tensors()
    micro, _, _ = tflm_arena.construct(data, 1 << 20)
    a, b = [], []
    for row in x:
        lite.set_tensor(lite.get_input_details()[0]["index"], row[None])
        lite.invoke()
        a.append(lite.get_tensor(lite.get_output_details()[0]["index"]))
        micro.set_input(row[None], 0)
        micro.invoke()
        b.append(micro.get_output(0))
    return np.concatenate(a).astype(int), np.concatenate(b).astype(int)


def test_tflm_agrees_with_litert_on_the_same_int8_file():
    """Same file, same int8 inputs. Outputs need not be bit-identical: TFLM runs its own
    reference kernels, LiteRT its builtin (or, by CPU, other optimized) ones, and their int8
    requantization rounding can differ by 1-2 LSB. So what holds on any CPU: outputs within
    2 LSB, and the same top-1 wherever LiteRT's lead over its runner-up is more than twice
    that (a 2 LSB move of each cannot flip it). Near-ties (about 6% of these random inputs,
    exact ties included) may go either way, so agreement is only bounded below."""
    data = tiny_int8()
    x = np.random.default_rng(1).integers(-128, 128, (200, 4, 4, 1), dtype=np.int8)
    lite, micro = _litert_and_tflm(data, x)
    same = lite.argmax(1) == micro.argmax(1)
    top2 = np.sort(lite, 1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 2 * 2
    print(f"top-1 agreement {same.mean():.3f}, max |diff| {np.abs(lite - micro).max()} LSB, "
          f"identical outputs {(lite == micro).all(1).mean():.3f}, clear leads {clear.mean():.3f}")
    assert np.abs(lite - micro).max() <= 2
    assert clear.mean() >= 0.9 and same[clear].all()
    assert same.mean() >= 0.9


@pytest.mark.slow
def test_tflm_agrees_with_litert_on_a_converted_model(tiny_exports, tiny_dataset):
    """The tiny trained small_cnn's int8 file on the tiny test split, through the runtimes
    (the same preprocessing): top-1 agreement, not bit-identity, is the contract."""
    from edgeproof.bench.runtimes import open_runtime

    path, images = tiny_exports["tflite-int8"], tiny_dataset.x_test[:200]
    with open_runtime(path, "litert", xnnpack=False) as lite, open_runtime(path, "tflm") as micro:
        a, b = lite.predict_images(images), micro.predict_images(images)
    agreement = float((a.argmax(1) == b.argmax(1)).mean())
    print(f"tflm vs litert on {len(images)} images: top-1 agreement {agreement:.4f}, "
          f"max |dp| {np.abs(a - b).max():.4f}")
    assert agreement >= 0.99


def test_without_tflite_micro_the_error_names_the_extra(tmp_path, monkeypatch):
    import sys

    from edgeproof.bench.runtimes import open_runtime

    monkeypatch.setitem(sys.modules, "tflite_micro", None)  # import fails as if not installed
    with pytest.raises(RuntimeFailure, match=r'pip install -e "\.\[micro\]"'):
        tflm_arena.require()
    path = write_tiny(tmp_path, name="tiny")
    with pytest.raises(RuntimeFailure, match=r'tflite-micro, which is not installed') as e:
        open_runtime(path, "tflm").load()
    assert "\n" not in str(e.value)


def test_tflm_is_never_chosen_by_suffix_but_runs_tflite_when_asked(tmp_path):
    from edgeproof.bench.runtimes import open_runtime, runtime_for

    assert runtime_for("m.tflite") == "litert"
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"\x08\x07")
    with pytest.raises(RuntimeFailure, match=r"not a tflm artifact \(expected \.tflite\)"):
        open_runtime(onnx, "tflm", manifest=manifest_for(tiny_int8())).load()


def test_a_measured_arena_goes_into_the_sidecar_manifest_only(tmp_path):
    from edgeproof.bench.footprint import memory_of, record_in_manifest
    from edgeproof.bench.verify import verify_artifact
    from edgeproof.manifest import Manifest, find_manifest, sha256_file

    path = write_tiny(tmp_path, name="tiny")
    before = sha256_file(path)
    side = record_in_manifest(path, memory_of(path).micro)
    assert sha256_file(path) == before  # the artifact's bytes are untouched
    doc = json.loads(side.read_text())
    assert doc["sha256"] == before and doc["micro"]["arena_bytes"] > 0
    assert set(doc["micro"]) >= {"arena_bytes", "flash_bytes", "ops"}
    m = find_manifest(path)
    assert m.micro == doc["micro"]
    verify_artifact(path, m)  # still matches the file
    assert Manifest.from_dict(m.to_dict()) == m
    plain = manifest_for(tiny_int8())
    assert "micro" not in plain.to_dict()  # manifests without it stay as they were
    with pytest.raises(RuntimeFailure, match="only a measured arena"):
        record_in_manifest(path, memory_of(path, measure=False).micro)


def _segfault(data: bytes) -> dict:
    """Stands in for a model that crashes TFLM's native code (in the sandbox process)."""
    import os
    import signal

    os.kill(os.getpid(), signal.SIGSEGV)


def test_a_crash_in_tflm_is_a_failed_row_not_a_dead_benchmark(tmp_path, monkeypatch):
    path = write_tiny(tmp_path, name="crashy")
    monkeypatch.setattr(tflm_arena, "measure_here", _segfault)
    monkeypatch.setattr(tflm_arena, "_CACHE", {})
    rows, _ = bench_batches(path, TFLM, report_dir=tmp_path)
    assert rows[0].status == "failed"
    assert "TFLM crashed building this model in a sandbox process" in rows[0].error
