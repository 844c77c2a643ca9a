"""OpenVINO: an IR (two files) written and read back; precision=f32 computes what ONNX
Runtime computes on the same float graph; the precision the plugin really used is read
back and shown in the row and the results table (whatever this CPU does by default); a
missing or changed .bin, an unknown or absent device and a missing OpenVINO are one line
each; openvino-fp32 and openvino-int8 exported from the tiny models agree with their
reference, with the layout of their source and the int8 choice in the manifest.

The graphs of the fast tests are made here with onnx.helper (three layers, no training);
the tests that convert a trained model with a format's converter are slow."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("openvino", reason="the openvino runtime needs the [openvino] extra")

from edgeproof.bench.one_artifact import bench_batches, bench_artifact  # noqa: E402
from edgeproof.bench.openvino_graph import (available_devices, ir_facts,  # noqa: E402
                                            openvino_module)
from edgeproof.bench.row import BenchRow  # noqa: E402
from edgeproof.bench.runtimes import open_runtime, runtime_for  # noqa: E402
from edgeproof.bench.settings import BenchSettings, EvalData  # noqa: E402
from edgeproof.bench.table import RESULTS, markdown, view  # noqa: E402
from edgeproof.errors import ExportError, RuntimeFailure, UsageError  # noqa: E402
from edgeproof.export.artifact import Artifact, write_artifact  # noqa: E402
from edgeproof.machine import cpu_flags  # noqa: E402
from edgeproof.manifest import Manifest, Preprocessing, TensorInfo  # noqa: E402

SIZE, CLASSES = 8, 10
CHECK = BenchSettings(latency=False)


def _graph(nchw: bool = False, logits: bool = False):
    """Conv-ReLU-pool-dense(-softmax), seeded weights: an NHWC (Keras-like, a Transpose
    first) or NCHW (PyTorch-like, ending in logits) image classifier."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=(8, 3, 3, 3)).astype(np.float32), "W"),
             numpy_helper.from_array(rng.normal(size=8).astype(np.float32), "B"),
             numpy_helper.from_array(rng.normal(size=(8, CLASSES)).astype(np.float32), "D")]
    first = "input" if nchw else "t"
    nodes = [] if nchw else [helper.make_node("Transpose", ["input"], ["t"], perm=[0, 3, 1, 2])]
    out = "logits" if logits else "probs"
    nodes += [helper.make_node("Conv", [first, "W", "B"], ["c"], pads=[1, 1, 1, 1]),
              helper.make_node("Relu", ["c"], ["r"]),
              helper.make_node("GlobalAveragePool", ["r"], ["g"]),
              helper.make_node("Flatten", ["g"], ["f"]),
              helper.make_node("MatMul", ["f", "D"], ["l" if not logits else out])]
    if not logits:
        nodes.append(helper.make_node("Softmax", ["l"], [out], axis=1))
    shape = ["N", 3, SIZE, SIZE] if nchw else ["N", SIZE, SIZE, 3]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                     shape)],
                          [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["N", CLASSES])],
                          inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _manifest(fmt: str) -> Manifest:
    return Manifest(format=fmt, class_names=[str(i) for i in range(CLASSES)],
                    input=TensorInfo("input", [-1, SIZE, SIZE, 3]),
                    output=TensorInfo("probs", [-1, CLASSES]),
                    preprocessing=Preprocessing(size=[SIZE, SIZE]))


def _images(n: int = 24, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8)


@pytest.fixture
def files(tmp_path):
    """The NHWC graph as ``m.onnx`` and as the IR ``m-ir.xml`` + ``m-ir.bin``, each with
    its manifest, written by write_artifact."""
    import openvino as ov

    proto = _graph()
    onnx_path = write_artifact(Artifact(proto.SerializeToString(), ".onnx", _manifest("onnx")),
                               tmp_path, "m")
    xml = tmp_path / "scratch" / "m.xml"
    xml.parent.mkdir()
    ov.save_model(ov.convert_model(str(onnx_path)), str(xml), compress_to_fp16=False)
    art = Artifact(xml.read_bytes(), ".xml", _manifest("openvino-fp32"),
                   companions={".bin": xml.with_suffix(".bin").read_bytes()})
    return SimpleNamespace(onnx=onnx_path, xml=write_artifact(art, tmp_path, "m-ir"))


def test_an_ir_is_written_as_two_files_and_read_back(files):
    xml = files.xml
    assert runtime_for(xml) == "openvino" and runtime_for(files.onnx) == "onnxruntime"
    weights = xml.with_suffix(".bin")
    assert weights.is_file() and weights.stat().st_size > 0
    record = Manifest.load(xml.with_name(xml.name + ".json")).conversion["companion_files"]
    assert record[".bin"]["size_bytes"] == weights.stat().st_size
    facts = ir_facts(xml)
    assert facts.weights == weights and facts.inputs[0][1] == [-1, SIZE, SIZE, 3]
    assert facts.outputs[0][1] == [-1, CLASSES] and facts.quantized == 0
    x = _images()
    with open_runtime(xml, threads=1) as rt:
        from_ir = rt.predict_images(x)
    with open_runtime(files.onnx, "openvino", threads=1) as rt:
        from_onnx = rt.predict_images(x)
    np.testing.assert_allclose(from_ir, from_onnx, atol=1e-6)


