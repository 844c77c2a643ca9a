"""``edgeproof info``'s library side (app.file_kinds, app.file_<kind>): every kind edgeproof
writes, files made outside it (a PyTorch-style ONNX with a dynamic batch, a uint8 TFLite
without metadata, ONNX with external data, .pt2 and TorchScript from plain torch, an
OpenVINO IR), and broken files, which are one-line ModelErrors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgeproof.app import file_kinds
from edgeproof.app.file_info import FileInfo, summary_rows, tensor_rows
from edgeproof.app.file_kinds import READERS, describe_file, inspect_file
from edgeproof.errors import ModelError, RuntimeFailure
from edgeproof.manifest import Manifest, Preprocessing, TensorInfo, manifest_path

# The top-level JSON keys README documents ("edgeproof info").
JSON_KEYS = {"path", "kind", "format", "producer", "size_bytes", "sha256", "files", "manifest",
             "inputs", "outputs", "integer", "preprocessing", "class_names", "num_classes",
             "kept_float", "ops", "op_count", "delegation", "details", "notes"}


def pytorch_style_onnx(path, classes=4, scale=None, external=False):
    """A float NCHW classifier with a symbolic batch, written with plain onnx.helper (as
    torch.onnx.export lays it out): Conv -> GlobalAveragePool -> Flatten -> Gemm (logits);
    ``scale``: a leading Mul by it (an in-graph Rescaling)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=(6, 3, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.normal(size=(classes, 6)).astype(np.float32), "fc")]
    nodes, first = [], "input"
    if scale is not None:
        inits.append(numpy_helper.from_array(np.array(scale, np.float32), "scale"))
        nodes.append(helper.make_node("Mul", ["input", "scale"], ["scaled"]))
        first = "scaled"
    nodes += [helper.make_node("Conv", [first, "w"], ["c"]),
              helper.make_node("GlobalAveragePool", ["c"], ["p"]),
              helper.make_node("Flatten", ["p"], ["f"]),
              helper.make_node("Gemm", ["f", "fc"], ["logits"], transB=1)]
    graph = helper.make_graph(
        nodes, "net", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                     ["batch", 3, 16, 16])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", classes])], inits)
    model = helper.make_model(graph, producer_name="pytorch", producer_version="2.13",
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # what torch.onnx writes, and every ONNX Runtime loads
    if external:
        onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                  location=path.name + ".data", size_threshold=0)
    else:
        onnx.save(model, str(path))
    return path


def test_a_pytorch_onnx_shows_its_nchw_layout_and_dynamic_batch(tmp_path):
    info = inspect_file(pytorch_style_onnx(tmp_path / "net.onnx"))
    (inp,), (out,) = info.inputs, info.outputs
    assert inp.shape == ["batch", 3, 16, 16] and inp.dynamic_axes() == [0]
    assert inp.layout == "NCHW" and inp.shape_text() == "batch?x3x16x16"
    assert inp.dtype == "float32" and inp.quantization is None
    assert info.num_classes == 4 and info.class_names is None
    assert info.integer_kind == "float" and info.producer == "pytorch 2.13"
    assert info.ops == {"Conv": 1, "GlobalAveragePool": 1, "Flatten": 1, "Gemm": 1}
    assert not info.manifest.found and info.preprocessing.source == "unknown"
    assert any("logits" in n for n in info.notes)
    assert ("input", "input", "batch?x3x16x16", "float32", "NCHW", "-") in tensor_rows(info)


def test_the_graph_shows_preprocessing_when_it_scales_the_input(tmp_path):
    info = inspect_file(pytorch_style_onnx(tmp_path / "net.onnx", scale=1 / 255))
    assert info.preprocessing.source == "graph"
    assert info.preprocessing.fields == {"scale": 1.0, "offset": 0.0}  # raw pixels go in
    assert "Mul" in info.preprocessing.why


