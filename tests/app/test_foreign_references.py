"""Models nobody made with edgeproof, through the CLI as a user runs it: a Keras 3 CNN
(Rescaling first, BatchNorm; made by Keras 3 in its own process with TF_USE_LEGACY_KERAS
unset) as ``model.save``, ``model.export()`` and ``model.export(format="onnx")``, and an
NCHW ONNX graph as PyTorch writes one (built with onnx.helper, ending in logits): export →
bench → parity → optimize for each, and the bad inputs (a Keras 3 custom layer, a
truncated SavedModel, an ONNX file with two inputs), each one line, non-zero, nothing
written. Every test converts real models: slow."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import ROOT, ok, one_line_error, run_cli

pytestmark = pytest.mark.slow
MAKER = ROOT / "scripts" / "export" / "foreign_models.py"
RAW = "scale=1/255"  # the PyTorch-style graph takes ToTensor()'s [0, 1] pixels


@pytest.fixture(scope="module")
def digits_npz(tmp_path_factory):
    """digits at 16 px, seed 0: the train and validation splits for fitting, the test split
    the CLI's ``--dataset digits`` evaluates on (the same seed: never seen in training)."""
    from edgeproof.datasets import load_dataset

    ds = load_dataset("digits", image_size=16, seed=0)
    path = tmp_path_factory.mktemp("data") / "digits16.npz"
    np.savez(path, x_train=np.concatenate([ds.x_train, ds.x_val]),
             y_train=np.concatenate([ds.y_train, ds.y_val]), x_test=ds.x_test, y_test=ds.y_test)
    return path


def _make(kind: str, data, out, *extra) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    r = subprocess.run([sys.executable, str(MAKER), kind, "--data", str(data), "--out", str(out),
                        "--filters", "8,16", *extra], env=env, capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]


@pytest.fixture(scope="module")
def keras3(digits_npz, tmp_path_factory):
    out = tmp_path_factory.mktemp("keras3")
    _make("keras3", digits_npz, out, "--epochs", "4", "--custom")
    return out


@pytest.fixture(scope="module")
def torch_onnx(digits_npz, tmp_path_factory):
    out = tmp_path_factory.mktemp("torch")
    _make("torch-onnx", digits_npz, out)
    return out / "model.onnx"


def _rows(path) -> dict:
    data = json.loads(path.read_text())
    return {r["format"]: r for r in (data["results"] if isinstance(data, dict) else data)}


def _export(model, formats, out, *extra):
    ok(run_cli("export", model, "--format", formats, "--calib", "digits", "--out", out,
               "--quiet", "--json", out / "check.json", *extra))
    return _rows(out / "check.json")


def _bench(artifacts, reference, out, *extra):
    ok(run_cli("bench", *artifacts, "--dataset", "digits", "--reference", reference,
               "--threads", "1", "--min-runs", "5", "--min-seconds", "0", "--quiet",
               "--json", out, *extra))
    return _rows(out)


def _optimize_and_recheck(model, formats, out, *extra):
    """optimize, then the recommended export re-checked against ``model`` on the test split
    with ``parity`` (its own run, not optimize's numbers)."""
    # --gate point: these tests are about reading the foreign file; 360 digits images cannot
    # prove 99% on bounds (the bound gate's own tests: tests/bench/test_bounds.py)
    ok(run_cli("optimize", model, "--dataset", "digits", "--formats", formats, "--out", out,
               "--quiet", "--gate", "point", *extra))
    result = json.loads((out / "optimize.json").read_text())
    rec = result["recommendation"]
    chosen = out / "models" / os.path.basename(rec["artifact"])
    r = ok(run_cli("parity", model, chosen, "--dataset", "digits", "--min-agreement", "0.99",
                   "--max-accuracy-drop", "0.5", "--gate", "point", "--json", *extra))
    return result, json.loads(r.stdout)


