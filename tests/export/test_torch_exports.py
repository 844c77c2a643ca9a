"""Exports of a PyTorch model, proved against PyTorch itself: onnx-fp32/fp16/int8 from a
.pt2 (the dynamo exporter, a batch-2 contiguous example, a dynamic batch, checked at batch
1 and 8 before writing); the batch-1 trap and the channels_last example handled; the
user's per-channel Normalize(mean, std) honoured by every runtime (PyTorch, ONNX Runtime);
bad files refused in one line with nothing written. The models come from plain PyTorch in
a subprocess (tests/torch_models.py)."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from tests.helpers import ok, one_line_error, run_cli
from tests.torch_models import PREPROCESS

pytestmark = pytest.mark.slow


def _manifest(path):
    return json.loads(path.with_name(path.name + ".json").read_text())


def _probs(path, ds, preprocess=None):
    from edgeproof.bench.derive import artifact_manifest
    from edgeproof.bench.runtimes import open_runtime

    with open_runtime(path, manifest=artifact_manifest(path, preprocess)) as rt:
        return rt.predict_images(ds.x_test[:300])


def test_onnx_from_a_pt2_is_proved_against_pytorch(torch_models, tmp_path):
    from edgeproof.datasets import load_dataset
    from edgeproof.manifest import parse_preprocess

    out = tmp_path / "x"
    ok(run_cli("export", torch_models["net.pt2"], "--format", "onnx-fp32,onnx-fp16,onnx-int8",
               "--calib", "digits", "--preprocess", PREPROCESS, "--out", out))
    ds = load_dataset("digits", image_size=16, seed=0)
    torch_p = _probs(torch_models["net.pt2"], ds, parse_preprocess(PREPROCESS))
    floors = {"onnx-fp32": 0.999, "onnx-fp16": 0.99, "onnx-int8": 0.9}
    for fmt, floor in floors.items():
        path = out / f"net-{fmt}.onnx"
        m = _manifest(path)
        assert m["input"]["layout"] == "NCHW" and m["input"]["shape"][0] == -1
        assert m["preprocessing"]["mean"] == pytest.approx([0.2, 0.4, 0.6])
        got = _probs(path, ds)
        assert (got.argmax(1) == torch_p.argmax(1)).mean() >= floor, fmt
    check = _manifest(out / "net-onnx-fp32.onnx")["conversion"]["torch_onnx"]
    assert check["exporter"] == "dynamo" and check["batch_sizes"] == [1, 8]
    assert check["top1_agreement"] == 1.0 and check["max_abs_dp"] < 1e-4
    int8 = onnx.load(str(out / "net-onnx-int8.onnx"))
    assert any(n.op_type == "QuantizeLinear" for n in int8.graph.node)  # really integer


def test_the_batch_1_trap_and_a_channels_last_example(torch_models, tmp_path):
    for name in ("net_b1.pt2", "net_cl.pt2"):
        out = tmp_path / name
        ok(run_cli("export", torch_models[name], "--format", "onnx-fp32", "--calib", "digits",
                   "--preprocess", PREPROCESS, "--out", out))
        m = _manifest(next(out.glob("*.onnx")))
        check = m["conversion"]["torch_onnx"]
        assert check["top1_agreement"] == 1.0
        if name == "net_b1.pt2":  # its batch is fixed: dynamo cannot widen it, the file says so
            assert m["input"]["shape"][0] == 1 and check["batch_sizes"] == [1]
            assert any(t["exporter"] == "dynamo" for t in check["not_taken"])


def test_every_runtime_honours_per_channel_normalisation(torch_models, tmp_path):
    """The PyTorch row and the ONNX Runtime row agree with the .pt2 and score well with the
    user's mean/std, and score worse without them: a runtime ignoring them would fail."""
    out = tmp_path / "x"
    ok(run_cli("export", torch_models["net.pt2"], "--format", "onnx-fp32", "--calib", "digits",
               "--preprocess", PREPROCESS, "--out", out))
    onnx_file, rows = out / "net-onnx-fp32.onnx", {}
    for label, pre in (("right", PREPROCESS + ",crop=16"), ("plain", "colour=rgb,crop=16")):
        report = tmp_path / f"{label}.json"
        ok(run_cli("bench", torch_models["net.pt2"], torch_models["net.pt"], onnx_file,
                   "--reference", torch_models["net.pt2"], "--dataset", "digits",
                   "--preprocess", pre, "--json", report, "--out", tmp_path / label))
        rows[label] = json.loads(report.read_text())["results"]
    assert {r["runtime"] for r in rows["right"]} == {"pytorch", "onnxruntime"}
    for r in rows["right"]:
        assert r["status"] == "ok" and r["accuracy"] > 0.7 and r["top1_agreement"] >= 0.999, r
    right = np.mean([r["accuracy"] for r in rows["right"]])
    plain = np.mean([r["accuracy"] for r in rows["plain"]])
    assert plain < right - 0.1


@pytest.mark.parametrize("name,needle", [("state_dict.pt", "state_dict"),
                                         ("pickled.pt", "unpickle"),
                                         ("two_inputs.pt2", "2 inputs")])
def test_bad_pytorch_files_are_one_line_and_write_nothing(torch_models, tmp_path, name, needle):
    out = tmp_path / "never"
    one_line_error(run_cli("export", torch_models[name], "--format", "onnx-fp32", "--calib",
                           "digits", "--preprocess", PREPROCESS, "--out", out), needle)
    assert not out.exists()


def test_the_users_own_onnx_is_checked_against_pytorch(torch_models, tmp_path):
    """torch.onnx.export's default file (weights in net.onnx.data, batch fixed to the
    example's 2) given with --compare: checked like edgeproof's, its fixed batch said."""
    report = tmp_path / "export.json"
    proc = ok(run_cli("export", torch_models["net.pt2"], "--format", "onnx-fp32", "--dataset",
                      "digits", "--preprocess", PREPROCESS, "--compare", torch_models["net.onnx"],
                      "--json", report, "--out", tmp_path / "x"))
    rows = {r["format"]: r for r in json.loads(report.read_text())}
    yours = rows["yours: net.onnx"]
    assert yours["status"] == "ok" and yours["top1_agreement"] >= 0.999
    assert yours["runtime_details"]["batch_check"]["batch_sizes"] == [2]
    assert "fixed batch of 2" in proc.stderr + proc.stdout