def test_onnx_external_data_is_listed_and_a_missing_one_said(tmp_path):
    path = pytorch_style_onnx(tmp_path / "net.onnx", external=True)
    data = tmp_path / "net.onnx.data"
    info = inspect_file(path)
    (f,) = info.files
    assert f.exists and f.size_bytes == data.stat().st_size and f.path.endswith("net.onnx.data")
    assert info.details["external_data"] is True and info.inputs[0].layout == "NCHW"
    data.unlink()
    info = inspect_file(path)  # the graph still reads without its weights
    assert not info.files[0].exists and info.num_classes == 4
    assert any("net.onnx.data" in n and "not beside it" in n for n in info.notes)


def _sidecar(path, sha256, classes=("cat", "dog", "fox", "owl")):
    m = Manifest(format="onnx-fp32", class_names=list(classes),
                 input=TensorInfo("input", [-1, 3, 16, 16], layout="NCHW"),
                 output=TensorInfo("logits", [-1, 4]),
                 preprocessing=Preprocessing(size=[16, 16], scale=1 / 255), sha256=sha256,
                 conversion={"float_nodes": {"nodes": ["Gemm_0"], "why": "kept float on request"}})
    manifest_path(path).write_text(m.to_json())


def test_a_manifest_beside_the_file_is_used_and_its_sha256_checked(tmp_path):
    path = pytorch_style_onnx(tmp_path / "net.onnx")
    _sidecar(path, "0" * 64)  # a manifest of some other file
    info = inspect_file(path)
    assert info.manifest.found and info.manifest.where == "sidecar"
    assert info.manifest.sha256_matches is False and "does not match" in info.manifest.note
    _sidecar(path, info.sha256)
    info = inspect_file(path)
    assert info.manifest.sha256_matches is True and info.manifest.format == "onnx-fp32"
    assert info.preprocessing.source == "manifest"
    assert info.preprocessing.fields["scale"] == pytest.approx(1 / 255)
    assert info.class_names == ["cat", "dog", "fox", "owl"] and info.num_classes == 4
    assert [(k.names, k.key) for k in info.kept_float] == [(["Gemm_0"], "float_nodes")]


def test_a_malformed_sidecar_is_said_not_fatal(tmp_path):
    path = pytorch_style_onnx(tmp_path / "net.onnx")
    manifest_path(path).write_text("{not json")
    info = inspect_file(path)
    assert not info.manifest.found and "not valid JSON" in info.manifest.note
    assert info.num_classes == 4


def test_json_has_the_documented_keys_and_is_written_atomically(tmp_path):
    out = tmp_path / "info.json"
    info = describe_file(pytorch_style_onnx(tmp_path / "net.onnx"), out)
    data = json.loads(out.read_text())
    assert set(data) == JSON_KEYS and data == json.loads(json.dumps(info.to_dict()))
    assert data["inputs"][0]["shape"] == ["batch", 3, 16, 16]
    assert data["inputs"][0]["dynamic_axes"] == [0] and data["inputs"][0]["layout"] == "NCHW"
    assert data["integer"]["kind"] == "float" and data["op_count"] == 4
    assert not list(tmp_path.glob(".info.json.*"))  # no temporary left


@pytest.mark.parametrize("name,content,needle", [
    ("empty.onnx", b"", "empty"),
    ("random.onnx", bytes(np.random.default_rng(1).integers(0, 256, 3000, dtype=np.uint8)),
     "not a readable ONNX file"),
    ("random.tflite", b"xxxxTFL3" + bytes(range(256)) * 8, "truncated"),
    ("short.tflite", b"abc", "not a TFLite flatbuffer"),
    ("notes.txt", b"hello", "not a model file"),
    ("random.xml", b"\x00\x01garbage", "not an OpenVINO IR"),
    ("garbage.pt2", b"PK\x03\x04garbage", "not a PyTorch zip archive"),
    ("model.pte", b"\x00" * 64, "is not an ExecuTorch program"),
])
def test_broken_files_are_one_line_model_errors(tmp_path, name, content, needle):
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(ModelError) as e:
        inspect_file(p)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_a_truncated_onnx_file_is_a_model_error(tmp_path):
    path = pytorch_style_onnx(tmp_path / "net.onnx")
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ModelError, match="not a readable ONNX file"):
        inspect_file(path)


