"""Per-channel mean / std (torchvision's Normalize) reach every runtime: a tiny tf-keras
model trained on normalised RGB pixels, exported with that preprocessing, answers on
TFLite, ONNX Runtime, TFLM and the device agent like the Keras model fed the same
normalised pixels (computed here by hand, not by edgeproof), and answers measurably
otherwise when the normalisation is dropped: a runtime ignoring it would fail. Slow: it
trains and converts."""

from __future__ import annotations

import numpy as np
import pytest

from edgeproof.bench.settings import BenchSettings, EvalData

pytestmark = pytest.mark.slow

MEAN, STD = [0.2, 0.4, 0.6], [0.5, 0.25, 0.4]  # different per channel: a scalar would not do
FORMATS = ("tflite-fp32", "onnx-fp32", "tflite-int8")
CHECK = BenchSettings(latency=False)
DROPPED = BenchSettings(latency=False, preprocess={"mean": None, "std": None})


def _by_hand(images: np.ndarray) -> np.ndarray:
    return ((images.astype(np.float64) / 255.0 - MEAN) / STD).astype(np.float32)


@pytest.fixture(scope="module")
def normalised(tiny_dataset, tmp_path_factory):
    """(dataset, Keras model, {format: path}, the model's probabilities on the test split):
    digits as RGB with a different tint per channel, the model trained on _by_hand pixels."""
    import dataclasses

    from edgeproof.export.artifact import write_artifact
    from edgeproof.export.context import calibration_context
    from edgeproof.export.formats import export_model
    from edgeproof.tfcompat import keras, set_seed
    from edgeproof.toolkit.models import create_model

    tint = np.array([1.0, 0.8, 0.6], np.float32)  # the channels differ, as in photos

    def rgb(x):
        return np.clip(np.repeat(x, 3, axis=-1) * tint + 0.5, 0, 255).astype(np.uint8)

    pre = dataclasses.replace(tiny_dataset.preprocessing, color="rgb", mean=MEAN, std=STD)
    ds = dataclasses.replace(tiny_dataset, preprocessing=pre, **{
        k: rgb(getattr(tiny_dataset, k)) for k in ("x_train", "x_val", "x_test")})
    set_seed(0)
    model = create_model("small_cnn", ds.num_classes, ds.input_shape)
    model.compile(keras().optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    model.fit(_by_hand(ds.x_train), ds.y_train, epochs=4, batch_size=64, verbose=0)
    ctx = calibration_context(ds, 100, 0, {"model_name": "small_cnn"})
    out = tmp_path_factory.mktemp("per-channel")
    paths = {f: write_artifact(export_model(model, f, ctx), out, f"norm-{f}") for f in FORMATS}
    return ds, model, paths, model.predict(_by_hand(ds.x_test), verbose=0)


def _data(ds, reference) -> EvalData:
    return EvalData(ds.x_test, ds.y_test, reference)


def test_the_manifests_carry_the_normalisation(normalised):
    from edgeproof.embedded import read_embedded_manifest
    from edgeproof.manifest import find_manifest

    _, _, paths, _ = normalised
    for fmt, path in paths.items():
        pre = find_manifest(path).preprocessing
        assert (pre.mean, pre.std, pre.color) == (MEAN, STD, "rgb"), fmt
        embedded = read_embedded_manifest(path)
        if embedded is not None:  # the copy inside the file says the same
            assert embedded["preprocessing"]["mean"] == MEAN, fmt


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_runtime_answers_like_the_model_on_normalised_pixels(fmt, normalised):
    from edgeproof.bench.one_artifact import bench_artifact

    ds, _, paths, reference = normalised
    assert (reference.argmax(1) == ds.y_test).mean() > 0.6  # the model learnt something
    row, probs = bench_artifact(paths[fmt], CHECK, _data(ds, reference))
    assert row.status == "ok", row.error
    if fmt.endswith("int8"):
        assert row.top1_agreement >= 0.95 and row.accuracy_delta >= -0.03, row
    else:
        assert row.max_abs_diff <= 1e-4, row
    dropped, _ = bench_artifact(paths[fmt], DROPPED, _data(ds, reference))
    assert dropped.status == "ok", dropped.error
    # without mean/std the answers move far beyond any tolerance above
    assert dropped.max_abs_diff > 0.1 and dropped.top1_agreement < row.top1_agreement - 0.1, \
        dropped


def test_tflm_honours_the_normalisation(normalised):
    pytest.importorskip("tflite_micro", reason="the tflm runtime needs the [micro] extra")
    from edgeproof.bench.one_artifact import bench_artifact

    ds, _, paths, reference = normalised
    row, _ = bench_artifact(paths["tflite-int8"], CHECK.replace(runtime="tflm"),
                            _data(ds, reference))
    assert row.status == "ok" and row.runtime == "tflm", row.error
    assert row.top1_agreement >= 0.95, row
    dropped, _ = bench_artifact(paths["tflite-int8"], DROPPED.replace(runtime="tflm"),
                                _data(ds, reference))
    assert dropped.top1_agreement < row.top1_agreement - 0.1, dropped


def test_the_device_agent_is_sent_normalised_inputs(normalised):
    """bench --on ssh://: the host prepares what the agent runs (the agent has no
    preprocessing of its own); the staged evaluation tensor is the normalised one."""
    import io

    from edgeproof.bench.remote import _stage

    ds, _, paths, reference = normalised
    files, _ = _stage([paths["onnx-fp32"]], CHECK, _data(ds, reference), repeat=1)
    sent = np.load(io.BytesIO(files["eval-0.npy"]))
    np.testing.assert_allclose(sent, _by_hand(ds.x_test), atol=1e-5)

