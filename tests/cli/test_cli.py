"""`edgeproof` end to end, as a user runs it: a real subprocess for every command. The
default run (`edgeproof run --out DIR`, trained once per session) meets README's
report.json contract and the quality bar; export → bench → parity → predict chain on it;
bad input is one error line. Tests that train or convert are slow."""

import json
import os
import re

import numpy as np
import pytest
from PIL import Image

from tests.helpers import ROOT, run_cli, shared_path
from tests.helpers import ok as _ok
from tests.helpers import one_line_error as _one_line_error

# Dicts keyed by data, not by the contract: their keys vary by machine or dataset.
FREE_FORM = {"p50_ms", "per_class", "split"}


def readme_report() -> dict:
    """The report.json example README documents (its keys are the stable contract)."""
    text = (ROOT / "README.md").read_text().split("## report.json", 1)[1]
    return json.loads(re.search(r"```json\n(.*?)```", text, re.S).group(1))


def missing_keys(documented, actual, where="report") -> list[str]:
    """Keys of ``documented`` (recursively; "…" stands for more) that ``actual`` lacks."""
    if isinstance(documented, dict) and isinstance(actual, dict):
        out = []
        for key, value in documented.items():
            if key == "…":
                continue
            if key not in actual:
                out.append(f"{where}.{key}")
            elif key not in FREE_FORM:
                out += missing_keys(value, actual[key], f"{where}.{key}")
        return out
    if isinstance(documented, list) and documented and isinstance(documented[0], dict) \
            and isinstance(actual, list):
        return [m for i, item in enumerate(actual)
                for m in missing_keys(documented[0], item, f"{where}[{i}]")]
    return []


def _row(report, fmt):
    return next(r for r in report["results"] if r["format"] == fmt)


def test_help_explains_every_command():
    top = _ok(run_cli("--help")).stdout
    for cmd in ("run", "train", "export", "bench", "predict", "parity", "models", "formats"):
        assert cmd in top
        assert "usage: edgeproof " + cmd in _ok(run_cli(cmd, "--help")).stdout


def test_models_and_formats_are_listed():
    assert "flowers_cnn_dropout" in _ok(run_cli("models")).stdout
    formats = _ok(run_cli("formats")).stdout
    assert "tflite-int8" in formats and "io_type" in formats and "onnx-fp32" in formats


@pytest.mark.slow
def test_default_run_meets_the_contract(default_run):
    out, report, proc = default_run
    assert missing_keys(readme_report(), report) == []  # every key README documents
    assert report["dataset"]["num_classes"] == 10 and report["dataset"]["split"]["test"] == 360
    assert report["model"]["input_shape"] == [32, 32, 1] and report["model"]["params"] > 0
    # threads are per row (auto-tuned), never one machine-wide figure; each row records the
    # count that ran and whether it was the runtime's own default
    assert "threads" not in report["env"]
    for r in report["results"]:
        assert isinstance(r["threads"], int) and r["threads"] >= 1, r
        assert isinstance(r["threads_default"], bool), r
    gate = report["gate"]
    assert {k: gate[k] for k in ("min_agreement", "max_accuracy_drop", "enforced", "mode",
                                 "confidence")} == {
        "min_agreement": 0.99, "max_accuracy_drop": 0.005, "enforced": False, "mode": "bound",
        "confidence": 0.95}
    # one answer, and it agrees with its lists: passes only with nothing failed or undecided
    assert gate["answer"] in ("passes", "fails", "undecided")
    assert gate["passed"] == (gate["answer"] == "passes") == \
        (not gate["failures"] and not gate["undecided"])
    assert [r["format"] for r in report["results"]] == ["keras", "tflite-fp32", "tflite-int8",
                                                          "onnx-fp32"]
    for r in report["results"]:
        assert r["status"] == "ok", r
        assert (out / r["artifact"]).is_file() and (out / (r["artifact"] + ".json")).is_file()
        assert r["latency_ms"]["n"] >= 50 and r["latency_ms"]["p50"] > 0
    assert "| tflite-int8 |" in (out / "report.md").read_text()
    assert "tflite-int8" in proc.stdout  # the table is printed
    assert "val_loss" not in proc.stdout + proc.stderr  # --quiet: no per-epoch Keras lines
    assert report["command"] == f"edgeproof run --out {out} --quiet"  # the command, as typed


def test_the_contract_check_finds_a_missing_key():
    doc = readme_report()
    report = json.loads(json.dumps(doc))
    assert missing_keys(doc, report) == []
    del report["results"][0]["threads"], report["env"]["cores"]
    assert missing_keys(doc, report) == ["report.env.cores", "report.results[0].threads"]