def test_a_crash_in_the_sandbox_is_one_line(tmp_path, monkeypatch):
    p = tmp_path / "m.tflite"
    p.write_bytes(b"....TFL3" + b"\x00" * 64)

    def died(*a, **k):  # what bench.isolate raises when the worker process dies
        raise RuntimeFailure("The benchmark worker process died")

    monkeypatch.setattr(file_kinds, "run_isolated", died)
    with pytest.raises(ModelError, match="crashed reading m.tflite in a sandbox process"):
        inspect_file(p)


def test_every_kind_has_a_row_and_pte_has_its_slot():
    assert {"tflite", "onnx", "keras", "saved_model", "pt2", "torchscript", "openvino",
            "pte"} <= set(READERS.names())
    assert READERS.get("pte").suffixes == (".pte",)


def test_summary_rows_say_what_is_unknown():
    rows = dict(summary_rows(FileInfo("m.onnx", "onnx", "ONNX")))
    assert rows["classes"] == "unknown" and rows["manifest"] == "none"


# -- kinds edgeproof writes, and files from elsewhere that need a converter -------------


@pytest.mark.slow
def test_each_kind_edgeproof_writes(tiny_exports):
    for fmt, path in tiny_exports.items():
        info = inspect_file(path)
        assert info.manifest.found and info.manifest.sha256_matches is True, fmt
        assert info.manifest.format == fmt and info.preprocessing.source == "manifest", fmt
        assert info.num_classes == 10 and len(info.class_names) == 10, fmt
        (inp,) = info.inputs
        assert inp.layout == "NHWC" and inp.shape[1:] == [16, 16, 1], fmt
        assert info.ops, fmt
    q = inspect_file(tiny_exports["tflite-int8"])
    assert q.integer_kind == "full-integer" and q.inputs[0].dtype == "int8"
    assert q.inputs[0].quantization["scale"] > 0 and q.outputs[0].quantization is not None
    assert q.delegation.partitions >= 1 and q.delegation.ops == sum(q.ops.values())
    assert inspect_file(tiny_exports["tflite-fp32"]).integer_kind == "float"
    assert "Conv2D" in inspect_file(tiny_exports["keras"]).ops
    assert inspect_file(tiny_exports["onnx-fp32"]).integer_kind == "float"


@pytest.mark.slow
def test_a_saved_model_folder(tiny_model, tiny_context, tmp_path):
    from edgeproof.export.artifact import write_artifact
    from edgeproof.export.formats import export_model

    path = write_artifact(export_model(tiny_model, "saved_model", tiny_context), tmp_path, "sm")
    info = inspect_file(path)
    assert info.kind == "saved_model" and info.details["signature"] == "serving_default"
    assert info.inputs[0].shape[1:] == [16, 16, 1] and info.outputs[0].shape[-1] == 10
    assert "Conv2D" in info.ops and "SaveV2" not in info.ops  # the serving graph, not the saver
    assert info.manifest.sha256_matches is True


