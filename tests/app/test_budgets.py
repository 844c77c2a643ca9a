"""Memory budgets and --target mcu: fitting is part of the one gate ("arena 310 KB > 256 KB
budget"), the recommendation changes when a candidate does not fit, TFLM rows never enter
the host's speed ranking, the mcu ranking is by MACs then arena + flash and says so, and
optimize under --target mcu climbs only full-integer TFLite rungs. Rows are made up: no
model is trained or converted here."""

from __future__ import annotations

import pytest

from edgeproof.app.candidate import Candidate
from edgeproof.app.ladder import ladders
from edgeproof.app.optimize import OptimizeConfig, select
from edgeproof.app.reporting import decide
from edgeproof.app.target import rungs_for_target, runtime_for_target
from edgeproof.bench.gate import Gate, parse_bytes
from edgeproof.bench.recommend import closest, infer_target, recommend
from edgeproof.bench.row import BenchRow
from edgeproof.errors import UsageError

KB = 1024


def _row(fmt, runtime, p50, size, arena=None, macs=None, agree=1.0, kind="measured"):
    micro = None if arena is None else {"arena_bytes": arena, "arena_kind": kind,
                                        "flash_bytes": size, "macs": macs}
    return BenchRow(format=fmt, runtime=runtime, status="ok", batch_size=1,
                    top1_agreement=agree, accuracy_delta=0.0, accuracy=0.9, size_bytes=size,
                    artifact=f"{fmt}-{runtime}-{p50}", micro=micro,
                    latency_ms={"p50": p50, "p50_ci": [p50 * 0.99, p50 * 1.01]})


@pytest.mark.parametrize("text,want", [("256KB", 262144), ("256 KiB", 262144), ("1MB", 1 << 20),
                                       ("1.5 MiB", 1572864), ("4096", 4096), ("512B", 512),
                                       ("64kb", 65536)])
def test_sizes_parse_with_binary_units(text, want):
    assert parse_bytes(text) == want


@pytest.mark.parametrize("text", ["", "256 GB", "-1KB", "KB", "0"])
def test_a_bad_size_is_one_line_naming_the_units(text):
    with pytest.raises(UsageError, match=r"KB = KiB = 1024 bytes") as e:
        parse_bytes(text, "--ram-budget")
    assert "\n" not in str(e.value)


def test_a_candidate_over_budget_fails_the_gate_saying_by_how_much():
    gate = Gate(0.99, 0.005, ram_budget=256 * KB, flash_budget=1024 * KB)
    big = _row("tflite-int8", "tflm", 30.0, 900 * KB, arena=310 * KB, macs=10)
    assert gate.failures(big) == ["arena 310 KB > 256 KB budget (54 KB over)"]
    assert gate.failures(big.to_dict()) == gate.failures(big)  # a report.json row alike
    fat = _row("tflite-int8", "tflm", 30.0, 1200 * KB, arena=100 * KB, macs=10)
    assert gate.failures(fat) == ["flash 1.17 MB > 1 MB budget (176 KB over)"]
    computed = _row("tflite-fp16", "litert", 1.0, 100 * KB, arena=300 * KB, kind="computed")
    assert gate.failures(computed) == ["arena 300 KB (computed) > 256 KB budget (44 KB over)"]
    onnx = _row("onnx-int8", "onnxruntime", 1.0, 100 * KB)
    assert gate.failures(onnx)[0].startswith("no arena figure for the RAM budget")
    assert gate.describe().endswith("arena <= 256 KB, flash <= 1 MB")
    limits = {k: v for k, v in Gate().to_dict().items()
              if k in ("min_agreement", "max_accuracy_drop", "ram_budget", "flash_budget")}
    assert limits == {"min_agreement": 0.99, "max_accuracy_drop": 0.005}  # budgets when set
    assert gate.to_dict()["ram_budget"] == 256 * KB


def test_the_recommendation_changes_when_the_fastest_does_not_fit():
    fast = _row("tflite-int8", "litert", 0.5, 600 * KB, arena=400 * KB, kind="computed")
    slow = _row("tflite-int16x8", "litert", 2.0, 300 * KB, arena=200 * KB, kind="computed")
    assert recommend([fast, slow], Gate()).format == "tflite-int8"
    fitted = recommend([fast, slow], Gate(ram_budget=256 * KB))
    assert fitted.format == "tflite-int16x8"
    assert "arena <= 256 KB" in fitted.why
    none = decide([fast], Gate(ram_budget=256 * KB), enforced=False)
    assert none["recommendation"] is None
    assert "arena 400 KB (computed) > 256 KB budget (144 KB over)" in none["recommendation_note"]


