"""`edgeproof export` as a library call: a user's model → each format, each checked.

The model is any reference kind the core loader takes (``edgeproof.reference``): a tf-keras
or Keras 3 file, a SavedModel folder or an ONNX file; each format converts from it as the
format table says (a format a kind cannot make is that format's one-line error).

Exporting is the export package's job and checking is the bench's; this module (the
application layer) combines them: with a calibration dataset every written export is
run on its runtime over the test split and compared with the source model, and the
gate (``min_agreement`` / ``max_accuracy_drop``, decided on their bounds at
``confidence``, ``bench.gate``) turns an export that fails into ``GateFailed`` (exit 1)
and one it cannot decide into ``GateUndecided`` (exit 4).

Example:
    >>> result = export_and_check(ExportConfig("m.keras", ["tflite-int8"], "out",
    ...                                        calib="digits"))  # doctest: +SKIP
    >>> result.rows[0]["top1_agreement"]  # doctest: +SKIP
    0.9972
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from edgeproof.app.reference_answers import reference_probs
from edgeproof.app.reporting import write_json
from edgeproof.atomic import ensure_writable_dir
from edgeproof.bench.one_artifact import bench_artifact
from edgeproof.bench.bounds import DEFAULT_CONFIDENCE
from edgeproof.bench.gate import Gate, judge_rows
from edgeproof.bench.parity import chance_warning
from edgeproof.bench.row import BenchRow
from edgeproof.bench.settings import BenchSettings, EvalData
from edgeproof.errors import EdgeproofError, GateFailed, GateUndecided, UsageError
from edgeproof.export.context import context_for_model
from edgeproof.export.formats import ExportOutcome, export_formats, get_format
from edgeproof.export.quant_debug import write_debug_report
from edgeproof.export.torch_onnx import batch_check
from edgeproof.reference import load_reference
from edgeproof.reference_torch import TORCH_KINDS


@dataclass
class ExportConfig:
    """The ``edgeproof export`` flags as fields (see ``edgeproof export --help``)."""

    model: str
    formats: list[str]
    out: str
    calib: str | None = None
    calib_size: int | None = None  # None: 200, or the whole train split when smaller
    seed: int = 0
    options: dict = field(default_factory=dict)
    class_names: list[str] | None = None
    preprocess: dict = field(default_factory=dict)
    name: str | None = None
    min_agreement: float | None = None
    max_accuracy_drop: float | None = None
    confidence: float = DEFAULT_CONFIDENCE
    gate_mode: str = "bound"  # --gate: bound | point
    debug_quant: bool = False
    json: str | None = None
    force: bool = False
    unsafe: bool = False
    compare: list[str] = field(default_factory=list)  # the user's own exports, checked too

    @property
    def gate(self) -> Gate | None:
        """The check's gate: the limits given (None: none given, nothing gated).

        Example:
            >>> ExportConfig("m.keras", ["onnx-fp32"], "o", min_agreement=0.99).gate
            Gate(min_agreement=0.99, max_accuracy_drop=None)
        """
        if self.min_agreement is None and self.max_accuracy_drop is None:
            return None
        return Gate.from_flags(self.min_agreement, self.max_accuracy_drop,
                               confidence=self.confidence, mode=self.gate_mode)

    def validate(self) -> "ExportConfig":
        """Unknown formats, and options no chosen format takes, fail before any work."""
        if not self.formats:
            raise UsageError("--format is empty; see edgeproof formats.")
        valid = sorted({k for f in self.formats for k in get_format(f).options})
        unknown = sorted(set(self.options) - set(valid))
        if unknown:
            raise UsageError(f"Option(s) {', '.join(unknown)} not taken by "
                             f"{', '.join(self.formats)}. Valid options: {', '.join(valid) or 'none'}.")
        return self


@dataclass
class ExportResult:
    """What ``export_and_check`` did: per-format outcomes, check rows, extra files."""

    outcomes: list[ExportOutcome]
    rows: list[BenchRow]
    debug_files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    debug_errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    preprocessing: str | None = None  # how the pixels the model expects were decided

    @property
    def errors(self) -> list[str]:
        return [f"{o.format}: {o.error}" for o in self.outcomes if o.error] + self.debug_errors

    def failure(self, gate: Gate | None) -> EdgeproofError | None:
        """The error the command ends with (a failed gate first, then an undecided one),
        or None when all is well.

        Example:
            >>> ExportResult([], []).failure(Gate(0.99, None)) is None
            True
        """
        gate = gate or Gate(None, None)
        verdicts = [(r, gate.verdict(r)) for r in self.rows if r.ok]
        fails = [f"{r.format}: {'; '.join(v.reasons)}" for r, v in verdicts
                 if v.answer == "fails"]
        fails += [f"{r.format}: {r.error}" for r in self.rows if not r.ok]
        if fails:
            return GateFailed("Export check failed: " + " | ".join(fails))
        unsure = [f"{r.format}: {'; '.join(v.reasons)}" for r, v in verdicts
                  if v.answer == "undecided"]
        if unsure:
            return GateUndecided(f"Export check undecided ({gate.basis()}): "
                                 + " | ".join(unsure) + "; more test images decide it")
        if self.errors:
            return EdgeproofError(f"{len(self.errors)} of {len(self.outcomes)} export(s) failed: "
                                  + " | ".join(self.errors))
        return None


def export_and_check(cfg: ExportConfig, status=None) -> ExportResult:
    """Export ``cfg.model`` to every format; with ``calib``, check each against the model.

    Nothing is raised for a format that fails or a gate that fails: every other format
    is still written and checked; ``ExportResult.failure`` says how the command ends.
    """
    cfg.validate()
    say = status or (lambda msg: None)
    say(f"loading {cfg.model}")
    ref = load_reference(cfg.model, safe_mode=not cfg.unsafe)
    ctx, ds = context_for_model(ref, cfg.model, cfg.calib, cfg.calib_size, cfg.seed,
                                cfg.preprocess, cfg.class_names)
    ensure_writable_dir(cfg.out)  # after the model and data load: a bad input writes nothing
    model = ref.exportable
    stem = cfg.name or Path(cfg.model).stem
    outcomes = export_formats(model, ctx, cfg.formats, cfg.out, stem, cfg.options,
                              force=cfg.force, status=say)
    result = ExportResult(outcomes, [], preprocessing=ctx.source.get("preprocessing"))
    if (ctx.calibration_info or {}).get("note"):
        result.notes.append(ctx.calibration_info["note"])
    if cfg.debug_quant:
        _debug_quant(model, ctx, cfg, stem, result, say)
    written = [o for o in outcomes if o.path is not None]
    if ds is not None and written:
        say("verifying exports against the source model on the test split")
        probs = reference_probs(ref, ds, preprocessing=ctx.preprocessing)
        warning = chance_warning(float((probs.argmax(1) == ds.y_test).mean()), ds.num_classes,
                                 "the source model")
        if warning:
            result.warnings.append(warning)
        data, check = EvalData(ds.x_test, ds.y_test, probs), BenchSettings(latency=False)
        result.rows = [bench_artifact(o.path, check, data, cfg.out)[0] for o in written]
    if cfg.compare:
        if ds is None:
            raise UsageError("--compare checks your files on the test split: give --dataset.")
        say("checking the files given with --compare against the source model")
        mine = compare_rows(ref, ctx, ds, cfg, probs if written else None)
        result.rows += mine
        result.warnings += [f"{r.format} has a fixed batch of {r.runtime_details['batch_check']['batch_sizes'][0]} "
                            "(torch.onnx.export fixes it to the example's without a dynamic axis): it "
                            "runs at that batch only" for r in mine
                            if len(((r.runtime_details or {}).get("batch_check") or {}).get("batch_sizes", [1, 2])) == 1]
    if cfg.gate is not None:  # each check row says passes, fails or undecided
        judge_rows(cfg.gate, result.rows)
    if cfg.json:
        record = [{**r.to_dict(), "export_seconds": round(o.seconds, 2)}
                  for r, o in zip(result.rows, written)] \
            or [{"artifact": str(o.path), "export_seconds": round(o.seconds, 2)} for o in written]
        record += [r.to_dict() for r in result.rows[len(written):]]  # --compare files
        write_json(cfg.json, record)
    return result


def compare_rows(ref, ctx, ds, cfg: ExportConfig, probs=None) -> list[BenchRow]:
    """Rows for the user's own exports (``--compare``), checked like edgeproof's: on the
    test split with the source model's preprocessing, and, for an ONNX file of a PyTorch
    model, at batch 1 and above against PyTorch (the exporter's batch traps).

    Example:
        >>> rows = compare_rows(ref, ctx, ds, ExportConfig("m.pt2", [], "o", compare=["m.onnx"]))  # doctest: +SKIP
    """
    probs = probs if probs is not None else reference_probs(ref, ds, preprocessing=ctx.preprocessing)
    check = BenchSettings(latency=False, preprocess=dataclasses.asdict(ctx.preprocessing))
    rows = []
    for path in map(Path, cfg.compare):
        row = bench_artifact(path, check, EvalData(ds.x_test, ds.y_test, probs), cfg.out)[0]
        row.format = f"yours: {path.name}"
        if row.ok and path.suffix.lower() == ".onnx" and ref.kind in TORCH_KINDS:
            batches = batch_check(path, ref, ctx)
            row.runtime_details = {**(row.runtime_details or {}), "batch_check": batches}
            if batches["top1_agreement"] < 1.0:
                row.status, row.error = "failed", (
                    f"answers unlike PyTorch at batch {batches['batch_sizes']} (top-1 agreement "
                    f"{batches['top1_agreement']:.4f}): re-export it with a dynamic batch axis")
        rows.append(row)
    return rows


def _debug_quant(model, ctx, cfg: ExportConfig, stem: str, result: ExportResult, say) -> None:
    """Per-layer quantization error of each written format that has such a report."""
    for o in result.outcomes:
        fmt = get_format(o.format)
        if o.path is None:
            continue
        if fmt.debug_quant is None:
            if fmt.needs_calibration:  # float formats need no report; quantized ones should say
                result.notes.append(f"--debug-quant: {fmt.name} has no per-layer report "
                                    "(tflite-int8 has)")
            continue
        say(f"measuring per-layer quantization error of {fmt.name}")
        try:
            result.debug_files += write_debug_report(fmt.debug_quant(model, ctx), cfg.out,
                                                     f"{stem}-{fmt.name}")
        except EdgeproofError as e:
            result.debug_errors.append(f"{fmt.name} --debug-quant: {e}")
