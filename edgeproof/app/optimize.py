"""`edgeproof optimize`: the fastest export that keeps its accuracy, and what it leaves.

The search (``app.ladder``) sees the train and validation splits only. Before it, the
validation split is sized (``app.sizing``): a split too small for the gate to prove the
target at all ends the command (GateUndecided, exit 4: "cannot prove 99% with 360
validation images"). The gate judges each rung on its bounds at ``confidence`` corrected
for every rung the ladders hold (Bonferroni: ``OptimizeConfig.gate``), so the chance that
the pick fails on new data is at most ``1 - confidence``. After the search every
candidate gets its test-split numbers, the recommendation is the fastest that passed on
validation and says whether the test split confirms it (``test_check``), and the run
writes ``DIR/optimize.json`` (candidates with validation and
test numbers, the Pareto front, the recommendation), ``DIR/optimize.md``, the plots,
``DIR/report.html`` and the recommended artifact with its manifest under ``DIR/models/``.

Example:
    >>> result = optimize(OptimizeConfig("model9.keras", "cifar10.npz", "runs/opt"))  # doctest: +SKIP
    >>> result["recommendation"]["format"]  # doctest: +SKIP
    'onnx-int8'
"""

from __future__ import annotations

import datetime as _dt
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeproof import __version__
from edgeproof.app.candidate import Candidate, SplitNumbers
from edgeproof.app.ladder import ladders, search, without_test
from edgeproof.app.reference_answers import reference_probs
from edgeproof.app.reporting import write_outputs
from edgeproof.app.sizing import sizing, with_val_size
from edgeproof.atomic import atomic_copy, ensure_writable_dir
from edgeproof.bench.isolate import run_isolated
from edgeproof.bench.one_artifact import bench_artifact
from edgeproof.bench.env import environment
from edgeproof.bench.bounds import DEFAULT_CONFIDENCE, PairedCounts
from edgeproof.bench.gate import DEFAULT_MAX_ACCURACY_DROP, DEFAULT_MIN_AGREEMENT, Gate
from edgeproof.bench.plots import pareto_front_3d
from edgeproof.bench.recommend import Recommendation, claim, closest, recommend
from edgeproof.bench.settings import BenchSettings, EvalData
from edgeproof.bench.table import OPTIMIZE, markdown, notes
from edgeproof.datasets import Dataset, load_dataset
from edgeproof.errors import DataError, GateFailed, GateUndecided, RuntimeFailure, first_line
from edgeproof.export.context import (DEFAULT_CALIB_SIZE, calib_size_for, calibration_context,
                                      context_for_model)
from edgeproof.reference import load_reference
from edgeproof.manifest import manifest_path


TEST_PASS_SHARE = 0.2  # of --budget-minutes kept for the test-split pass after the search


@dataclass
class OptimizeConfig:
    """The ``edgeproof optimize`` flags as fields (drops and agreement as fractions).

    Example:
        >>> cfg = OptimizeConfig("m.keras", "digits", "out")
        >>> cfg.gate == Gate().for_candidates(cfg.rungs)
        True
    """

    model: str
    dataset: str
    out: str
    max_accuracy_drop: float = DEFAULT_MAX_ACCURACY_DROP
    min_agreement: float = DEFAULT_MIN_AGREEMENT
    device: str = "cpu"
    formats: tuple[str, ...] | None = None
    budget_minutes: float | None = None
    allow_qat: bool = True  # quantization-aware fine-tuning as a rung (--no-qat: off)
    exhaustive: bool = False
    seed: int = 0
    calib_size: int | None = None  # None: 200, or the whole train split when smaller
    large_calib_size: int = 1000
    preprocess: dict = field(default_factory=dict)
    command: str | None = None
    target: str = "host"  # mcu: full-integer rungs on TFLM, ranked by MACs (app.target)
    ram_budget: int | None = None  # bytes of tensor arena (part of the gate)
    flash_budget: int | None = None  # bytes of file (part of the gate)
    confidence: float = DEFAULT_CONFIDENCE
    gate_mode: str = "bound"  # --gate: bound | point
    val_size: int | None = None  # validation images, drawn from train + validation

    @property
    def rungs(self) -> int:
        """How many candidates the ladders hold (tried or not, less those skipped before the
        search for the reference's kind or this machine): what the gate corrects for."""
        return sum(not r.skip for v in ladders(self).values() for r in v)

    @property
    def gate(self) -> Gate:
        """The search's gate: the limits and budgets, at ``confidence`` over every rung
        (Bonferroni; the number is known before the search, so no decision is revised)."""
        return Gate(self.min_agreement, self.max_accuracy_drop, self.ram_budget,
                    self.flash_budget, self.confidence, self.gate_mode).for_candidates(self.rungs)


