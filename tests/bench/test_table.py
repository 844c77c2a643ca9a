"""The one results table: every view names columns of the one spec; Markdown, HTML and the
console show the same labels; at 80 columns the console keeps what a reader needs first
(format, runtime, p50, status) and fits, one line per row; a failed row's status shows its
error. Rows are fixed, shaped like a default run's."""

from __future__ import annotations

import re

import pytest
from rich.console import Console

from edgeproof.bench.row import BenchRow
from edgeproof.bench.table import (COLUMNS, OPTIMIZE, RESULTS, cell, fit_columns, html_table,
                                   markdown, print_table, view)

VIEWS = {"RESULTS": RESULTS, "OPTIMIZE": OPTIMIZE}


def _typical(fmt, runtime, providers, size, p50, agree=1.0, delta=0.0, threads=2, **kw):
    lat = {"p50": p50, "p90": p50 * 1.2, "p99": p50 * 1.5, "mean": p50 * 1.05, "std": 0.01,
           "min": p50 * 0.9, "n": 812, "first_ms": p50 * 4,
           "p50_ci": [p50 * 0.98, p50 * 1.02], "p90_ci": [p50 * 1.15, p50 * 1.25]}
    base = dict(format=fmt, runtime=runtime, device="cpu", requested_device="cpu",
                providers=providers, artifact=f"models/small_cnn-{fmt}", size_bytes=size,
                accuracy=0.9722 + delta, accuracy_delta=delta, top1_agreement=agree,
                max_abs_diff=3.2e-7 if agree == 1.0 else 0.04, batch_size=1, threads=threads,
                threads_default=False, latency_ms=lat, throughput_ips=1e3 / p50, status="ok")
    return BenchRow(**{**base, **kw})


@pytest.fixture
def run_rows():
    """The four rows of `edgeproof run` with every default."""
    return [_typical("keras", "keras", ["CPU:0"], 421_113, 0.412, threads=2),
            _typical("tflite-fp32", "litert", ["XNNPACK", "CPU"], 122_464, 0.0312, threads=1),
            _typical("tflite-int8", "litert", ["XNNPACK", "CPU"], 34_520, 0.0221, agree=0.9972,
                     delta=-0.0028, threads=1),
            _typical("onnx-fp32", "onnxruntime", ["CPUExecutionProvider"], 121_877, 0.0406,
                     threads=1, threads_default=True)]


@pytest.mark.parametrize("name", sorted(VIEWS))
def test_every_view_key_is_a_column_of_the_spec(name):
    keys = VIEWS[name]
    assert keys and set(keys) <= set(COLUMNS), set(keys) - set(COLUMNS)
    assert len(set(keys)) == len(keys)  # no column twice


def test_column_labels_are_unique():
    labels = [c.label for c in COLUMNS.values()]
    assert len(set(labels)) == len(labels)


def test_markdown_html_and_console_use_the_same_labels(run_rows):
    labels = [c.label for c in view(RESULTS, run_rows)]
    md = markdown(run_rows)
    assert md[0] == "| " + " | ".join(lb.replace("|", "\\|") for lb in labels) + " |"
    assert len(md) == 2 + len(run_rows)
    headers, cells = html_table(run_rows)
    assert headers == labels and len(cells) == len(run_rows)
    assert [text for _, text in cells[2]] == [cell(run_rows[2], c) for c in view(RESULTS)]
    console = Console(width=400, record=True)
    print_table(run_rows, console=console)
    text = console.export_text()
    assert all(lb in text for lb in labels) and "not shown at this width" not in text


def test_the_device_column_appears_only_when_a_row_names_a_device(run_rows):
    assert "device_id" not in [c.key for c in view(RESULTS, run_rows)]
    remote = [r.replace(device_id="pi5") for r in run_rows]
    assert "device_id" in [c.key for c in view(RESULTS, remote)]


def test_an_80_column_terminal_gets_the_columns_a_reader_needs_first(run_rows):
    kept = [c.key for c in fit_columns(run_rows, RESULTS, 80)]
    assert {"format", "runtime", "p50", "status"} <= set(kept)
    assert kept == [k for k in RESULTS if k in kept]  # in the spec's order
    console = Console(width=80, record=True)
    print_table(run_rows, title="small_cnn on digits", console=console)
    lines = console.export_text().splitlines()
    assert max(len(line) for line in lines) <= 80, "\n".join(lines)
    for r in run_rows:  # one line per row: no cell wrapped onto a second line
        (line,) = [ln for ln in lines if re.search(rf"\b{re.escape(r.format)}\b", ln)
                   and r.runtime in ln]
        assert cell(r, COLUMNS["p50"]) in line and "ok" in line
    assert "not shown at this width" in "\n".join(lines)


def _failed():
    return BenchRow(format="onnx-int8", runtime="onnxruntime", batch_size=1, status="failed",
                    error="onnx-int8 export failed: Unsupported op Foo")


def test_a_failed_rows_status_shows_its_error(run_rows):
    failed = _failed()
    assert cell(failed, COLUMNS["status"]) == "failed: onnx-int8 export failed: Unsupported op Foo"
    assert cell(failed, COLUMNS["p50"]) == "-" and cell(failed, COLUMNS["size"]) == "-"
    assert "failed: onnx-int8 export failed: Unsupported op Foo" in markdown([failed])[-1]
    console = Console(width=160, record=True)  # what a pipe gets
    print_table(run_rows + [failed], console=console)
    (line,) = [ln for ln in console.export_text().splitlines() if "onnx-int8" in ln]
    assert "failed: onnx-int8 export failed: Unsupported op Foo" in line


def test_at_80_columns_a_failed_row_keeps_its_status(run_rows):
    rows = run_rows + [_failed()]
    assert {"format", "runtime", "p50", "status"} <= {c.key for c in fit_columns(rows, RESULTS, 80)}
    console = Console(width=80, record=True)
    print_table(rows, console=console)
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "Unsupported op Foo" in re.sub(r"[\s│┃|]+", " ", text)  # folded in its cell, not cut


def test_a_fallback_and_a_default_thread_count_say_so(run_rows):
    fell = run_rows[3].replace(fallback=True, requested_device="cuda")
    assert cell(fell, COLUMNS["status"]) == "ok (fell back to cpu)"
    assert cell(run_rows[3], COLUMNS["threads"]) == "1 (default)"
    assert cell(run_rows[1], COLUMNS["threads"]) == "1"


def test_cells_format_sizes_and_percentages(run_rows):
    int8 = run_rows[2]
    assert cell(int8, COLUMNS["size"]) == "33.7 KB"
    assert cell(int8, COLUMNS["accuracy_delta"]) == "-0.28 pt"
    assert cell(int8, COLUMNS["top1_agreement"]) == "99.72%"
    assert cell({"format": "x", "size_bytes": 3 * 2**20}, COLUMNS["size"]) == "3.0 MB"