# A float32 export computes what the model does up to float rounding, which differs by CPU
# (kernels, FMA, vector width): its probabilities stay within this of the model's (the
# conformance tolerance, tests/export/test_export_conformance.py), never "identical".
FP32_MAX_ABS = 1e-4


def _computes_like_the_model(row: dict) -> None:
    """A float32 row's parity, on any CPU: probabilities within FP32_MAX_ABS, so top-1 can
    differ only where the model's two best are that close (rare: a floor, not 100%)."""
    assert row["max_abs_diff"] <= FP32_MAX_ABS, row
    assert row["top1_agreement"] >= 0.99, row


@pytest.mark.slow
def test_default_run_meets_the_quality_bar(default_run):
    _, report, _ = default_run
    int8, onnx, fp32 = (_row(report, f) for f in ("tflite-int8", "onnx-fp32", "tflite-fp32"))
    assert report["model"]["reference_accuracy"] > 0.9
    assert abs(int8["accuracy_delta"]) <= 0.02
    _computes_like_the_model(onnx)
    assert fp32["size_bytes"] / int8["size_bytes"] >= 3.5
    assert int8["providers"] and onnx["providers"] == ["CPUExecutionProvider"]


@pytest.mark.slow
def test_default_run_report_includes_the_evaluation(default_run):
    out, report, _ = default_run
    ev = report["evaluation"]
    keras_row = _row(report, "keras")
    # the evaluation is of the same Keras model the results table measured
    assert ev["accuracy"] == pytest.approx(keras_row["accuracy"])
    assert ev["accuracy"] == pytest.approx(report["model"]["reference_accuracy"])
    assert list(ev["per_class"]) == [str(i) for i in range(10)]
    assert sum(v["support"] for v in ev["per_class"].values()) == 360
    cm = np.asarray(ev["confusion_matrix"])
    assert cm.sum() == 360 and np.trace(cm) == round(ev["accuracy"] * 360)
    assert len(ev["worst"]) == 10 and len(ev["gradcam"]) == 3
    for rel in list(ev["files"].values()) + ev["gradcam"]:
        assert (out / rel).stat().st_size > 0, rel
    assert {"confusion_matrix", "curves", "worst_grid"} <= set(ev["files"])
    md = (out / "report.md").read_text()
    assert "## Evaluation of the Keras model" in md and "](eval/confusion_matrix.png)" in md
    assert f"| {ev['worst'][0]['index']} |" in md


@pytest.mark.slow
def test_export_needs_calibration_for_int8(default_run, tmp_path):
    out, _, _ = default_run
    keras_model = out / "models" / "small_cnn-keras.keras"
    proc = run_cli("export", keras_model, "--format", "tflite-int8", "--out", tmp_path)
    _one_line_error(proc, "calib")
    assert not list(tmp_path.glob("*.tflite"))


@pytest.mark.slow
def test_export_bench_parity_predict_chain(default_run, tmp_path):
    out, _, _ = default_run
    keras_model = out / "models" / "small_cnn-keras.keras"
    exp = tmp_path / "exp"
    _ok(run_cli("export", keras_model, "--format", "tflite-int8,onnx-fp32", "--calib", "digits",
                "--out", exp, "--min-agreement", "0.95", "--quiet"))
    int8 = exp / "small_cnn-keras-tflite-int8.tflite"
    onnx = exp / "small_cnn-keras-onnx-fp32.onnx"
    assert int8.is_file() and onnx.is_file()
    _one_line_error(run_cli("export", keras_model, "--format", "onnx-fp32", "--out", exp),
                    "already exists", "--force")

    report = tmp_path / "edgeproof.bench.json"
    _ok(run_cli("bench", int8, onnx, "--dataset", "digits", "--reference", keras_model,
                "--json", report, "--min-runs", "5", "--min-seconds", "0.05", "--quiet"))
    data = json.loads(report.read_text())
    assert [r["status"] for r in data["results"]] == ["ok", "ok"]
    _computes_like_the_model(data["results"][1])
    assert data["results"][0]["top1_agreement"] >= 0.95  # the export's own gate
    assert int8.stat().st_size < onnx.stat().st_size
    assert os.path.normpath(tmp_path / data["results"][0]["artifact"]) == os.path.normpath(int8)
    synthetic = _ok(run_cli("bench", onnx, "--min-runs", "5", "--min-seconds", "0.05", "--quiet"))
    assert "onnx-fp32" in synthetic.stdout

    _ok(run_cli("parity", keras_model, int8, "--dataset", "digits", "--min-agreement", "0.95"))

    from sklearn.datasets import load_digits

    d = load_digits()
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for i in range(3):
        Image.fromarray((d.images[i] * 255 / 16).astype(np.uint8)).save(imgs / f"{d.target[i]}.png")
    lines = _ok(run_cli("predict", onnx, imgs, "--json")).stdout.splitlines()
    preds = [json.loads(ln) for ln in lines]
    assert len(preds) == 3 and all(0 <= p["predictions"][0]["probability"] <= 1 for p in preds)
    hits = sum(p["predictions"][0]["class"] == os.path.basename(p["image"])[0] for p in preds)
    assert hits >= 2