def uint8_tflite(path, size=24, classes=5):
    """A uint8 TFLite classifier made with tf.lite's converter, no edgeproof metadata (as
    published quantized classifiers are)."""
    from edgeproof.tfcompat import keras, tf

    k = keras()
    inp = k.Input((size, size, 3))
    x = k.layers.Conv2D(4, 3, activation="relu")(inp)
    x = k.layers.GlobalAveragePooling2D()(x)
    model = k.Model(inp, k.layers.Dense(classes, activation="softmax")(x))
    rng = np.random.default_rng(0)
    conv = tf().lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf().lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([rng.uniform(0, 255, (1, size, size, 3))
                                            .astype(np.float32)] for _ in range(8))
    conv.target_spec.supported_ops = [tf().lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf().uint8
    path.write_bytes(conv.convert())
    return path


@pytest.mark.slow
def test_a_uint8_tflite_without_metadata(tmp_path):
    info = inspect_file(uint8_tflite(tmp_path / "q.tflite"))
    (inp,), (out,) = info.inputs, info.outputs
    assert inp.dtype == "uint8" and inp.shape == ["N", 24, 24, 3] and inp.layout == "NHWC"
    assert inp.quantization["scale"] > 0 and 0 <= inp.quantization["zero_point"] <= 255
    assert out.dtype == "uint8" and out.quantization["scale"] > 0
    assert info.num_classes == 5 and info.integer_kind == "full-integer"
    assert not info.manifest.found and info.delegation.partitions >= 1
    # calibrated on 0-255 values: the input's range says raw pixels go in
    assert info.preprocessing.source == "graph" and "0-255" in info.preprocessing.why


class _TinyCNN:
    @staticmethod
    def make():
        import torch

        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.conv, self.fc = torch.nn.Conv2d(3, 6, 3), torch.nn.Linear(6, 7)

            def forward(self, x):
                return self.fc(torch.relu(self.conv(x)).mean((2, 3)))

        torch.manual_seed(0)
        return Net().eval(), torch.zeros(2, 3, 16, 16)


@pytest.mark.slow
def test_a_pt2_from_plain_torch(tmp_path):
    torch = pytest.importorskip("torch", reason="PyTorch files need the [torch] extra")
    net, x = _TinyCNN.make()
    program = torch.export.export(net, (x,), dynamic_shapes={"x": {0: torch.export.Dim("b")}})
    torch.export.save(program, str(tmp_path / "net.pt2"))
    info = inspect_file(tmp_path / "net.pt2")
    (inp,), (out,) = info.inputs, info.outputs
    assert inp.shape == ["N", 3, 16, 16] and inp.layout == "NCHW" and inp.dtype == "float32"
    assert out.shape == ["N", 7] and info.num_classes == 7
    assert info.ops.get("conv2d") == 1 and info.ops.get("linear") == 1
    assert info.details["dim_order"] == "contiguous" and "x[0]" in info.details["dynamic"]


def test_a_torchscript_file_from_plain_torch(tmp_path):
    torch = pytest.importorskip("torch", reason="PyTorch files need the [torch] extra")
    net, x = _TinyCNN.make()
    torch.jit.save(torch.jit.trace(net, x), str(tmp_path / "net.pt"))
    info = inspect_file(tmp_path / "net.pt")
    assert info.kind == "torchscript" and info.inputs[0].shape == ["N", 3, "?", "?"]
    assert info.num_classes == 7 and "relu" in info.ops
    assert any("keeps no input shape" in n for n in info.notes)


@pytest.mark.slow
def test_an_openvino_ir(tmp_path):
    ov = pytest.importorskip("openvino", reason="OpenVINO IR needs the [openvino] extra")
    src = pytorch_style_onnx(tmp_path / "net.onnx")
    ov.save_model(ov.convert_model(str(src)), str(tmp_path / "net.xml"))
    info = inspect_file(tmp_path / "net.xml")
    assert info.inputs[0].shape == ["N", 3, 16, 16] and info.inputs[0].dtype == "float32"
    assert info.num_classes == 4 and "Convolution" in info.ops
    assert info.files[0].path.endswith("net.bin") and info.files[0].exists
    assert "CPU" in info.details["devices"]
    assert info.integer_kind == "float16"  # save_model compresses weights to f16 by default
    (tmp_path / "net.bin").unlink()
    with pytest.raises(ModelError, match="net.bin"):
        inspect_file(tmp_path / "net.xml")


def test_readme_documents_every_json_key():
    from tests.helpers import ROOT

    text = (ROOT / "README.md").read_text().split("### What a model file is: `edgeproof info`")[1]
    section = text.split("\n## ")[0]
    assert [k for k in sorted(JSON_KEYS) if f"`{k}`" not in section] == []