def test_keras3_file_export_bench_parity_optimize(keras3, tmp_path):
    model = keras3 / "model.keras"
    rows = _export(model, "tflite-fp32,tflite-int8,onnx-fp32,keras", tmp_path / "exp")
    manifest = json.loads((tmp_path / "exp" / "model-tflite-int8.tflite.json").read_text())
    assert manifest["source"]["kind"] == "keras3" and manifest["preprocessing"]["scale"] == 1.0
    arts = [tmp_path / "exp" / f"model-{f}" for f in ("tflite-fp32.tflite", "tflite-int8.tflite",
                                                      "onnx-fp32.onnx", "keras.keras")]
    bench = _bench(arts, model, tmp_path / "bench.json")
    ref_acc = bench["tflite-fp32"]["accuracy"] - bench["tflite-fp32"]["accuracy_delta"]
    assert ref_acc > 0.8, bench  # the model's own accuracy, not chance (raw pixels in)
    for fmt, row in bench.items():
        assert row["status"] == "ok" and abs(row["accuracy"] - ref_acc) <= 0.02, (fmt, row)
        if fmt != "tflite-int8":
            assert row["top1_agreement"] >= 0.999 and rows[fmt]["top1_agreement"] >= 0.999, fmt
    r = ok(run_cli("parity", model, arts[2], "--dataset", "digits", "--min-agreement", "0.999",
                   "--gate", "point", "--json"))
    assert json.loads(r.stdout)["max_abs_diff"] < 1e-4
    result, recheck = _optimize_and_recheck(model, "tflite-fp32,tflite-int8,tflite-qat-int8",
                                            tmp_path / "opt", )
    assert recheck["gate"]["passed"]
    qat = [c for c in result["candidates"] if c["format"] == "tflite-qat-int8"]  # a default rung
    assert all(c["status"] in ("failed", "not tried") for c in qat)  # Keras 3: not tf-keras


def test_qat_rung_says_it_needs_tf_keras_and_the_ladder_goes_on(keras3, tmp_path):
    ok(run_cli("optimize", keras3 / "model.keras", "--dataset", "digits", "--formats",
               "tflite-qat-int8,tflite-fp32", "--exhaustive", "--out", tmp_path,
               "--gate", "point", "--quiet"))
    cands = {c["format"]: c for c in json.loads((tmp_path / "optimize.json").read_text())
             ["candidates"]}
    assert cands["tflite-qat-int8"]["status"] == "failed"
    assert "needs a tf-keras model" in cands["tflite-qat-int8"]["reason"]
    assert cands["tflite-fp32"]["passed"]


def test_keras3_savedmodel_export_bench_parity(keras3, tmp_path):
    model = keras3 / "savedmodel"
    rows = _export(model, "tflite-fp32,tflite-int8,onnx-fp32", tmp_path / "exp")
    assert rows["tflite-fp32"]["top1_agreement"] >= 0.999 and \
        rows["onnx-fp32"]["top1_agreement"] >= 0.999
    arts = sorted((tmp_path / "exp").glob("savedmodel-*.tflite")) + \
        sorted((tmp_path / "exp").glob("savedmodel-*.onnx"))
    bench = _bench(arts, model, tmp_path / "bench.json", "--limit", "200")
    assert all(r["status"] == "ok" for r in bench.values()) and \
        bench["onnx-fp32"]["top1_agreement"] >= 0.999
    ok(run_cli("parity", model, tmp_path / "exp" / "savedmodel-tflite-int8.tflite", "--dataset",
               "digits", "--min-agreement", "0.95"))


def test_keras3_onnx_file_export_bench_parity_optimize(keras3, tmp_path):
    model = keras3 / "model.onnx"
    rows = _export(model, "onnx-fp32,onnx-int8", tmp_path / "exp")
    assert rows["onnx-fp32"]["top1_agreement"] == 1.0 and rows["onnx-fp32"]["max_abs_diff"] < 1e-6
    bench = _bench(sorted((tmp_path / "exp").glob("*.onnx")), model, tmp_path / "bench.json")
    assert bench["onnx-int8"]["status"] == "ok" and bench["onnx-int8"]["accuracy"] > 0.8
    result, recheck = _optimize_and_recheck(model, "onnx-fp32,onnx-int8", tmp_path / "opt")
    assert result["recommendation"]["format"] in ("onnx-fp32", "onnx-int8")
    assert recheck["gate"]["passed"] and recheck["top1_agreement"] >= 0.99