def test_precision_f32_computes_what_onnx_runtime_computes(files):
    x = _images(40)
    with open_runtime(files.onnx, "onnxruntime") as rt:
        want = rt.predict_images(x)
    with open_runtime(files.xml, precision="f32") as rt:
        got = rt.predict_images(x)
        d = rt.info()["runtime_details"]
    assert d["precision"] == "f32" and d["inference_precision_hint"] == "f32"
    assert set(d["layer_precisions"]) == {"f32"}
    assert np.abs(got - want).max() < 2e-5


def test_the_cpu_plugins_own_precision_is_read_back_as_it_is(files):
    """With precision=default OpenVINO chooses; whatever it chose on this CPU is what the
    row says: bf16 where the CPU has bf16 units, f32 elsewhere."""
    flags = cpu_flags()
    with open_runtime(files.xml, precision="default") as rt:
        d = rt.info()["runtime_details"]
    bf16_units = bool({"avx512_bf16", "amx_bf16"} & flags)
    assert d["inference_precision_hint"] == ("bf16" if bf16_units else "f32")
    assert d["precision"].split("+")[0] == next(iter(d["layer_precisions"]))
    assert ("bf16" in d["precision"]) == bf16_units


def test_the_precision_is_in_the_row_and_a_column_of_the_table(files):
    rows, _ = bench_batches(files.xml, CHECK, EvalData(_images(), None, None))
    row = rows[0]
    assert row.ok, row.error
    assert row.precision == "f32" == row.runtime_details["precision"]
    weights = files.xml.with_suffix(".bin").stat().st_size
    assert row.size_bytes == files.xml.stat().st_size + weights  # an IR's size: both files
    other = BenchRow(format="onnx-fp32", runtime="onnxruntime", status="ok")
    keys = [c.key for c in view(RESULTS, [row, other])]
    assert "precision" in keys, "the results table must show the precision OpenVINO used"
    header, _, line, _ = markdown([row, other])
    assert "precision" in header and "| f32 |" in line
    # report.json rows are dicts: the column reads them too
    assert "| f32 |" in markdown([row.to_dict()])[2]
    assert "precision" not in [c.key for c in view(RESULTS, [other])]


def test_a_missing_weights_file_is_one_line(files):
    files.xml.with_suffix(".bin").unlink()
    with pytest.raises(RuntimeFailure, match=r"m-ir\.bin is not beside it") as err:
        open_runtime(files.xml).load()
    assert "\n" not in str(err.value)
    rows, _ = bench_batches(files.xml, CHECK)
    assert not rows[0].ok and "m-ir.bin" in rows[0].error and "\n" not in rows[0].error


def test_weights_from_another_export_are_refused(files, tmp_path):
    weights = files.xml.with_suffix(".bin")
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(RuntimeFailure, match="does not match its manifest's sha256"):
        open_runtime(files.xml).load()


def test_a_bad_xml_is_one_line(tmp_path):
    bad = tmp_path / "bad.xml"
    bad.write_text("<html>not a network</html>")
    with pytest.raises(RuntimeFailure, match="not a valid OpenVINO IR"):
        open_runtime(bad, manifest=_manifest("x")).load()


def test_devices_unknown_or_absent_are_one_line(files):
    with pytest.raises(UsageError, match="Unknown device 'tpu' for openvino; valid: cpu, gpu, npu"):
        open_runtime(files.xml, device="tpu").load()
    absent = [d for d in ("gpu", "npu") if d not in available_devices()]
    if not absent:
        pytest.skip("this machine's OpenVINO has a GPU and an NPU")
    with pytest.raises(RuntimeFailure, match=f"Asked for OpenVINO's {absent[0].upper()}") as err:
        open_runtime(files.xml, device=absent[0]).load()
    assert "\n" not in str(err.value) and "--allow-fallback" in str(err.value)
    with open_runtime(files.xml, device=absent[0], allow_fallback=True) as rt:
        info = rt.info()
    assert info["device"] == "cpu" and info["fallback"] is True and info["providers"] == ["CPU"]


def test_without_openvino_one_line_names_the_extra(monkeypatch):
    from edgeproof.export.openvino_export import openvino

    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino now fails
    with pytest.raises(RuntimeFailure, match=r'pip install "edgeproof\[openvino\]"'):
        openvino_module()
    with pytest.raises(ExportError, match=r'openvino-int8 needs OpenVINO.*edgeproof\[openvino\]'):
        openvino("openvino-int8")


