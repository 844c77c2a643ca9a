"""ExecuTorch (.pte) and LiteRT via litert-torch (.tflite) from a PyTorch reference: each
file written, loaded by its own runtime and agreeing with PyTorch on real images; int8
files really integer; the delegated share of every .pte in its manifest; a file that is
not a program refused in one line; the channels_last trap (a .pte lowered by hand from a
channels_last example) answered right or refused, never silently wrong; a missing
operator and a share below ``min_delegated`` one line each. The models come from plain
PyTorch in a subprocess (tests/torch_models.py)."""

from __future__ import annotations

import json

import pytest

from tests.helpers import ok, one_line_error, run_cli
from tests.torch_models import PREPROCESS

pytestmark = pytest.mark.slow

FORMATS = ("executorch-fp32", "executorch-int8", "tflite-fp32", "tflite-dynamic", "tflite-int8")


def _manifest(path):
    return json.loads(path.with_name(path.name + ".json").read_text())


def lower_by_hand(program, out, check_ir: bool = True):
    """A ``.pte`` as an ExecuTorch user lowers it, without edgeproof: ExecuTorch's
    documented ``to_edge_transform_and_lower`` with the XNNPACK partitioner, no manifest.
    ``program``: a ``.pt2`` path or an ExportedProgram."""
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import EdgeCompileConfig, to_edge_transform_and_lower

    if not isinstance(program, torch.export.ExportedProgram):
        program = torch.export.load(str(program))
    edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()],
                                       compile_config=EdgeCompileConfig(
                                           _check_ir_validity=check_ir))
    out.write_bytes(edge.to_executorch().buffer)
    return out


def _bench(tmp_path, *artifacts, reference, extra=()):
    report = tmp_path / "bench.json"
    ok(run_cli("bench", *artifacts, "--reference", reference, "--dataset", "digits",
               "--preprocess", PREPROCESS, "--threads", "1", "--min-runs", "3",
               "--min-seconds", "0.05", *extra, "--json", report, "--out", tmp_path / "b"))
    return {r["artifact"].rsplit("/", 1)[-1]: r for r in json.loads(report.read_text())["results"]}


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
        if fmt.startswith("executorch"):  # the row carries what XNNPACK took
            details = row["runtime_details"]
            share = _manifest(path)["conversion"]["executorch"]["delegation"]["share"]
            assert details["delegated_share"] == share and 0 < share < 1, details
            assert details["not_delegated"] == {"aten_mean_dim": 1}, details


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


def test_the_channels_last_trap_is_caught(torch_models, tmp_path):
    """``net_cl.pt2``'s example was permuted from NHWC arrays (channels_last). edgeproof's
    export of it is contiguous and agrees; a .pte lowered from it by hand expects
    channels_last memory, which raw ExecuTorch fed an ordinary tensor answers wrongly
    without an error; bench lays the input out so and agrees with PyTorch."""
    import numpy as np
    import torch

    pytest.importorskip("executorch", reason="ExecuTorch formats need the [torch] extra")
    from executorch.runtime import Runtime

    from edgeproof.bench.pte_graph import pte_facts

    ok(run_cli("export", torch_models["net_cl.pt2"], "--format", "executorch-fp32", "--calib",
               "digits", "--preprocess", PREPROCESS, "--out", tmp_path / "x"))
    ours = tmp_path / "x" / "net_cl-executorch-fp32.pte"
    assert pte_facts(ours).dim_order == "contiguous"
    assert _manifest(ours)["conversion"]["executorch"]["dim_order"] == "contiguous"
    by_hand = lower_by_hand(torch_models["net_cl.pt2"], tmp_path / "by_hand.pte")
    facts = pte_facts(by_hand)
    assert facts.dim_order == "channels_last" and not facts.input_dynamic
    # the trap is real: raw ExecuTorch fed contiguous memory answers otherwise, silently
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(2, 3, 16, 16)).astype("f"))
    method = Runtime.get().load_program(str(by_hand)).load_method("forward")
    wrong = method.execute([x.contiguous()])[0]
    right = method.execute([x.contiguous(memory_format=torch.channels_last)])[0]
    expect = torch.export.load(str(torch_models["net_cl.pt2"])).module()(x)
    assert torch.allclose(right, expect, atol=1e-4) and not torch.allclose(wrong, expect, atol=1e-2)
    rows = _bench(tmp_path, ours, by_hand, reference=torch_models["net.pt2"],
                  extra=("--batch-sizes", "2"))  # the hand-lowered program's fixed batch
    for name, order in ((ours.name, "contiguous"), (by_hand.name, "channels_last")):
        row = rows[name]
        assert row["status"] == "ok" and row["top1_agreement"] >= 0.999, row
        assert row["runtime_details"]["dim_order"] == order, row["runtime_details"]
    assert rows[by_hand.name]["format"] == "pte (no manifest)"
    assert rows[by_hand.name]["runtime_details"]["delegated_share"] is None


def test_a_pte_with_a_missing_operator_fails_in_one_line_naming_it(tmp_path):
    """erfinv is outside XNNPACK and this runtime's portable kernels: the file lowers (IR
    check off, as a user does to get past it) but cannot load; bench says which operator,
    in one line, and info names it before any load."""
    import torch

    pytest.importorskip("executorch", reason="ExecuTorch formats need the [torch] extra")
    from edgeproof.app.file_kinds import inspect_file
    from edgeproof.bench.pte_graph import registered_operators

    if "aten::erfinv.out" in registered_operators():
        pytest.skip("this ExecuTorch runtime has an erfinv kernel")

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3)

        def forward(self, x):
            return torch.special.erfinv(torch.sigmoid(self.conv(x)) * 0.5).mean((2, 3))

    program = torch.export.export(Net().eval(), (torch.randn(1, 3, 8, 8),))
    pte = lower_by_hand(program, tmp_path / "erfinv.pte", check_ir=False)
    info = inspect_file(pte)
    assert info.details["missing_ops"] == ["aten::erfinv.out"]
    assert any("aten::erfinv.out" in n for n in info.notes), info.notes
    report = tmp_path / "bench.json"
    run_cli("bench", pte, "--batch-sizes", "1", "--threads", "1", "--json", report,
            "--out", tmp_path / "b")
    (row,) = json.loads(report.read_text())["results"]
    assert row["status"] == "failed" and "\n" not in row["error"], row
    assert "aten::erfinv.out" in row["error"] and "missing operator" in row["error"], row


def test_min_delegated_refuses_a_share_below_it_and_writes_nothing(torch_models, tmp_path):
    """The model's mean over (H, W) stays outside XNNPACK: min_delegated=1.0 refuses the
    file in one line naming that op; the output folder holds nothing."""
    pytest.importorskip("executorch", reason="ExecuTorch formats need the [torch] extra")
    out = tmp_path / "x"
    proc = run_cli("export", torch_models["net.pt2"], "--format", "executorch-fp32",
                   "--option", "min_delegated=1.0", "--calib", "digits", "--preprocess",
                   PREPROCESS, "--out", out)
    one_line_error(proc, "min_delegated=1.0", "aten_mean_dim")
    assert not out.exists() or not any(out.iterdir()), list(out.iterdir())
