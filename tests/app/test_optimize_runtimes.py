"""optimize offers every runtime a reference can ship on: for a PyTorch reference
ExecuTorch, LiteRT via litert-torch, ONNX Runtime and OpenVINO, picked among by the one
gate; rungs a reference kind cannot make are skipped before the search, with the reason,
and are not counted by the gate's correction; NNCF's default PTQ is a family of its own
beside edgeproof's onnx-int8."""

from __future__ import annotations

import json
import os

import pytest

from edgeproof.app.ladder import ladders
from edgeproof.app.optimize import OptimizeConfig
from tests.helpers import ok, run_cli
from tests.torch_models import PREPROCESS


def _rungs(model: str) -> dict[str, list]:
    return ladders(OptimizeConfig(model, "digits", "out"))


def test_a_pytorch_reference_gets_every_runtime_and_the_rest_says_why():
    rungs = _rungs("net.pt2")
    assert {"float", "tflite-int", "onnx-int", "onnx-nncf", "executorch-int",
            "openvino-int"} <= set(rungs)
    by_format = {r.format: r for family in rungs.values() for r in family}
    for fmt in ("executorch-fp32", "executorch-int8", "tflite-fp32", "onnx-fp32"):
        assert by_format[fmt].skip is None or "not installed" in by_format[fmt].skip, fmt
    skipped = {r.label: r.skip for family in rungs.values() for r in family if r.skip}
    assert "litert-torch" in skipped["tflite-fp16"] and "tfmot" in skipped["tflite-qat-int8"]
    assert any("selective quantization" in why for why in skipped.values())
    # the Bonferroni count is the rungs that can be tried, not the ones skipped up front
    total = sum(len(v) for v in rungs.values())
    assert OptimizeConfig("net.pt2", "digits", "out").rungs == total - len(skipped)


def test_a_keras_reference_skips_executorch_and_keeps_nncf_beside_onnx_int8():
    rungs = _rungs("m.keras")
    pte = [r for family in rungs.values() for r in family if r.format.startswith("executorch")]
    assert pte and all("PyTorch" in r.skip for r in pte)
    (nncf,) = rungs["onnx-nncf"]
    assert nncf.format == "onnx-int8" and nncf.options["engine"] == "nncf"
    assert all(r.options.get("engine") != "nncf" for r in rungs["onnx-int"])


@pytest.mark.slow
def test_optimize_on_a_pt2_compares_the_runtimes_and_its_pick_holds(torch_models, tmp_path):
    """The search tries ExecuTorch, litert-torch, ONNX Runtime and OpenVINO candidates of
    one .pt2 (--gate point: 360 digits validation images cannot prove 99% on bounds), and
    the recommended file, re-checked by ``parity`` against the .pt2 on the test split,
    holds the gate."""
    pytest.importorskip("executorch", reason="ExecuTorch formats need the [torch] extra")
    pytest.importorskip("openvino", reason="OpenVINO formats need the [openvino] extra")
    out, model = tmp_path / "opt", torch_models["net.pt2"]
    ok(run_cli("optimize", model, "--dataset", "digits", "--preprocess", PREPROCESS,
               "--formats", "tflite-fp32,tflite-int8,executorch-fp32,executorch-int8,"
               "onnx-fp32,openvino-int8", "--gate", "point", "--out", out, "--quiet"))
    result = json.loads((out / "optimize.json").read_text())
    tried = [c for c in result["candidates"] if c["status"] == "ok"]
    assert {"executorch", "litert", "onnxruntime", "openvino"} <= {c["runtime"] for c in tried}
    for c in tried:  # each measured, none assumed faster
        assert c["latency_ms"]["p50"] > 0 and c["validation"]["top1_agreement"] is not None, c
    skipped = [c for c in result["candidates"] if c["status"] == "skipped"]
    assert skipped and all(c["reason"].startswith("skipped: ") for c in skipped)
    rec = result["recommendation"]
    assert rec is not None, [(c["rung"], c["reason"]) for c in result["candidates"]]
    chosen = out / "models" / os.path.basename(rec["artifact"])
    recheck = json.loads(ok(run_cli("parity", model, chosen, "--dataset", "digits",
                                    "--preprocess", PREPROCESS, "--gate", "point",
                                    "--json")).stdout)
    assert recheck["gate"]["passed"], recheck
