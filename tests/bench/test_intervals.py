"""Every latency carries an interval, and nothing is called faster within noise: the
order-statistic interval covers the true quantile about 95% of the time (synthetic
samples, fixed seeds), overlapping intervals tie (to the more accurate one, then the
smaller file, then fewer dependencies), the thread sweep's own measurement widens the
interval, and an A/A run (one artifact listed twice) is a tie."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgeproof.bench.gate import Gate
from edgeproof.bench.measure import LatencyStats
from edgeproof.bench.recommend import interval, recommend
from edgeproof.bench.row import BenchRow
from edgeproof.bench.stats import faster, quantile_ci, quantile_ranks
from tests.helpers import run_cli


@pytest.mark.parametrize("q,n", [(0.5, 30), (0.5, 400), (0.9, 60), (0.9, 400)])
def test_the_interval_covers_the_quantile_about_95_percent_of_the_time(q, n):
    rng = np.random.default_rng(1)
    true = float(np.quantile(rng.lognormal(0.0, 0.5, 2_000_000), q))
    hits = sum(lo <= true <= hi for lo, hi in
               (quantile_ci(rng.lognormal(0.0, 0.5, n), q) for _ in range(1000)))
    _, _, promised = quantile_ranks(n, q)
    assert promised >= 0.95 and 0.93 <= hits / 1000 <= min(0.995, promised + 0.03)


def test_too_few_samples_say_so():
    assert quantile_ranks(3, 0.5) == (1, 3, 0.75)  # the whole range, and less than 95%


def test_every_row_latency_has_its_intervals():
    stats = LatencyStats.from_samples(np.random.default_rng(0).gamma(5.0, 0.02, 500))
    d = stats.to_dict()
    assert d["p50_ci"][0] <= d["p50"] <= d["p50_ci"][1]
    assert d["p90_ci"][0] <= d["p90"] <= d["p90_ci"][1]


def _row(artifact, p50, ci, size=100, runtime="litert"):
    return BenchRow(format="tflite-int8", runtime=runtime, artifact=artifact, status="ok",
                    batch_size=1, top1_agreement=1.0, accuracy_delta=0.0, size_bytes=size,
                    latency_ms={"p50": p50, "p50_ci": ci})


def test_overlapping_intervals_tie_and_the_tie_goes_to_the_smaller_file():
    a, b = _row("a", 1.00, [0.97, 1.05], size=200), _row("b", 1.03, [1.01, 1.06], size=100)
    rec = recommend([a, b], Gate())
    assert rec.artifact == "b" and "within noise" in rec.why and rec.tied == ["a"]


def test_a_tie_goes_to_the_more_accurate_one_before_the_smaller_file():
    """Overlapping latency intervals are a tie, and the tie goes to the higher lower
    bound of agreement: the quicker, smaller file that agrees less is not the pick."""
    counts = {"n": 2000, "agree": 1990}
    quick = _row("quick", 1.00, [0.97, 1.05], size=100).replace(
        top1_agreement=0.995, parity_counts=counts)
    sure = _row("sure", 1.03, [1.01, 1.06], size=200).replace(
        top1_agreement=1.0, parity_counts={"n": 2000, "agree": 2000})
    rec = recommend([quick, sure], Gate(0.99, None))
    assert rec.artifact == "sure" and rec.tied == ["quick"], rec.why
    assert "higher agreement bound" in rec.why
    apart = sure.replace(latency_ms={"p50": 2.0, "p50_ci": [1.9, 2.1]})
    assert recommend([quick, apart], Gate(0.99, None)).artifact == "quick"  # no tie: speed


def test_a_tie_of_equal_files_goes_to_the_runtime_with_fewer_dependencies():
    a = _row("a.onnx", 1.00, [0.97, 1.05], runtime="onnxruntime")
    b = _row("b.tflite", 1.02, [0.99, 1.06], runtime="litert")
    assert recommend([a, b], Gate()).artifact == "b.tflite"


def test_intervals_apart_say_faster():
    a, b = _row("a", 1.0, [0.98, 1.02], size=500), _row("b", 2.0, [1.9, 2.1], size=1)
    rec = recommend([a, b], Gate())
    assert rec.artifact == "a" and "faster than the next" in rec.why
    assert faster((0.98, 1.02), (1.9, 2.1)) and not faster((0.98, 1.02), (1.0, 2.1))


def test_the_thread_sweeps_measurement_widens_the_interval():
    row = _row("a", 0.0226, [0.0226, 0.0226]).replace(
        thread_sweep={"threads": 2, "batch_size": 1, "p50_ms": {"1": 0.018, "2": 0.0123}})
    assert interval(row) == (0.0123, 0.0226)


@pytest.mark.slow
def test_an_a_a_run_is_a_tie(tiny_exports, tmp_path):
    """One artifact listed twice is one configuration measured twice: by the tie rule
    (``recommend.interval``, widened to every process's p50 with ``--repeat``, interleaved
    A B A B …) the two rows overlap, so the recommendation says "within noise", names the
    other row as tied, and never "faster than the next"."""
    art = tiny_exports["tflite-int8"]
    r = run_cli("bench", art, art, "--dataset", "digits", "--limit", "100", "--reference",
                tiny_exports["keras"], "--min-agreement", "0", "--repeat", "3", "--min-runs", "20",
                "--min-seconds", "0.1", "--json", tmp_path / "aa.json")
    assert r.returncode == 0, r.stderr[-2000:]
    report = json.loads((tmp_path / "aa.json").read_text())
    rows = [BenchRow.from_dict(x) for x in report["results"]]
    assert len(rows) == 2 and all(x.ok for x in rows), [x.error for x in rows]
    assert rows[0].artifact == rows[1].artifact
    assert all(len(x.latency_ms["repeats"]["p50_ms"]) == 3 for x in rows)
    assert not faster(interval(rows[0]), interval(rows[1]))
    assert not faster(interval(rows[1]), interval(rows[0]))
    rec = report["recommendation"]
    assert "within noise" in rec["why"] and "faster than the next" not in rec["why"], rec["why"]
    assert rec["tied"] == [rows[0].artifact], rec