def probs_on_test_split(path: Path, data: EvalData, workers: int, runtime: str | None = None):
    """An artifact's probabilities on the test split, the images shared among ``workers``.

    This pass is not timed, so it may use every core: one single-threaded interpreter per
    share. It matters for artifacts on single-threaded kernels (int16x8 TFLite runs on
    LiteRT's reference kernels, about 30 ms per CIFAR-10 image): N cores, N times faster.

    Example:
        >>> probs = probs_on_test_split(Path("m.tflite"), EvalData(x, y, ref), 2)  # doctest: +SKIP
    """
    settings = BenchSettings(threads="1", latency=False, runtime=runtime)  # as it was chosen

    def share(idx):
        # each share in its own spawned process, as the search's workers: runtimes are not
        # all thread-safe beside each other in one process (ExecuTorch, OpenVINO, LiteRT
        # and PyTorch with JAX loaded crashed this process now and then, exit 139)
        row, probs = run_isolated(bench_artifact, path, settings, data.subset(idx))
        if not row.ok or probs is None:
            raise RuntimeFailure(row.error or f"{path.name}: no probabilities")
        return probs

    shares = [i for i in np.array_split(np.arange(len(data.images)), workers) if len(i)]
    with ThreadPoolExecutor(len(shares)) as pool:
        return np.concatenate(list(pool.map(share, shares)))


def add_test_numbers(candidates: list[Candidate], ds: Dataset, model, preprocessing, out: Path,
                     first: str | None = None, deadline: float | None = None,
                     gate: Gate | None = None):
    """After selection: each candidate's accuracy, delta and agreement on the test split
    (with ``gate``, its verdict and bounds there, each file judged alone).

    The ``first`` artifact (the recommendation) is always done first; the others follow,
    fastest first, until ``deadline`` (``time.time()``), after which a candidate says its
    test numbers were left out for the time budget.
    """
    ref = reference_probs(model, ds, preprocessing=preprocessing)
    reference_accuracy = float((ref.argmax(1) == ds.y_test).mean())
    data, workers = EvalData(ds.x_test, ds.y_test, ref), max(1, os.cpu_count() or 1)
    measured = sorted((c for c in candidates if c.ok),
                      key=lambda c: (c.artifact != first, c.p50 or float("inf")))
    for c in measured:
        if deadline and time.time() > deadline and c.artifact != first:
            c.say("test split: left out (time budget)")
            continue
        try:
            top = probs_on_test_split(out / c.artifact, data, workers, c.runtime).argmax(1)
        except RuntimeFailure as e:  # it passed validation in its worker; say what broke
            c.say(f"test split: {first_line(e)}")
            continue
        accuracy = float((top == ds.y_test).mean())
        c.test = SplitNumbers(accuracy, accuracy - reference_accuracy,
                              float((top == ref.argmax(1)).mean()),
                              PairedCounts.from_predictions(ref.argmax(1), top,
                                                            ds.y_test).to_dict())
        if gate is not None:
            c.test.verdict = gate.for_candidates(1).verdict(c.test_row(), budgets=False)
    return reference_accuracy


def select(candidates: list[Candidate], gate: Gate, target: str = "host") \
        -> Recommendation | None:
    """The recommendation, chosen once: the fastest candidate that passed on validation
    (ties as ``bench.recommend`` says; ``mcu``: the fewest MACs, then arena + flash). It
    carries its rung and validation numbers; its own numbers are the candidate's test
    numbers (None before the test pass: ``with_test_numbers`` copies them in after it)."""
    choice = recommend([c.validation_row() for c in candidates if c.passed and c.ok], gate,
                       target)
    if choice is None:
        return None
    final = next(c for c in candidates if c.artifact == choice.artifact)
    return with_test_numbers(choice.replace(rung=final.rung,
                                            validation=final.validation.to_dict()), candidates)


def with_test_numbers(rec: Recommendation, candidates: list[Candidate],
                      gate: Gate | None = None) -> Recommendation:
    """``rec`` reported with its candidate's test-split numbers, and, given the search's
    ``gate``, whether the test split confirms it (``test_check``)."""
    final = next(c for c in candidates if c.artifact == rec.artifact)
    rec = rec.replace(accuracy=final.accuracy, accuracy_delta=final.accuracy_delta,
                      top1_agreement=final.top1_agreement)
    return rec if gate is None or final.test is None else \
        rec.replace(test_check=recheck_on_test(final, gate))