def _onnx_context(tmp_path, nchw: bool):
    """An ONNX reference made here and its export context: 60 'train' images, 20 of them
    for calibration, as calibration_context draws them."""
    import onnx

    from edgeproof.export.context import calibration_context
    from edgeproof.reference import load_reference

    path = tmp_path / ("nchw.onnx" if nchw else "nhwc.onnx")
    onnx.save(_graph(nchw=nchw, logits=nchw), str(path))
    ds = SimpleNamespace(name="noise", class_names=[str(i) for i in range(CLASSES)],
                         preprocessing=Preprocessing(size=[SIZE, SIZE]), x_train=_images(60, 1),
                         y_train=np.arange(60) % CLASSES)
    return load_reference(str(path)), calibration_context(ds, 20, 0, {"model_name": path.stem})


@pytest.mark.slow
def test_an_onnx_reference_from_pytorch_keeps_its_nchw_input(tmp_path):
    from edgeproof.export.formats import export_model

    ref, ctx = _onnx_context(tmp_path, nchw=True)
    art = export_model(ref, "openvino-fp32", ctx)
    m = art.manifest
    assert (m.input.layout, m.input.dtype, m.input.shape) == ("NCHW", "float32",
                                                              [-1, 3, SIZE, SIZE])
    assert m.conversion["softmax"]["added"]
    assert m.conversion["openvino"]["compress_to_fp16"] is False
    assert m.conversion["inference_precision"]["edgeproof_runtime_default"] == "f32"
    path = write_artifact(art, tmp_path, "nchw-openvino-fp32")
    onnx_art = export_model(ref, "onnx-fp32", ctx)
    onnx_path = write_artifact(onnx_art, tmp_path, "nchw-onnx-fp32")
    x = _images(16, 2)
    with open_runtime(path) as rt, open_runtime(onnx_path) as ort_rt:
        assert np.abs(rt.predict_images(x) - ort_rt.predict_images(x)).max() < 2e-5


@pytest.mark.slow
def test_int8_keeps_the_candidate_that_agrees_more_and_says_so(tmp_path):
    from edgeproof.export.formats import export_model

    ref, ctx = _onnx_context(tmp_path, nchw=False)
    art = export_model(ref, "openvino-int8", ctx)
    choice = art.manifest.conversion["int8_choice"]
    agree = choice["top1_agreement"]
    assert set(agree) == {"nncf", "qdq"} and all(0.0 <= v <= 1.0 for v in agree.values())
    assert agree[choice["kept"]] == max(agree.values())
    assert choice["images"] == "40 train images not used for calibration"
    assert art.manifest.calibration["n"] == 20
    path = write_artifact(art, tmp_path, "nhwc-openvino-int8")
    assert ir_facts(path).quantized > 0
    only = export_model(ref, "openvino-int8", ctx, {"method": "qdq"}).manifest
    assert set(only.conversion["int8_choice"]["top1_agreement"]) == {"qdq"}


@pytest.mark.slow
def test_the_tiny_keras_models_exports_agree_with_it(tiny_model, tiny_context, tiny_dataset,
                                                     tiny_reference, tiny_exports, tmp_path):
    from edgeproof.export.formats import export_model

    data = EvalData(tiny_dataset.x_test, tiny_dataset.y_test, tiny_reference)
    rows = {}
    for fmt in ("openvino-fp32", "openvino-int8"):
        art = export_model(tiny_model, fmt, tiny_context)
        assert art.manifest.input.layout == "NHWC" and art.manifest.input.dtype == "float32"
        rows[fmt], _ = bench_artifact(write_artifact(art, tmp_path, f"tiny-{fmt}"), CHECK, data)
        assert rows[fmt].ok, rows[fmt].error
    fp32, int8 = rows["openvino-fp32"], rows["openvino-int8"]
    assert fp32.precision == "f32" and fp32.max_abs_diff < 1e-4
    assert int8.top1_agreement >= 0.95 and int8.precision.startswith("int8")
    # The same float graph on ONNX Runtime and on OpenVINO at f32: the same answers.
    onnx_row, onnx_probs = bench_artifact(tiny_exports["onnx-fp32"], CHECK, data)
    ov_row, ov_probs = bench_artifact(tiny_exports["onnx-fp32"],
                                      BenchSettings(latency=False, runtime="openvino"), data)
    assert ov_row.ok and ov_row.runtime == "openvino" and ov_row.precision == "f32"
    assert np.abs(ov_probs - onnx_probs).max() < 2e-5


@pytest.mark.slow
def test_a_pytorch_program_exports_to_an_nchw_ir_that_agrees_with_it(torch_models, tmp_path):
    import json

    from tests.helpers import ok, run_cli

    out, report = tmp_path / "x", tmp_path / "check.json"
    ok(run_cli("export", torch_models["net.pt2"], "--format", "openvino-fp32", "--calib",
               "digits", "--preprocess", "scale=1/255,colour=rgb", "--out", out, "--json", report))
    xml = out / "net-openvino-fp32.xml"
    assert xml.with_suffix(".bin").is_file()
    m = Manifest.load(xml.with_name(xml.name + ".json"))
    assert (m.input.layout, m.input.dtype, m.input.shape[1]) == ("NCHW", "float32", 3)
    row = json.loads(report.read_text())[0]
    assert row["status"] == "ok" and row["runtime"] == "openvino", row
    assert row["top1_agreement"] >= 0.999 and row["runtime_details"]["precision"] == "f32"
