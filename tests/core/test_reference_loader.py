"""The core loader of reference models (edgeproof.reference): which Keras wrote a file (from
its own metadata), custom layers found before loading, ONNX graphs read in Python
(layout, logits, leading scale), preprocessing evidence, and the one-line errors for
inputs it cannot take. The quick tests build their files by hand (zip, onnx.helper);
the slow ones load models Keras 3 made in a process of its own
(scripts/export/foreign_models.py, TF_USE_LEGACY_KERAS unset)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from edgeproof.errors import ModelError, UsageError
from edgeproof.keras_loader import keras_file_version, keras_major, unknown_custom_layers
from edgeproof.manifest import Manifest, Preprocessing, TensorInfo
from edgeproof.preprocess import postprocess
from edgeproof.reference import load_reference, looks_like, reference_preprocessing
from edgeproof.reference_model import evidence_from_ops
from edgeproof.reference_onnx import inspect_onnx
from tests.helpers import ROOT

MAKER = ROOT / "scripts" / "export" / "foreign_models.py"


# -- hand-made files --------------------------------------------------------------------
def _keras_zip(path, version: str, layers: list[dict]) -> None:
    config = {"module": "keras.src.models.functional", "class_name": "Functional",
              "registered_name": "Functional", "config": {"layers": layers}}
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("metadata.json", json.dumps({"keras_version": version}))
        z.writestr("config.json", json.dumps(config))


def _layer(cls: str, module="keras.layers", registered=None) -> dict:
    return {"module": module, "class_name": cls, "registered_name": registered,
            "config": {"dtype": {"module": "keras", "class_name": "DTypePolicy",
                                 "registered_name": None, "config": {"name": "float32"}}},
            "inbound_nodes": [{"args": [{"class_name": "__keras_tensor__", "config": {}}]}]}


def _onnx(path, nchw=True, logits=True, scale=None, inputs=1, batch="N", classes=4):
    """A tiny classifier graph as PyTorch (NCHW, Gemm: logits) or tf2onnx (NHWC) write it."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    shape = [batch, 3, 8, 8] if nchw else [batch, 8, 8, 3]
    nodes, inits, x = [], [], "input"
    if scale is not None:
        inits.append(numpy_helper.from_array(np.array(scale, np.float32), "scale"))
        nodes.append(helper.make_node("Mul", [x, "scale"], ["scaled"]))
        x = "scaled"
    if not nchw:
        nodes.append(helper.make_node("Transpose", [x, ], ["t"], perm=[0, 3, 1, 2]))
        x = "t"
    inits += [numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w"),
              numpy_helper.from_array(rng.standard_normal((classes, 4)).astype(np.float32), "fc"),
              numpy_helper.from_array(np.zeros(classes, np.float32), "fcb")]
    nodes += [helper.make_node("Conv", [x, "w"], ["c"], pads=[1, 1, 1, 1]),
              helper.make_node("Relu", ["c"], ["r"]),
              helper.make_node("GlobalAveragePool", ["r"], ["g"]),
              helper.make_node("Flatten", ["g"], ["f"]),
              helper.make_node("Gemm", ["f", "fc", "fcb"], ["logits"], transB=1)]
    out = "logits"
    if not logits:
        nodes.append(helper.make_node("Softmax", ["logits"], ["probs"], axis=1))
        out = "probs"
    ins = [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)]
    if inputs == 2:
        ins.append(helper.make_tensor_value_info("mask", TensorProto.FLOAT, shape))
    graph = helper.make_graph(nodes, "g", ins, [helper.make_tensor_value_info(
        out, TensorProto.FLOAT, [batch, classes])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_which_keras_wrote_a_file_is_read_from_its_metadata(tmp_path):
    _keras_zip(tmp_path / "k3.keras", "3.15.1", [_layer("InputLayer")])
    _keras_zip(tmp_path / "tfk.keras", "2.21.0", [_layer("InputLayer")])
    assert keras_file_version(tmp_path / "k3.keras") == "3.15.1"
    assert [keras_major(keras_file_version(tmp_path / n)) for n in ("k3.keras", "tfk.keras")] \
        == [3, 2]


def test_a_custom_layer_is_found_before_loading(tmp_path):
    path = tmp_path / "custom.keras"
    _keras_zip(path, "3.15.1", [_layer("InputLayer"), _layer("Conv2D"),
                                _layer("MyLayer", None, "mine>MyLayer")])
    assert unknown_custom_layers(path) == ["MyLayer (registered as mine>MyLayer)"]
    with pytest.raises(ModelError) as e:
        load_reference(path)
    msg = str(e.value)
    assert "custom.keras" in msg and "Keras 3" in msg and "MyLayer" in msg and "\n" not in msg
    assert "SavedModel" in msg  # what to do: export where the code is importable


@pytest.mark.parametrize("content,looks", [(b"hello, I am text\n", "text"),
                                           (b"\x1c\x00\x00\x00TFL3" + bytes(64), "TFLite"),
                                           (b"", "empty")])
def test_a_file_that_is_no_model_says_what_it_looked_like(tmp_path, content, looks):
    path = tmp_path / "thing.bin"
    path.write_bytes(content)
    with pytest.raises(ModelError) as e:
        load_reference(path)
    assert looks in str(e.value) and "thing.bin" in str(e.value) and ".onnx" in str(e.value)


def test_truncated_keras_and_onnx_files_are_clear_errors(tmp_path):
    _keras_zip(tmp_path / "whole.keras", "3.15.1", [_layer("InputLayer")])
    (tmp_path / "cut.keras").write_bytes((tmp_path / "whole.keras").read_bytes()[:60])
    with pytest.raises(ModelError, match="truncated"):
        load_reference(tmp_path / "cut.keras")
    _onnx(tmp_path / "whole.onnx")
    (tmp_path / "cut.onnx").write_bytes((tmp_path / "whole.onnx").read_bytes()[:90])
    with pytest.raises(ModelError, match="truncated"):
        load_reference(tmp_path / "cut.onnx")


def test_an_onnx_file_with_two_inputs_is_refused(tmp_path):
    with pytest.raises(ModelError) as e:
        load_reference(_onnx(tmp_path / "two.onnx", inputs=2))
    assert "2 inputs" in str(e.value) and "input, mask" in str(e.value)


def test_a_savedmodel_without_its_variable_shards_is_refused_before_loading(tmp_path):
    folder = tmp_path / "sm"
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"\x08\x01")
    (folder / "variables" / "variables.index").write_bytes(b"x")
    with pytest.raises(ModelError) as e:
        load_reference(folder)
    assert "incomplete" in str(e.value) and "variables.data" in str(e.value)
    assert "folder without saved_model.pb" in looks_like(tmp_path)


def test_evidence_read_off_the_first_ops():
    raw = evidence_from_ops([("Mul", np.float32(1 / 255)), ("AddV2", 0.0)])
    assert raw[:2] == (1.0, 0.0) and "raw 0-255" in raw[2]
    assert evidence_from_ops([("Div", 255.0)])[:2] == (1.0, 0.0)
    unit = evidence_from_ops([("Sub", [0.485, 0.456, 0.406]), ("Div", [0.229, 0.224, 0.225])])
    assert unit[:2] == (1 / 255, 0.0)
    assert evidence_from_ops([("Conv", None)]) is None
    assert evidence_from_ops([("Mul", 2.0)]) is None  # [0, 1] -> [0, 2]: no pixel range


def test_an_nchw_onnx_file_ending_in_logits_is_read_as_pytorch_writes_it(tmp_path):
    import onnxruntime as ort

    path = _onnx(tmp_path / "torch.onnx")
    info = inspect_onnx(path)
    assert (info.layout, info.ends_in, info.logits, info.leading) == \
        ("NCHW", "Gemm", True, [("Conv", None)])
    ref = load_reference(path)
    assert (ref.kind, ref.layout, ref.input_shape, ref.num_classes, ref.has_gradients) == \
        ("onnx", "NCHW", (8, 8, 3), 4, False)
    x = np.random.default_rng(1).random((5, 8, 8, 3), dtype=np.float32)
    logits = ort.InferenceSession(str(path)).run(None, {"input": x.transpose(0, 3, 1, 2)})[0]
    want = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    np.testing.assert_allclose(ref.predict(x), want, atol=1e-6)  # transposed, softmaxed
    with pytest.raises(UsageError, match="--preprocess"):  # PyTorch scales outside the graph
        reference_preprocessing(ref)
    pre, _, how = reference_preprocessing(ref, {"scale": 1 / 255})
    assert pre.size == [8, 8] and how.startswith("given")


def test_an_nhwc_onnx_file_with_a_leading_scale_shows_its_preprocessing(tmp_path):
    ref = load_reference(_onnx(tmp_path / "k3.onnx", nchw=False, logits=False, scale=1 / 255))
    assert (ref.layout, ref.outputs_logits) == ("NHWC", False)
    pre, _, how = reference_preprocessing(ref)
    assert (pre.scale, pre.offset) == (1.0, 0.0) and "Mul" in how and how.startswith("detected")


def test_a_manifest_saying_logits_makes_every_runtime_apply_softmax():
    m = Manifest("onnx (no manifest)", ["a", "b"], TensorInfo("x", [-1, 2, 2, 3]),
                 TensorInfo("y", [-1, 2]), Preprocessing([2, 2]))
    raw = np.array([[2.0, 0.0]], np.float32)
    np.testing.assert_array_equal(postprocess(raw, m), raw)
    m.conversion["logits"] = {"softmax": "applied by the runtime after the model"}
    np.testing.assert_allclose(postprocess(raw, m), [[0.880797, 0.119203]], atol=1e-6)


def test_onnx_float_export_of_an_onnx_reference_is_the_graph_with_softmax(tmp_path):
    """A fixed batch (no dynamic_axes) becomes dynamic; logits get a Softmax; NCHW stays."""
    import onnxruntime as ort

    from edgeproof.export.context import ExportContext
    from edgeproof.export.formats import export_model

    ref = load_reference(_onnx(tmp_path / "b1.onnx", batch=1))
    assert ref.extras["batch"] == 1
    x = np.random.default_rng(2).random((3, 8, 8, 3), dtype=np.float32)
    want = ref.predict(x)  # one image per call: the graph's batch is fixed
    ctx = ExportContext(list("abcd"), Preprocessing([8, 8]))
    art = export_model(ref, "onnx-fp32", ctx)
    m = art.manifest
    assert (m.input.layout, m.input.shape, m.options["opset"]) == ("NCHW", [-1, 3, 8, 8], 17)
    assert m.conversion["softmax"]["added"] and "Gemm" in m.conversion["softmax"]["why"]
    got = ort.InferenceSession(art.data).run(None, {"input": x.transpose(0, 3, 1, 2)})[0]
    np.testing.assert_allclose(got, want, atol=1e-6)  # batch 3 runs; probabilities out
    with pytest.raises(Exception, match="not a TensorFlow graph"):
        export_model(ref, "tflite-fp32", ctx)


# -- models made by Keras 3 in their own process ------------------------------------------
@pytest.fixture(scope="module")
def keras3_files(tmp_path_factory):
    """model.keras / savedmodel / model.onnx / custom.keras from Keras 3 (TF_USE_LEGACY_KERAS
    unset), a small Rescaling + BatchNorm CNN fitted one epoch on random pixels."""
    out = tmp_path_factory.mktemp("k3")
    rng = np.random.default_rng(0)
    np.savez(out / "data.npz", x_train=rng.integers(0, 256, (256, 12, 12, 3), np.uint8),
             y_train=rng.integers(0, 4, 256), x_test=rng.integers(0, 256, (32, 12, 12, 3), np.uint8),
             y_test=rng.integers(0, 4, 32))
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    r = subprocess.run([sys.executable, str(MAKER), "keras3", "--data", str(out / "data.npz"),
                        "--out", str(out), "--epochs", "1", "--filters", "4,8", "--custom"],
                       env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return out


@pytest.mark.slow
def test_keras3_files_load_in_this_process_and_answer_as_keras3_did(keras3_files):
    from edgeproof.tfcompat import tf

    saved = np.load(keras3_files / "predictions.npz")
    x = saved["x"].astype(np.float32)  # raw pixels: the model rescales them itself
    for name, kind in (("model.keras", "keras3"), ("savedmodel", "saved_model"),
                       ("model.onnx", "onnx")):
        ref = load_reference(keras3_files / name)
        assert ref.kind == kind and ref.input_shape == (12, 12, 3) and not ref.outputs_logits
        assert ref.evidence is not None and ref.evidence[:2] == (1.0, 0.0), name
        np.testing.assert_allclose(ref.predict(x), saved["probs"], atol=1e-5, err_msg=name)
        assert ref.sha256() and ref.has_gradients == (kind != "onnx")
    assert tf().keras.__name__.startswith("tf_keras")  # Keras 3 beside it changed nothing
    k3 = load_reference(keras3_files / "model.keras")
    np.testing.assert_array_equal(k3.predict(x), saved["probs"])  # bit-identical in-process
    xt = tf().constant(x[:2])
    with tf().GradientTape() as tape:
        tape.watch(xt)
        y = k3.tf_call(xt)
    assert tape.gradient(y, xt).shape == (2, 12, 12, 3)  # gradients: explain works


@pytest.mark.slow
def test_keras3_bad_inputs_are_one_line_errors(keras3_files, tmp_path):
    from edgeproof.keras_loader import load_keras_model

    with pytest.raises(ModelError, match="Doubler"):
        load_reference(keras3_files / "custom.keras")
    with pytest.raises(ModelError, match="saved by Keras 3.*tf-keras 2 model"):
        load_keras_model(keras3_files / "model.keras")  # train --resume / QAT need tf-keras
    cut = tmp_path / "cut"
    shutil.copytree(keras3_files / "savedmodel", cut)
    for shard in (cut / "variables").glob("variables.data-*"):
        shard.unlink()
    with pytest.raises(ModelError, match="incomplete"):
        load_reference(cut)