def recheck_on_test(cand: Candidate, gate: Gate) -> dict:
    """What the test split says of the chosen candidate: the gate's answer on its test
    numbers (one candidate, chosen beforehand: no correction), ``confirmed`` when it
    passes, and a sentence.

    Example:
        >>> c = Candidate("r", "f", "tflite-int8", status="ok", artifact="a",
        ...               test=SplitNumbers(0.9, 0.0, 0.995, {"n": 5000, "agree": 4975}))
        >>> check = recheck_on_test(c, Gate(0.99, None).for_candidates(20))
        >>> check["confirmed"], check["text"].split(": ")[1]
        (True, 'agrees on >= 99.30% of new images with 95% confidence; measured 99.50% on 5,000')
    """
    once = gate.for_candidates(1)
    row = cand.test_row()
    v = once.verdict(row)
    said = {"passes": "confirms it", "fails": "contradicts it (fails the gate)",
            "undecided": "does not confirm it (undecided)"}[v.answer]
    text = f"the test split {said}: {claim(row, once)['text']}"
    if v.answer != "passes":
        text += f" ({'; '.join(v.reasons)})"
    return {"answer": v.answer, "confirmed": v.answer == "passes", "text": text,
            "verdict": v.to_dict()}


def load_inputs(cfg: OptimizeConfig):
    """(model, dataset, dataset without its test split, context factory), with the errors
    a user can act on.

    The model is any kind the core loader takes (tf-keras, Keras 3, SavedModel, ONNX); the
    ladder gets what converters take (``Reference.exportable``), and a rung a kind cannot
    make (TFLite from ONNX, QAT from anything but tf-keras) fails and the ladder goes on.
    """
    ref = load_reference(cfg.model)
    probe, _ = context_for_model(ref, cfg.model, None, cfg.calib_size, cfg.seed, cfg.preprocess)
    ds = load_dataset(cfg.dataset, probe.preprocessing.size[0], cfg.seed)
    n_out, channels = ref.num_classes, ref.input_shape[-1]
    if n_out != ds.num_classes:
        raise DataError(f"{cfg.model} has {n_out} outputs but {cfg.dataset} has {ds.num_classes} "
                        "classes: optimize on the dataset the model was trained on.")
    if cfg.val_size is not None:  # --val-size: validation re-drawn from train + validation
        ds = with_val_size(ds, cfg.val_size, cfg.seed)
    # the shared preprocessing converts channels (grey to RGB) when the model's colour says so
    if ds.input_shape[-1] != channels and probe.preprocessing.channels != channels:
        raise DataError(f"{cfg.dataset} has {ds.input_shape[-1]} channel(s); the model takes "
                        f"{channels}.")
    if not len(ds.y_train) or not len(ds.y_val):
        raise DataError(f"{cfg.dataset} has no train or validation images: optimize needs "
                        "train (calibration) and validation (selection) splits.")
    calib_size_for(cfg.calib_size, len(ds.y_train), ds.name)  # an explicit size too big: now
    search_ds = without_test(ds)

    def ctx_of(n: int | None):  # None: the default size (a float rung calibrates nothing)
        n = DEFAULT_CALIB_SIZE if n is None else n
        ctx = calibration_context(search_ds, min(n, len(search_ds.y_train)), cfg.seed,
                                  probe.source)
        ctx.class_names, ctx.preprocessing = probe.class_names, probe.preprocessing
        return ctx

    return ref.exportable, ds, search_ds, ctx_of


def pareto(candidates: list[Candidate]) -> list[str]:
    """Artifacts no other candidate beats on test accuracy, p50 and size together."""
    ok = [c for c in candidates if c.ok and c.accuracy is not None]
    pts = [(c.p50, c.accuracy, c.size_bytes or 0) for c in ok]
    return [ok[i].artifact for i in pareto_front_3d(pts)]