def test_pytorch_style_onnx_export_bench_parity_optimize(torch_onnx, tmp_path):
    # Without a manifest or a scale in the graph, every command asks for --preprocess.
    for cmd in (["export", torch_onnx, "--format", "onnx-fp32", "--out", tmp_path / "x"],
                ["bench", torch_onnx, "--dataset", "digits"],
                ["parity", torch_onnx, torch_onnx, "--dataset", "digits"],
                ["optimize", torch_onnx, "--dataset", "digits", "--out", tmp_path / "o"]):
        one_line_error(run_cli(*cmd), "--preprocess")
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())
    r = run_cli("export", torch_onnx, "--format", "onnx-fp32,onnx-fp16,onnx-int8,tflite-fp32",
                "--calib", "digits", "--preprocess", RAW, "--out", tmp_path / "exp", "--quiet",
                "--json", tmp_path / "check.json")
    assert r.returncode != 0 and "not a TensorFlow graph" in r.stderr  # tflite refused, others run
    rows = _rows(tmp_path / "check.json")
    assert set(rows) == {"onnx-fp32", "onnx-fp16", "onnx-int8"}
    assert rows["onnx-fp32"]["top1_agreement"] == 1.0 and rows["onnx-fp32"]["accuracy"] > 0.8
    manifest = json.loads((tmp_path / "exp" / "model-onnx-fp32.onnx.json").read_text())
    assert manifest["input"]["layout"] == "NCHW" and manifest["input"]["shape"] == [-1, 1, 16, 16]
    assert manifest["conversion"]["softmax"]["added"] and manifest["source"]["layout"] == "NCHW"
    bench = _bench(sorted((tmp_path / "exp").glob("*.onnx")), torch_onnx, tmp_path / "bench.json",
                   "--preprocess", RAW)
    assert bench["onnx-fp32"]["max_abs_diff"] < 1e-5 and bench["onnx-int8"]["accuracy"] > 0.8
    result, recheck = _optimize_and_recheck(torch_onnx, "onnx-fp32,onnx-int8,tflite-int8",
                                            tmp_path / "opt", "--preprocess", RAW)
    assert recheck["gate"]["passed"], recheck
    tfl = [c for c in result["candidates"] if c["format"] == "tflite-int8"]
    assert tfl and all(c["status"] == "failed" and "TensorFlow" in c["reason"] for c in tfl)


def _two_inputs(path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["c"]), helper.make_node("Flatten", ["c"], ["y"])],
        "two", [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 3, 8, 8])
                for n in ("a", "b")], [helper.make_tensor_value_info("y", TensorProto.FLOAT,
                                                                     ["N", 192])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_bad_inputs_are_one_line_errors_and_write_nothing(keras3, tmp_path):
    cut = tmp_path / "cut_savedmodel"
    shutil.copytree(keras3 / "savedmodel", cut)
    for shard in (cut / "variables").glob("variables.data-*"):
        shard.unlink()
    cases = [(keras3 / "custom.keras", ("custom.keras", "Keras 3", "Doubler", "SavedModel")),
             (cut, ("cut_savedmodel", "incomplete", "copy the whole folder")),
             (_two_inputs(tmp_path / "two.onnx"), ("two.onnx", "2 inputs", "single input"))]
    for i, (model, needles) in enumerate(cases):
        out = tmp_path / f"out{i}"
        one_line_error(run_cli("export", model, "--format", "onnx-fp32", "--calib", "digits",
                               "--out", out), *needles)
        assert not out.exists(), f"{model.name}: export wrote {list(out.iterdir())}"
        one_line_error(run_cli("optimize", model, "--dataset", "digits", "--out", out / "o"),
                       model.name)
        assert not list(out.rglob("*.onnx")) and not list(out.rglob("*.tflite"))
    one_line_error(run_cli("bench", keras3 / "model.onnx", "--dataset", "digits", "--reference",
                           cases[2][0]), "two.onnx", "2 inputs")


def test_evaluate_and_explain_read_keras3_and_onnx(keras3, torch_onnx, tmp_path):
    from PIL import Image

    from edgeproof.datasets import load_dataset

    image = tmp_path / "seven.png"
    Image.fromarray(load_dataset("digits", image_size=16, seed=0).x_test[0][..., 0]).save(image)
    r = ok(run_cli("explain", keras3 / "model.keras", image, "--out", tmp_path / "cam"))
    assert "-gradcam.png" in r.stdout and (tmp_path / "cam" / "seven-gradcam.png").exists()
    one_line_error(run_cli("explain", torch_onnx, image, "--out", tmp_path / "no"),
                   "explain needs a Keras model", "model.onnx")
    ok(run_cli("evaluate", keras3 / "model.keras", "--dataset", "digits", "--out",
               tmp_path / "ev3", "--gradcam", "1", "--quiet"))
    k3 = json.loads((tmp_path / "ev3" / "metrics.json").read_text())
    assert k3["accuracy"] > 0.8 and len(k3["gradcam"]) == 1  # Grad-CAM on a Keras 3 model
    ok(run_cli("evaluate", torch_onnx, "--dataset", "digits", "--preprocess", RAW, "--out",
               tmp_path / "evo", "--quiet"))
    assert json.loads((tmp_path / "evo" / "metrics.json").read_text())["accuracy"] > 0.8
