"""`edgeproof triage` names the layer that loses the answers: a tiny seeded tf-keras CNN
whose middle conv is given a huge outlier channel (scaled by 1000, the next conv divided
by 1000, so the float function is unchanged) is exported to tflite-int8 and onnx-int8
without rewrites; triage finds the first tensor that diverges (the conv reading the
outlier channel) and traces the cause back to the planted layer. With the default
rewrites, cross-layer equalization evens the channels out and triage finds nothing."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from tests.helpers import ok, one_line_error, run_cli

pytestmark = pytest.mark.slow

PLANTED, DOWNSTREAM, CHANNEL = "conv_b", "conv_c", 3


def _planted_model(ds):
    """Rescaling, three convs, GAP, softmax; conv_b's channel 3 carries x1000."""
    from edgeproof.tfcompat import keras, set_seed

    k, L = keras(), keras().layers
    set_seed(0)
    m = k.Sequential([L.Input(ds.input_shape), L.Rescaling(1 / 255.0, name="rescale"),
                      L.Conv2D(8, 3, padding="same", activation="relu", name="conv_a"),
                      L.Conv2D(16, 3, padding="same", activation="relu", name=PLANTED),
                      L.MaxPooling2D(name="pool"),
                      L.Conv2D(16, 3, padding="same", activation="relu", name=DOWNSTREAM),
                      L.GlobalAveragePooling2D(name="gap"),
                      L.Dense(ds.num_classes, activation="softmax", name="head")])
    m.compile(k.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    m.fit(ds.x_train.astype(np.float32), ds.y_train, epochs=15, batch_size=32, verbose=0)
    x = ds.x_val.astype(np.float32)
    before = m.predict(x, verbose=0)
    wb, bb = m.get_layer(PLANTED).get_weights()
    wb[..., CHANNEL] *= 1000
    bb[CHANNEL] *= 1000
    m.get_layer(PLANTED).set_weights([wb, bb])
    wc, bc = m.get_layer(DOWNSTREAM).get_weights()
    wc[:, :, CHANNEL, :] /= 1000  # ReLU and max pooling commute with a positive scale
    m.get_layer(DOWNSTREAM).set_weights([wc, bc])
    assert np.abs(m.predict(x, verbose=0) - before).max() < 1e-4  # the float model is unchanged
    assert (before.argmax(1) == ds.y_val).mean() > 0.5  # it learned something
    return m


@pytest.fixture(scope="module")
def planted(tiny_dataset, tmp_path_factory):
    """The planted model's file and its int8 exports, without and with the rewrites."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    root = tmp_path_factory.mktemp("triage")
    path = root / "planted.keras"
    _planted_model(tiny_dataset).save(path)
    for folder, extra in (("none", ["--option", "rewrites=none"]), ("default", [])):
        ok(run_cli("export", path, "--format", "tflite-int8,onnx-int8", "--calib", "digits",
                   "--out", root / folder, "--quiet", *extra))
    return root


def _triage(planted, folder: str, artifact: str) -> tuple[dict, str]:
    out = planted / f"{folder}-{artifact}.json"
    proc = ok(run_cli("triage", planted / "planted.keras",
                      planted / folder / f"planted-{artifact}", "--dataset", "digits",
                      "--json", out))
    return json.loads(out.read_text()), proc.stdout


@pytest.mark.parametrize("artifact", ["tflite-int8.tflite", "onnx-int8.onnx"])
def test_triage_names_the_planted_outlier_layer(planted, artifact):
    d, stdout = _triage(planted, "none", artifact)
    assert d["layer"] == DOWNSTREAM, d["first_diverging_tensor"]  # where answers go
    assert DOWNSTREAM in d["first_diverging_tensor"]
    first = next(t for t in d["tensors"] if t["name"] == d["first_diverging_tensor"])
    assert first["sqnr_db"] < d["threshold_db"]
    earlier = [t for t in d["tensors"] if t["index"] < first["index"]]
    assert earlier and all(t["sqnr_db"] >= d["threshold_db"] for t in earlier)
    cause = d["causes"][0]
    assert cause["kind"] == "outlier_range" and cause["layer"] == PLANTED, d["causes"]
    planted_t = next(t for t in d["tensors"] if t["name"] == cause["tensor"])
    assert planted_t["channel_ratio"] > 100  # the x1000 channel, measured
    assert sum(cause["histogram"]["counts"]) > 0
    assert d["top1_agreement"] < 0.9  # the outlier really costs answers
    assert "outlier" in stdout and PLANTED in stdout


@pytest.mark.parametrize("artifact", ["tflite-int8.tflite", "onnx-int8.onnx"])
def test_equalized_export_has_no_diverging_tensor(planted, artifact):
    d, _ = _triage(planted, "default", artifact)
    assert d["first_diverging_tensor"] is None, d["causes"]
    assert not [c for c in d["causes"] if c["kind"] == "outlier_range"]
    assert len(d["tensors"]) >= 5 and min(t["sqnr_db"] for t in d["tensors"]) > d["threshold_db"]


def test_triage_refuses_an_artifact_it_cannot_read_in_one_line(planted):
    proc = run_cli("triage", planted / "planted.keras", planted / "planted.keras",
                   "--dataset", "digits")
    one_line_error(proc, "triage", ".tflite")