def to_markdown(result: dict) -> str:
    """optimize.md: the recommendation, then every rung tried with its numbers."""
    rec, g = result["recommendation"], Gate(**{k: v for k, v in result["gate"].items()
                                               if k in Gate.__dataclass_fields__})
    size = result.get("sizing") or {}
    lines = [f"# edgeproof optimize — {result['model']} on {result['dataset']['name']}", "",
             f"Gate: {g.describe()}, decided {g.basis()}, checked on the validation split "
             f"({size.get('images', '?'):,} images); the numbers below are on the test split. "
             f"Command: `{result['command']}`", ""]
    lines += [f"**{w}**" for w in result.get("warnings") or []]
    lines += [""] if result.get("warnings") else []
    if rec:
        check = (rec.get("test_check") or {}).get("text")
        lines += [f"**Ship {rec['format']}** (`models/{Path(rec['artifact']).name}`, rung "
                  f"\"{rec['rung']}\"): {rec['why']}. Test: accuracy "
                  f"{100 * rec['accuracy']:.2f}% ({100 * rec['accuracy_delta']:+.2f} pt), top-1 "
                  f"agreement {100 * rec['top1_agreement']:.2f}%"
                  + (f"; {check}." if check else "."), ""]
    else:
        lines += [f"**No candidate is proven to pass.** {result['note']}", ""]
    lines += markdown(result["candidates"], OPTIMIZE)
    said = notes(result["candidates"])  # TFLM's host latency, measured vs computed arenas
    lines += ([""] + said) if said else []
    if result["budget_stopped"]:
        lines += ["", "The time budget stopped the search; the rungs above are what was tried."]
    return "\n".join(lines) + "\n"


def _write(result: dict, out: Path) -> None:
    rec = result["recommendation"]
    if rec:  # the recommended artifact and its manifest, under models/
        src = out / rec["artifact"]
        (out / "models").mkdir(exist_ok=True)
        for p in (src, manifest_path(src)):
            atomic_copy(p, out / "models" / p.name)
    page = {**result, "title": f"edgeproof optimize — {result['model']}",
            "edgeproof_version": __version__, "recommendation_note": result.get("note")}
    rows = [c for c in result["candidates"] if c.get("status") == "ok"]
    write_outputs(page, out, rows, keys=OPTIMIZE, name="optimize", markdown=to_markdown(result))


def optimize(cfg: OptimizeConfig, status=None, progress=None) -> dict:
    """Size the validation split, search, select, report. Raises GateUndecided (exit 4)
    before the search when the split is too small to prove the target; after writing
    everything, GateFailed (exit 1) when every candidate fails, GateUndecided when none
    passes and some are undecided (the note names the closest candidate and its numbers).
    """
    say = status or (lambda msg: None)
    t0 = time.perf_counter()
    out = ensure_writable_dir(Path(cfg.out))
    say(f"loading {cfg.model} and {cfg.dataset}")
    model, ds, search_ds, ctx_of = load_inputs(cfg)
    size = sizing(cfg.gate, len(search_ds.y_val))
    say(size.describe())
    size.check(cfg.gate)  # too few images to prove anything: say so instead of picking
    warnings = [w for w in [size.warning()] if w]
    for w in warnings:
        say(w)
    # --budget-minutes covers the whole command: the search keeps a share of it for the
    # test-split pass, which does the recommendation first and the rest while time is left.
    deadline = time.time() + 60 * cfg.budget_minutes if cfg.budget_minutes else None
    candidates, stopped = search(model, ctx_of, search_ds, cfg, out, progress,
                                 deadline and deadline - TEST_PASS_SHARE * 60 * cfg.budget_minutes)
    say("test-split numbers of the candidates (after selection)")
    rec = select(candidates, cfg.gate, cfg.target)
    ref_acc = add_test_numbers(candidates, ds, model, ctx_of(1).preprocessing, out,
                               rec and rec.artifact, deadline, cfg.gate)
    rec = rec and with_test_numbers(rec, candidates, cfg.gate)
    near = closest([c.validation_row() for c in candidates if c.ok], cfg.gate, cfg.target)
    unsure = [c for c in candidates if c.validation and c.validation.verdict
              and c.validation.verdict.answer == "undecided"]
    result = {"command": cfg.command, "created": _dt.datetime.now().isoformat(timespec="seconds"),
              "model": Path(cfg.model).name, "dataset": ds.summary(),
              "reference_accuracy": ref_acc, "budget_stopped": stopped,
              "gate": {**cfg.gate.to_dict(), "split": "validation"}, "target": cfg.target,
              "sizing": size.to_dict(), "warnings": warnings,
              "candidates": [c.to_dict() for c in candidates], "pareto": pareto(candidates),
              "recommendation": rec and rec.to_dict(),
              "note": None if rec else _note(unsure, near),
              "env": environment(), "seconds": round(time.perf_counter() - t0, 1)}
    _write(result, out)
    if rec is None:
        raise (GateUndecided if unsure else GateFailed)(result["note"])
    return result


def _note(unsure: list[Candidate], near: str) -> str:
    """Why there is no recommendation: nothing passes, or nothing is proven to."""
    if not unsure:
        return f"No candidate passes the gate; {near}."
    return (f"No candidate is proven to pass the gate: {len(unsure)} undecided on validation "
            f"(more validation images decide them: --val-size); {near}.")
