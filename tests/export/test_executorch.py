"""ExecuTorch (.pte) and LiteRT via litert-torch (.tflite) from a PyTorch reference: each
file written, loaded by its own runtime and agreeing with PyTorch on real images; int8
files really integer; the delegated share of every .pte in its manifest; a file that is
not a program refused in one line. The models come from plain PyTorch in a subprocess
(tests/torch_models.py)."""

from __future__ import annotations

import json

import pytest

from tests.helpers import ok, run_cli
from tests.torch_models import PREPROCESS

pytestmark = pytest.mark.slow

FORMATS = ("executorch-fp32", "executorch-int8", "tflite-fp32", "tflite-dynamic", "tflite-int8")


def _manifest(path):
    return json.loads(path.with_name(path.name + ".json").read_text())


@pytest.fixture(scope="module")
def torch_exports(torch_models, tmp_path_factory):
    pytest.importorskip("executorch", reason="ExecuTorch formats need the [torch] extra")
    pytest.importorskip("litert_torch", reason="litert-torch formats need the [torch] extra")
    out = tmp_path_factory.mktemp("torch_exports")
    ok(run_cli("export", torch_models["net.pt2"], "--format", ",".join(FORMATS),
               "--calib", "digits", "--preprocess", PREPROCESS, "--out", out))
    return {fmt: next(out.glob(f"net-{fmt}.*[!n]")) for fmt in FORMATS}


def test_executorch_and_litert_torch_files_agree_with_pytorch(torch_models, torch_exports,
                                                               tmp_path):
    """bench runs every file on its own runtime against the .pt2: fp32 exact, int8 close."""
    report = tmp_path / "bench.json"
    ok(run_cli("bench", *torch_exports.values(), "--reference", torch_models["net.pt2"],
               "--dataset", "digits", "--preprocess", PREPROCESS + ",crop=16", "--json", report,
               "--out", tmp_path / "b"))
    rows = {r["artifact"].rsplit("/", 1)[-1]: r for r in json.loads(report.read_text())["results"]}
    runtimes = {r["runtime"] for r in rows.values()}
    assert runtimes == {"executorch", "litert"}, runtimes
    for fmt, path in torch_exports.items():
        row = rows[path.name]
        floor = 0.999 if fmt.endswith("fp32") else 0.95
        assert row["status"] == "ok" and row["top1_agreement"] >= floor, (fmt, row)


def test_every_pte_records_its_delegation_and_int8_is_integer(torch_exports):
    from edgeproof.bench.pte_graph import pte_facts

    for fmt in ("executorch-fp32", "executorch-int8"):
        m = _manifest(torch_exports[fmt])
        ex = m["conversion"]["executorch"]
        share = ex["delegation"]["share"]
        assert 0 < share <= 1 and ex["dim_order"] == "contiguous"
        assert ex["delegation"]["delegated_ops"] <= ex["delegation"]["ops"]
        # what XNNPACK left out is named with its count, and the share adds up
        left = sum(ex["delegation"]["not_delegated"].values())
        assert ex["delegation"]["ops"] - ex["delegation"]["delegated_ops"] == left
        facts = pte_facts(torch_exports[fmt])
        assert facts.input_sizes[1:] == [3, 16, 16] and not facts.missing_ops
    delegated = _manifest(torch_exports["executorch-int8"])["conversion"]["executorch"]
    assert any("quantize" in op for op in delegated["delegation"]["delegated"])
    int8 = _manifest(torch_exports["tflite-int8"])
    assert "QUANTIZE" in int8["conversion"]["litert_torch"]["ops"]
    assert int8["input"]["dtype"] == "int8" and int8["input"]["quantization"]["scale"] > 0


def test_litert_torch_tflite_is_nhwc_without_a_chain_of_transposes(torch_exports):
    for fmt in ("tflite-fp32", "tflite-int8"):
        lt = _manifest(torch_exports[fmt])["conversion"]["litert_torch"]
        assert lt["input_layout"] == "NHWC" and lt["transposes"] <= 2, lt["ops"]
        assert lt["transposes"] == lt["ops"].get("TRANSPOSE", 0)


def test_a_damaged_pte_is_a_failed_row_naming_why(torch_models, torch_exports, tmp_path):
    """A truncated copy beside the real file's manifest: bench keeps going, the row says why."""
    import shutil

    bad = tmp_path / "broken.pte"
    bad.write_bytes(b"\x00" * 256)
    shutil.copy(torch_exports["executorch-fp32"].with_suffix(".pte.json"), tmp_path / "broken.pte.json")
    report = tmp_path / "bench.json"
    run_cli("bench", bad, "--reference", torch_models["net.pt2"], "--dataset", "digits",
            "--preprocess", PREPROCESS, "--json", report, "--out", tmp_path / "o")
    (row,) = json.loads(report.read_text())["results"]
    assert row["status"] == "failed" and "truncated" in row["error"], row