def test_tflm_rows_are_kept_out_of_the_host_ranking():
    host = _row("tflite-int8", "litert", 0.05, 100 * KB)
    micro = _row("tflite-int8", "tflm", 0.01, 100 * KB, arena=20 * KB, macs=1000)
    assert recommend([host, micro], Gate()).runtime == "litert"
    assert infer_target([host, micro]) == "host" and infer_target([micro]) == "mcu"
    assert recommend([micro], Gate()) is None  # the host target has no candidate
    assert decide([micro], Gate(), enforced=False)["recommendation"]["runtime"] == "tflm"


def test_the_mcu_ranking_is_macs_then_arena_plus_flash_and_says_so():
    cheap = _row("tflite-int8", "tflm", 9.0, 300 * KB, arena=60 * KB, macs=1_000_000)
    pricey = _row("tflite-int8", "tflm", 1.0, 100 * KB, arena=20 * KB, macs=5_000_000)
    small = _row("tflite-int8", "tflm", 9.5, 200 * KB, arena=50 * KB, macs=1_000_000)
    rec = recommend([cheap, pricey, small], Gate(), "mcu")
    assert rec.artifact == small.artifact  # fewest MACs, then the smaller arena + flash
    assert rec.micro.macs == 1_000_000 and rec.target == "mcu"
    assert "fewest multiply-accumulates" in rec.why and "host latency" in rec.why
    over = recommend([cheap, pricey, small], Gate(ram_budget=40 * KB), "mcu")
    assert over.artifact == pricey.artifact  # the only one that fits
    note = closest([cheap, small], Gate(ram_budget=40 * KB), "mcu")
    assert "tflite-int8/tflm" in note and "arena 50 KB > 40 KB budget (10 KB over)" in note


def test_optimize_for_a_microcontroller_climbs_full_integer_tflite_rungs_only():
    cfg = OptimizeConfig("m.keras", "digits", "out", target="mcu", ram_budget=256 * KB)
    rungs = [r for family in ladders(cfg).values() for r in family]
    assert {r.format for r in rungs} == {"tflite-int8", "tflite-int16x8", "tflite-qat-int8"}
    no_qat = OptimizeConfig("m.keras", "digits", "out", target="mcu", allow_qat=False)
    assert "tflite-qat-int8" not in {r.format for f in ladders(no_qat).values() for r in f}
    assert not any(r.keep_float for r in rungs)
    assert cfg.gate.ram_budget == 256 * KB
    host = ladders(OptimizeConfig("m.keras", "digits", "out"))
    assert rungs_for_target(host, "host") is host and "onnx-int" in host
    assert runtime_for_target("mcu", "c/x.tflite") == "tflm"
    assert runtime_for_target("mcu", "c/x.onnx") is None


def test_select_under_mcu_takes_the_fewest_macs_that_fit():
    def cand(name, macs, arena, passed=True):
        return Candidate.from_dict({
            "rung": name, "family": "tflite-int", "format": "tflite-int8", "runtime": "tflm",
            "status": "ok", "passed": passed, "artifact": f"candidates/{name}.tflite",
            "threads": 1, "size_bytes": 50 * KB, "latency_ms": {"p50": 5.0},
            "micro": {"arena_bytes": arena, "flash_bytes": 50 * KB, "macs": macs,
                      "arena_kind": "measured"},
            "validation": {"accuracy": 0.9, "accuracy_delta": 0.0, "top1_agreement": 1.0},
            "accuracy": 0.89, "accuracy_delta": -0.001, "top1_agreement": 0.995})

    cands = [cand("a", 2_000_000, 30 * KB), cand("b", 1_000_000, 40 * KB),
             cand("c", 500_000, 300 * KB, passed=False)]
    rec = select(cands, Gate(ram_budget=256 * KB), "mcu")
    assert rec.rung == "b" and rec.accuracy == 0.89  # reported with test numbers
