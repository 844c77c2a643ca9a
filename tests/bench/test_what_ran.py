"""The "What ran" table of report.md and report.html names what really ran (this machine's
CPU model, a host over SSH, the TFLM interpreter on the host) and a load time for every
row, or why there is none; report.md's tables come from the one column spec."""

from __future__ import annotations

import numpy as np

from edgeproof.app.candidate import Candidate
from edgeproof.app.report_page import page_context
from edgeproof.bench import remote
from edgeproof.bench.one_artifact import bench_batches
from edgeproof.bench.report import build_report, to_markdown
from edgeproof.bench.row import BenchRow, failed_rows
from edgeproof.bench.runtimes.base import hardware
from edgeproof.bench.runtimes.tflm import TFLMRuntime
from edgeproof.bench.settings import BenchSettings
from edgeproof.bench.threads import Threads
from edgeproof.bench.table import BARE_LOOP, COLUMNS, MICRO, WHAT_RAN, markdown, view
from edgeproof.machine import cpu_info
from edgeproof.manifest import Manifest, Preprocessing, TensorInfo
from tests.app.test_file_info import pytorch_style_onnx


def _measured(tmp_path) -> BenchRow:
    path = pytorch_style_onnx(tmp_path / "net.onnx")
    settings = BenchSettings(batch_sizes=(1,), threads=Threads.parse("1"))
    (row,), _ = bench_batches(path, settings, report_dir=tmp_path)
    assert row.ok, row.error
    return row


def test_every_view_names_columns_of_the_one_spec():
    for keys in (WHAT_RAN, BARE_LOOP, MICRO):
        assert set(keys) <= set(COLUMNS) and len(set(keys)) == len(keys)


def test_an_onnx_runtime_row_names_the_cpu_and_its_load_time(tmp_path):
    row = _measured(tmp_path)
    assert cpu_info()["cpu"] in row.ran_on and "CPUExecutionProvider" in row.ran_on
    assert row.ran_on == f"ONNX Runtime (CPUExecutionProvider) on {hardware('cpu')}"
    assert row.load_ms is not None and row.load_ms > 0
    assert BenchRow.from_dict(row.to_dict()).ran_on == row.ran_on  # report.json keeps it


def test_report_md_what_ran_has_no_none_and_says_why_a_load_is_missing(tmp_path):
    row = _measured(tmp_path)
    failed = failed_rows("cannot load it", format="onnx-int8", runtime="onnxruntime")[0]
    report = build_report(command="edgeproof bench", dataset={}, model={}, env={},
                          results=[row, failed])
    md = to_markdown(report)
    section = md.split("## What ran")[1].split("\n\n")[1].splitlines()
    assert section == markdown([row, failed], WHAT_RAN)  # rendered through the spec
    assert section[0].startswith("| format | artifact | runtime | batch | ran on |")
    assert hardware("cpu") in section[2] and f"| {row.load_ms:.4g} |" in section[2]
    assert "not loaded: the row failed" in section[3]
    cells = [line.split(" | ") for line in section[2:]]
    assert all(c[4] != "None" and c[6] != "None" for c in cells)  # ran on, load ms


def test_the_page_shows_the_same_what_ran_columns(tmp_path):
    row = _measured(tmp_path)
    report = build_report(command=None, dataset={}, model={}, env={}, results=[row])
    ctx = page_context(report, tmp_path)
    assert ctx["what_ran"]["columns"] == [c.label for c in view(WHAT_RAN, [row])]
    texts = [text for _, text in ctx["what_ran"]["rows"][0]]
    assert row.ran_on in texts and f"{row.load_ms:.4g}" in texts


def test_a_fallback_says_what_was_asked():
    row = BenchRow(format="onnx-fp32", runtime="onnxruntime", device="cpu",
                   requested_device="cuda", fallback=True, ran_on="ONNX Runtime on X",
                   status="ok", load_ms=1.0)
    assert "(asked for cuda: fell back)" in markdown([row], WHAT_RAN)[2]


def test_tflm_says_it_is_the_host_not_a_microcontroller():
    m = Manifest(format="tflite-int8", class_names=["a"], preprocessing=Preprocessing([8, 8]),
                 input=TensorInfo("x", [1, 8, 8, 1], "int8"), output=TensorInfo("y", [1, 1]))
    text = TFLMRuntime("m.tflite", m).ran_on()
    assert "TFLM" in text and hardware("cpu") in text and "not a microcontroller" in text


def test_a_remote_row_names_the_host_over_ssh(tmp_path):
    art = tmp_path / "m.onnx"
    art.write_bytes(b"x")
    m = Manifest(format="onnx-fp32", class_names=["a", "b"], preprocessing=Preprocessing([8, 8]),
                 input=TensorInfo("x", [-1, 8, 8, 1]), output=TensorInfo("y", [-1, 2]))
    result = {"device": {"cpu": "Cortex-A72", "cores": 4},
              "results": [{"index": 0, "providers": ["CPUExecutionProvider"], "threads": 4,
                           "threads_default": False, "load_ms": 12.5, "library": "1.20",
                           "latency": {"1": {"samples_ms": [1.0, 1.1, 0.9, 1.0, 1.2, 1.05],
                                             "first_ms": 3.0}}}]}
    target = remote.Target.parse("ssh://pi@raspberrypi")
    (row,) = remote._rows(0, art, m, result, None, BenchSettings(batch_sizes=(1,)), None,
                          target, tmp_path)
    assert row.ran_on == ("ONNX Runtime (CPUExecutionProvider) on pi@raspberrypi over SSH: "
                          "Cortex-A72 (4 cores)")
    assert row.load_ms == 12.5


def test_an_optimize_candidate_keeps_what_ran():
    row = BenchRow(format="tflite-int8", runtime="litert", device="cpu", requested_device="cpu",
                   ran_on="LiteRT (XNNPACK) on Y", load_ms=2.5, status="ok", batch_size=1,
                   runtime_details={"delegate_nodes": 1, "builtin_ops": {"SOFTMAX": 1}},
                   latency_ms={"p50": 1.0}, accuracy=0.9, top1_agreement=1.0,
                   accuracy_delta=0.0)
    cand = Candidate("int8", "tflite-int", "tflite-int8")
    cand.measured(row)
    back = Candidate.from_dict(cand.to_dict())
    line = markdown([back], WHAT_RAN)[2]
    assert "LiteRT (XNNPACK) on Y" in line and "| 2.5 |" in line and "SOFTMAX 1" in line
    assert np.isclose(back.load_ms, 2.5)
