"""Confidence bounds and what stands on them: the Clopper-Pearson bound is scipy's exact
beta quantile, Newcombe's paired drop interval covers the true drop as often as it says
(seeded simulation), Bonferroni's level, the three answers, sized validation ("cannot
prove 99% with 360 validation images", --val-size), and the recommendation that names
its confidence and whether the test split confirms it."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import beta

from edgeproof.app.candidate import Candidate, SplitNumbers
from edgeproof.app.sizing import sizing, with_val_size
from edgeproof.bench.bounds import (PairedCounts, agreement_bounds, corrected,
                                    disagreements_allowed, drop_bounds, images_needed,
                                    provable)
from edgeproof.bench.gate import Gate
from edgeproof.bench.recommend import claim, recommend
from edgeproof.bench.row import BenchRow
from edgeproof.errors import GateUndecided, UsageError


@pytest.mark.parametrize("agree,n", [(0, 10), (7, 10), (990, 1000), (4975, 5000), (299, 299)])
def test_the_agreement_bound_is_the_exact_beta_quantile(agree, n):
    low, high = agreement_bounds(agree, n, 0.95)
    want_low = 0.0 if agree == 0 else beta.ppf(0.05, agree, n - agree + 1)
    want_high = 1.0 if agree == n else beta.ppf(0.95, agree + 1, n - agree)
    assert low == pytest.approx(want_low, abs=1e-9) and high == pytest.approx(want_high, abs=1e-9)
    assert low <= agree / n <= high


def test_more_confidence_and_fewer_images_widen_the_bound():
    assert agreement_bounds(990, 1000, 0.99)[0] < agreement_bounds(990, 1000, 0.95)[0]
    assert agreement_bounds(99, 100, 0.95)[0] < agreement_bounds(990, 1000, 0.95)[0]
    assert provable(299, 0.95) >= 0.99 > provable(298, 0.95)


def test_images_needed_and_disagreements_allowed_agree_with_the_bound():
    for floor, level in ((0.99, 0.95), (0.99, 0.9975), (0.95, 0.95)):
        n = images_needed(floor, level)
        assert agreement_bounds(n, n, level)[0] >= floor > agreement_bounds(n - 1, n - 1, level)[0]
    d = disagreements_allowed(5000, 0.99, 0.95)
    assert agreement_bounds(5000 - d, 5000, 0.95)[0] >= 0.99
    assert agreement_bounds(5000 - d - 1, 5000, 0.95)[0] < 0.99
    assert corrected(0.95, 10) == pytest.approx(0.995)


def test_the_paired_drop_interval_covers_the_true_drop_at_its_level():
    """2,000 seeded paired samples from a known table: each one-sided end misses the true
    drop at most about as often as its level allows (binomial tolerance on 2,000 draws)."""
    rng = np.random.default_rng(7)
    cells = np.array([0.85, 0.02, 0.01, 0.12])  # both right, lost, gained, both wrong
    true_drop = cells[1] - cells[2]
    sims, n, over, under = 2000, 500, 0, 0
    for table in rng.multinomial(n, cells, size=sims):
        c = PairedCounts(n, 0, int(table[0]), int(table[1]), int(table[2]))
        low, high = drop_bounds(c, 0.95)
        over += high < true_drop
        under += low > true_drop
    from scipy.stats import binom

    tolerance = binom.ppf(0.999, sims, 0.05)
    assert over <= tolerance and under <= tolerance, (over, under, tolerance)


def test_the_drop_needs_labelled_counts():
    with pytest.raises(ValueError, match="labelled"):
        drop_bounds(PairedCounts(10, 10), 0.95)


def test_three_answers_and_the_point_gate():
    gate = Gate(0.99, None)
    row = {"top1_agreement": 1.0, "parity_counts": {"n": 299, "agree": 299}}
    assert gate.verdict(row).answer == "passes"
    row298 = {"top1_agreement": 1.0, "parity_counts": {"n": 298, "agree": 298}}
    assert gate.verdict(row298).answer == "undecided"
    assert gate.verdict({"top1_agreement": 0.9,
                         "parity_counts": {"n": 298, "agree": 268}}).answer == "fails"
    point = Gate(0.99, None, mode="point").verdict(row298)
    assert point.answer == "passes" and point.basis == "point"
    # many candidates: each judged at the corrected level, so 299 images no longer prove it
    assert gate.for_candidates(20).verdict(row).answer == "undecided"


def test_sizing_refuses_a_split_too_small_to_prove_the_target():
    gate = Gate(0.99, None).for_candidates(7)
    s = sizing(gate, 360)
    assert s.needed == images_needed(0.99, gate.level) > 360 and s.allowed is None
    with pytest.raises(GateUndecided, match="cannot prove 99% with 360 validation images") as e:
        s.check(gate)
    assert e.value.exit_code == 4 and f"--val-size {s.room}" in str(e.value)
    sizing(Gate(0.99, None, mode="point").for_candidates(7), 360).check(
        Gate(0.99, None, mode="point"))  # --gate point: no refusal
    enough = sizing(gate, s.needed)
    enough.check(gate)
    assert enough.allowed == 0 and "WARNING" in enough.warning()
    assert sizing(gate, s.room).warning() is None


def test_val_size_redraws_validation_and_keeps_the_test_split():
    from edgeproof.datasets import load_dataset

    ds = load_dataset("digits")
    got = with_val_size(ds, 700, seed=3)
    assert got.split_sizes == {"train": len(ds.y_train) + len(ds.y_val) - 700, "val": 700,
                               "test": len(ds.y_test)}
    assert np.array_equal(got.x_test, ds.x_test) and got.provenance["val_size"] == 700
    assert set(np.unique(got.y_val)) == set(np.unique(ds.y_val))  # stratified: every class
    with pytest.raises(UsageError, match="--val-size must be between"):
        with_val_size(ds, len(ds.y_train) + len(ds.y_val), seed=3)


def _row(artifact, agree, n, p50):
    return BenchRow(format="onnx-int8", runtime="onnxruntime", artifact=artifact, status="ok",
                    batch_size=1, top1_agreement=agree / n, accuracy_delta=0.0, size_bytes=10,
                    latency_ms={"p50": p50, "p50_ci": [0.99 * p50, 1.01 * p50]},
                    parity_counts={"n": n, "agree": agree})


def test_the_bound_gate_does_not_ship_a_lucky_point_estimate():
    """The issue's case: 99.00% of 5,000 (a lower bound near 98.8%) passes the point gate
    and is the fastest; the bound gate picks the slower file it can prove, and says so."""
    lucky, proven = _row("lucky", 4950, 5000, 0.07), _row("proven", 4990, 5000, 0.12)
    assert recommend([lucky, proven], Gate(0.99, None, mode="point")).artifact == "lucky"
    rec = recommend([lucky, proven], Gate(0.99, None).for_candidates(2))
    assert rec.artifact == "proven" and rec.confidence == 0.95
    assert rec.agreement_low >= 0.99 and "with 95% confidence; measured 99.80% on 5,000" in rec.why
    text = claim(proven, Gate(0.99, None))["text"]
    assert text.startswith("agrees on >= 99.") and "of new images with 95% confidence" in text


def test_the_test_split_recheck_says_whether_it_confirms_the_pick(monkeypatch, tmp_path):
    """After selection each candidate's test numbers carry the gate's verdict and bounds,
    and the recommendation says whether the test split confirms it."""
    import edgeproof.app.optimize as opt
    from edgeproof.datasets import load_dataset

    ds = load_dataset("digits")
    ref = np.eye(10)[ds.y_test]
    wrong = ref.copy()
    wrong[:20] = np.roll(wrong[:20], 1, axis=1)  # 20 of 360 answered differently
    answers = {"same.onnx": ref, "off.onnx": wrong}
    monkeypatch.setattr(opt, "reference_probs", lambda *a, **k: ref)
    monkeypatch.setattr(opt, "probs_on_test_split", lambda path, *a, **k: answers[path.name])
    cands = [Candidate(name, "f", "onnx-int8", status="ok", artifact=name,
                       latency_ms={"p50": 1.0}) for name in answers]
    gate = Gate(0.99, None).for_candidates(2)
    opt.add_test_numbers(cands, ds, None, None, tmp_path, "same.onnx", gate=gate)
    same, off = cands
    assert same.test.verdict.answer == "passes" and same.test.verdict.level == 0.95
    assert off.test.verdict.answer == "fails" and off.test.verdict.agreement_high < 0.99
    row = same.to_dict()  # optimize.json's row: the test split's numbers at its top level
    assert row["verdict"]["agreement_low"] >= 0.99 and row["parity_counts"]["n"] == 360
    assert opt.recheck_on_test(same, gate)["confirmed"] is True
    check = opt.recheck_on_test(off, gate)
    assert check["confirmed"] is False and "contradicts it" in check["text"]


def test_an_undecided_best_says_how_many_images_would_decide_it():
    """On 360 images nothing can prove 99%: the note names the closest and the count that
    would (checked against images_needed at its agreement); a failing row gets no hint."""
    from edgeproof.bench.recommend import recommendation_note

    def row(agree):
        return BenchRow(format="tflite-int8", runtime="litert", status="ok", batch_size=1,
                        top1_agreement=agree / 360, accuracy_delta=0.0, size_bytes=10,
                        latency_ms={"p50": 0.5}, accuracy=0.9, artifact="m.tflite",
                        parity_counts={"n": 360, "agree": agree})

    note = recommendation_note([row(359)], Gate(0.99, None))
    need = images_needed(0.99, 0.95, 359 / 360)
    assert need > 360 and "360 images cannot prove the agreement" in note, note
    assert f"at least {need:,}" in note, note
    assert "cannot prove" not in recommendation_note([row(340)], Gate(0.99, None))  # fails
    assert "cannot prove" not in recommendation_note([row(359)], Gate(0.99, None, mode="point"))