@pytest.mark.slow
def test_parity_gate_fails_on_a_broken_export(default_run, tmp_path):
    out, _, _ = default_run
    keras_model = out / "models" / "small_cnn-keras.keras"
    good = out / "models" / "small_cnn-tflite-int8.tflite"
    bad = tmp_path / good.name
    bad.write_bytes(good.read_bytes())
    m = json.loads((good.parent / (good.name + ".json")).read_text())
    m["preprocessing"]["scale"] = 1.0  # unscaled pixels
    (tmp_path / (good.name + ".json")).write_text(json.dumps(m))
    proc = run_cli("parity", keras_model, bad, "--dataset", "digits")
    assert proc.returncode == 1, proc.stderr
    assert "gate: FAILED" in proc.stdout and "Traceback" not in proc.stderr


@pytest.mark.parametrize("args,needles", [
    (("run", "--model", "no_such_model", "--epochs", "1"), ("unknown model", "small_cnn")),
    (("run", "--formats", "tflite-int9", "--epochs", "1"), ("unknown format", "tflite-int8")),
    (("run", "--dataset", "/no/such/folder", "--epochs", "1"), ("not found",)),
    (("run", "--epochs", "-3"), ("epochs",)),
    (("bench", "/no/such/model.tflite"), ("not found",)),
])
def test_bad_input_is_one_line_error(args, needles, tmp_path):
    _one_line_error(run_cli(*args, "--out", tmp_path / "o") if args[0] == "run"
                    else run_cli(*args), *needles)


@pytest.mark.slow
def test_unknown_runtime_option_lists_the_valid_ones(tiny_exports):
    proc = run_cli("bench", tiny_exports["tflite-fp32"], tiny_exports["onnx-fp32"],
                   "--runtime-option", "xnnpak=false")
    _one_line_error(proc, "xnnpak", "valid options:", "graph_optimization (onnxruntime)",
                    "xnnpack (litert)")


def test_named_download_fails_offline_with_a_hint(tmp_path):
    env = {"HOME": str(tmp_path), "KERAS_HOME": str(tmp_path / ".keras"),
           "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",
           "https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9"}
    proc = run_cli("run", "--dataset", "mnist", "--epochs", "1", "--out", tmp_path / "o", env=env)
    _one_line_error(proc, "--dataset PATH")


@pytest.mark.slow
@pytest.mark.shared
def test_run_on_a_flowers_folder_slice(tmp_path):
    flowers = shared_path("flowers")
    root = tmp_path / "flowers slice"  # a space in the path, on purpose
    for cls in sorted(p.name for p in flowers.iterdir() if p.is_dir()):
        (root / cls).mkdir(parents=True)
        for f in sorted((flowers / cls).iterdir())[:12]:
            (root / cls / f.name).symlink_to(f)
    out = tmp_path / "out"
    _ok(run_cli("run", "--dataset", root, "--image-size", "32", "--epochs", "1",
                "--formats", "keras,tflite-int8,onnx-fp32", "--calib-size", "20", "--out", out,
                "--quiet"))
    report = json.loads((out / "report.json").read_text())
    assert report["dataset"]["class_names"] == ["daisy", "dandelion", "rose", "sunflower", "tulip"]
    assert sum(report["dataset"]["split"].values()) == 60
    assert all(r["status"] == "ok" for r in report["results"])
    assert _row(report, "onnx-fp32")["max_abs_diff"] <= FP32_MAX_ABS


@pytest.mark.slow
def test_cli_evaluate_and_explain(tiny_model, tiny_dataset, tmp_path):
    from edgeproof.export.artifact import write_artifact
    from edgeproof.export.context import ExportContext
    from edgeproof.export.formats import export_model

    ctx = ExportContext(tiny_dataset.class_names, tiny_dataset.preprocessing)
    model_path = write_artifact(export_model(tiny_model, "keras", ctx), tmp_path, "model")
    p = _ok(run_cli("evaluate", model_path, "--dataset", "digits", "--out", tmp_path / "ev",
                    "--quiet"))
    assert "test accuracy" in p.stdout
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["n"] == 360
    assert (tmp_path / "ev" / "report.html").stat().st_size > 1000  # the page beside them
    img = tmp_path / "digit.png"
    Image.fromarray(tiny_dataset.x_test[0][..., 0]).save(img)
    _ok(run_cli("explain", model_path, img, "--out", tmp_path / "cam", "--quiet"))
    assert (tmp_path / "cam" / "digit-gradcam.png").exists()
