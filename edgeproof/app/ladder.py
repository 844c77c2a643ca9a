"""The ladders of ``edgeproof optimize``: candidates rung by rung, each checked and timed.

Candidates, cheapest first in each family, each exported, checked and timed with the
bench's own method (a fresh worker per artifact, threads auto-tuned):

- float: tflite-fp32, tflite-fp16, onnx-fp32, onnx-fp16, executorch-fp32, openvino-fp32
  (first: the bar to beat, the fastest of them on any runtime);
- TFLite integer ladder: full-integer int8 (every integer rung after the float rewrites
  of ``export.prepare``: BatchNorms folded and ranges equalized, exactly; then bias
  correction) → the same without bias correction → a larger calibration set → the k layers that hurt most kept float (k = 1,
  2, 4, 8; ranked by reverting each alone, ``app.fallback``) → quantization-aware
  fine-tuning (on by default; ``allow_qat=False`` turns it off) → dynamic range →
  int16x8 last (LiteRT runs it on its reference kernels on x86: slow);
- ONNX integer ladder: static QDQ with MinMax → without bias correction → Entropy →
  Percentile calibration → the k nodes that hurt most excluded (ranked the same way) →
  dynamic;
- NNCF: onnx-int8 by NNCF's default PTQ (``engine=nncf``), a family of its own so it is
  always tried beside edgeproof's onnx-int8: a user never gets less than NNCF's default;
- ExecuTorch: executorch-int8 (PT2E, XNNPACK quantizer), then a larger calibration set;
- OpenVINO: openvino-int8 (NNCF on the IR or edgeproof's QDQ graph, the better kept).

Rungs are for the reference's kind and this machine (``skipped``): on a PyTorch reference
(``.pt2`` / TorchScript) TFLite comes from litert-torch, which makes fp32, dynamic and
int8 only, and the tf-keras-only rungs (the rewrite variants, selective quantization,
QAT) are skipped with the reason; ExecuTorch needs a PyTorch reference; a rung whose
library is not installed, or OpenVINO with ``--device cuda|tensorrt``, is skipped saying
so. Skipped rungs are known before the search and do not count for the gate's correction.

A family stops at its first rung that is *useful*: it passes the gate and it is faster
than the fastest float candidate (p50 intervals apart, ``bench.stats``); a pass that is
not faster is recorded and the ladder goes on (``exhaustive`` tries every rung). Every
rung not tried is recorded with why. Selection is honest: calibration and sensitivity
use the train split, the ranking and the gate the validation split (``search`` gets a
dataset without its test split), and only then are test-split numbers computed for the
table and the recommendation.

Each rung's result is a ``Candidate`` (``app.candidate``); the flags are an
``OptimizeConfig``, which lives beside the optimizer (``app.optimize``).

Example:
    >>> from edgeproof.app.optimize import OptimizeConfig
    >>> [r.label for r in ladders(OptimizeConfig("m.keras", "digits", "out"))["onnx-int"]][:2]
    ['onnx-int8 static, minmax', 'onnx-int8 static, no bias correction']
    >>> [r.skip for r in ladders(OptimizeConfig("m.pt2", "digits", "out"))["float"]][1][:40]
    'litert-torch makes no float16 TFLite fil'
"""

from __future__ import annotations

import dataclasses
import importlib.util
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from edgeproof.app.candidate import Candidate
from edgeproof.app.fallback import OPTION, rank_by_reverting, ranking_subset
from edgeproof.app.reference_answers import reference_probs
from edgeproof.app.target import (judge_fit, record_measured, rungs_for_target,
                                  runtime_for_target)
from edgeproof.bench.one_artifact import bench_isolated
from edgeproof.bench.recommend import interval
from edgeproof.bench.settings import BenchSettings, EvalData
from edgeproof.bench.stats import faster
from edgeproof.datasets import Dataset
from edgeproof.errors import DataError, ModelError, UsageError, first_line
from edgeproof.export.artifact import write_artifact
from edgeproof.export.context import DEFAULT_CALIB_SIZE
from edgeproof.export.formats import export_model, get_format, rewritten_for_integer
from edgeproof.export.onnx_quant import node_sensitivity
from edgeproof.export.prepare import DEFAULT_STEPS, EXACT_STEPS
from edgeproof.export.quant_debug import layer_errors, most_sensitive
from edgeproof.reference_torch import TORCH_SUFFIXES

if TYPE_CHECKING:
    from edgeproof.app.optimize import OptimizeConfig

FLOAT_KS = (1, 2, 4, 8)


@dataclass(frozen=True)
class Rung:
    """One candidate of a ladder: a format with options and its calibration size."""

    family: str
    label: str
    format: str
    options: dict = field(default_factory=dict)
    calib_size: int | None = None  # None: 200, or the whole train split when smaller
    keep_float: int = 0  # the k most sensitive layers / nodes kept float
    skip: str | None = None  # why this rung is not tried for this reference / machine


EXACT_ONLY = {"rewrites": list(EXACT_STEPS)}  # the default less bias correction


def _tflite_ladder(cfg: OptimizeConfig, small: int, big: int) -> list[Rung]:
    tfl = [Rung("tflite-int", f"tflite-int8, calibration {small}", "tflite-int8", {}, small),
           Rung("tflite-int", "tflite-int8, no bias correction", "tflite-int8",
                dict(EXACT_ONLY), small),
           Rung("tflite-int", f"tflite-int8, calibration {big}", "tflite-int8", {}, big)]
    tfl += [Rung("tflite-int", f"tflite-int8, {k} layer(s) float", "tflite-int8", {}, small, k)
            for k in FLOAT_KS]
    if cfg.allow_qat:
        tfl.append(Rung("tflite-int", "tflite-qat-int8", "tflite-qat-int8", {}, small))
    return tfl + [Rung("tflite-int", "tflite-dynamic", "tflite-dynamic", {}, small),
                  Rung("tflite-int", "tflite-int16x8 (reference kernels)", "tflite-int16x8",
                       {}, big)]


def _onnx_ladder(small: int) -> list[Rung]:
    onnx = [Rung("onnx-int", "onnx-int8 static, minmax", "onnx-int8", {"calibration": "minmax"},
                 small),
            Rung("onnx-int", "onnx-int8 static, no bias correction", "onnx-int8",
                 {"calibration": "minmax", **EXACT_ONLY}, small)]
    onnx += [Rung("onnx-int", f"onnx-int8 static, {m}", "onnx-int8", {"calibration": m}, small)
             for m in ("entropy", "percentile")]
    onnx += [Rung("onnx-int", f"onnx-int8 static, {k} node(s) float", "onnx-int8", {}, small, k)
             for k in FLOAT_KS]
    onnx.append(Rung("onnx-int", "onnx-int8 dynamic", "onnx-int8", {"mode": "dynamic"}, small))
    return onnx


def _other_ladders(small: int, big: int) -> dict[str, list[Rung]]:
    """NNCF's onnx-int8 (its own family: always tried), ExecuTorch's and OpenVINO's."""
    # NNCF's default as it is: edgeproof's own rewrites off, so the rung is NNCF on onnx-fp32
    nncf = [Rung("onnx-nncf", "onnx-int8 NNCF default PTQ", "onnx-int8",
                 {"engine": "nncf", "rewrites": "none"}, small)]
    pte = [Rung("executorch-int", f"executorch-int8, calibration {n}", "executorch-int8", {}, n)
           for n in (small, big)]
    # openvino-int8 compares NNCF's file with the QDQ graph; without NNCF, the QDQ one
    method = "best" if _installed("nncf") else "qdq"
    ov = [Rung("openvino-int", f"openvino-int8 ({method})", "openvino-int8",
               {"method": method}, small)]
    return {"onnx-nncf": nncf, "executorch-int": pte, "openvino-int": ov}


def ladders(cfg: OptimizeConfig) -> dict[str, list[Rung]]:
    """The candidates by family, cheapest first (restricted to ``cfg.formats``), each
    rung this reference or machine cannot make carrying why (``Rung.skip``)."""
    big, small = cfg.large_calib_size, cfg.calib_size or DEFAULT_CALIB_SIZE
    floats = [Rung("float", f, f) for f in ("tflite-fp32", "tflite-fp16", "onnx-fp32", "onnx-fp16",
                                            "executorch-fp32", "openvino-fp32")]
    out = {"float": floats, "tflite-int": _tflite_ladder(cfg, small, big),
           "onnx-int": _onnx_ladder(small), **_other_ladders(small, big)}
    if cfg.formats:
        for f in cfg.formats:
            get_format(f)
        out = {k: [r for r in v if r.format in cfg.formats] for k, v in out.items()}
    out = rungs_for_target(out, cfg.target)  # --target mcu: full-integer TFLite only
    torch = is_torch_path(cfg.model)
    out = {k: [dataclasses.replace(r, skip=why_skipped(r, torch, cfg.device)) for r in v]
           for k, v in out.items()}
    return {k: v for k, v in out.items() if v}


def is_torch_path(model: str) -> bool:
    """Whether ``model`` names a PyTorch reference (``.pt2`` / TorchScript), by its suffix.

    Example:
        >>> is_torch_path("net.pt2"), is_torch_path("m.keras")
        (True, False)
    """
    return Path(str(model)).suffix.lower() in TORCH_SUFFIXES


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


# Rungs of tf-keras-only machinery, and why a PyTorch reference has none of it
_TORCH_SKIPS = {
    "tflite-fp16": "litert-torch makes no float16 TFLite file of a PyTorch model "
                   "(tflite-fp32, -dynamic and -int8 only); float16 weights are TensorFlow's "
                   "converter's",
    "tflite-int16x8": "litert-torch makes no int16x8 TFLite file of a PyTorch model",
    "tflite-qat-int8": "quantization-aware fine-tuning (tfmot) is for tf-keras models",
}
_REWRITES_SKIP = ("edgeproof's rewrites (BatchNorm fold, equalization, bias correction) are "
                  "tf-keras graph rewrites: on a PyTorch model this rung is the one above "
                  "(PT2E folds BatchNorm itself)")
_SELECTIVE_SKIP = ("selective quantization (float_layers) is TensorFlow's converter's; "
                   "litert-torch's PT2E quantizer keeps no such list")
# The library each format needs, and its install line
_NEEDS = {"executorch": ("executorch", 'pip install "edgeproof[torch]"'),
          "tflite-torch": ("litert_torch", 'pip install "edgeproof[torch]"'),
          "openvino": ("openvino", 'pip install "edgeproof[openvino]"'),
          "nncf": ("nncf", 'pip install "edgeproof[openvino]"')}


def why_skipped(rung: Rung, torch: bool, device: str = "cpu") -> str | None:
    """Why ``rung`` is not tried for a reference of this kind (``torch``: PyTorch) on this
    machine timed on ``device``, or None: it is tried.

    Example:
        >>> why_skipped(Rung("float", "executorch-fp32", "executorch-fp32"), torch=False)
        'ExecuTorch lowers PyTorch programs: give a .pt2 or TorchScript reference'
        >>> why_skipped(Rung("float", "onnx-fp32", "onnx-fp32"), torch=True) is None
        True
    """
    fmt = rung.format
    if fmt.startswith("executorch") and not torch:
        return "ExecuTorch lowers PyTorch programs: give a .pt2 or TorchScript reference"
    if torch and fmt.startswith("tflite"):
        if fmt in _TORCH_SKIPS:
            return _TORCH_SKIPS[fmt]
        if "rewrites" in rung.options:
            return _REWRITES_SKIP
        if rung.keep_float:
            return _SELECTIVE_SKIP
    if torch and fmt == "onnx-int8" and rung.options.get("rewrites") == list(EXACT_STEPS):
        return _REWRITES_SKIP.replace(" (PT2E folds BatchNorm itself)", "")
    if fmt.startswith("openvino") and device in ("cuda", "tensorrt"):
        return (f"OpenVINO runs on this machine's CPU: --device {device} times the ONNX "
                "candidates on the GPU")
    need = _library_of(rung, torch)
    if need and not _installed(_NEEDS[need][0]):
        return f"{_NEEDS[need][0]} is not installed: {_NEEDS[need][1]}"
    return None


def _library_of(rung: Rung, torch: bool) -> str | None:
    """The ``_NEEDS`` key of the optional library ``rung`` needs (None: the base install)."""
    family = rung.format.split("-")[0]
    if family in ("executorch", "openvino"):
        return family
    if torch and family == "tflite":
        return "tflite-torch"
    return "nncf" if rung.options.get("engine") == "nncf" else None


def without_test(ds: Dataset) -> Dataset:
    """``ds`` with an empty test split: what the search is allowed to see."""
    empty_x, empty_y = ds.x_test[:0], ds.y_test[:0]
    return dataclasses.replace(ds, x_test=empty_x, y_test=empty_y)


class _Sensitivity:
    """The layers / nodes to keep float: a proxy ranking on calibration (train) images
    (TFLite's quantization debugger; ONNX Runtime's qdq_loss_debug), each of its first
    candidates then measured alone in float on a validation subset (``app.fallback``);
    computed once per format, on the model as the integer rungs convert it (rewritten)."""

    def __init__(self, model, ctx_for, rank_data: EvalData):
        self.model, self.ctx_for, self.rank_data, self._cache = model, ctx_for, rank_data, {}

    def ranking(self, rung: Rung) -> list[dict]:
        key = rung.format
        if key not in self._cache:
            ctx = self.ctx_for(rung.calib_size)
            rewritten, _ = rewritten_for_integer(self.model, ctx, DEFAULT_STEPS)
            proxy = most_sensitive(layer_errors(rewritten, ctx)) if key == "tflite-int8" \
                else node_sensitivity(rewritten, ctx)
            self._cache[key] = rank_by_reverting(self.model, ctx, key, proxy, self.rank_data)
        return self._cache[key]

    def top(self, rung: Rung) -> list[str]:
        return [r["name"] for r in self.ranking(rung)[:rung.keep_float]]


def _try(rung: Rung, model, search_ds: Dataset, ref_val, cfg, ctx_for, sens,
         out: Path) -> Candidate:
    """Export, check on validation and time one rung; a failure is a failed candidate."""
    t0 = time.perf_counter()
    cand = Candidate.of(rung)
    try:
        options = dict(rung.options)
        if rung.keep_float:
            cand.kept_float = sens.top(rung)
            options[OPTION[rung.format]] = cand.kept_float
        art = export_model(model, rung.format, ctx_for(rung.calib_size), options)
        if rung.keep_float:
            art.manifest.conversion["kept_float"] = _kept_float_note(rung, cand, sens)
        slug = rung.label.replace(", ", "-").replace(" ", "_").replace("(s)", "s")
        path = write_artifact(art, out / "candidates", slug, force=True)
        settings = BenchSettings(device=cfg.device, runtime=runtime_for_target(cfg.target, path))
        rows, _ = bench_isolated(path, settings,
                                 EvalData(search_ds.x_val, search_ds.y_val, ref_val), out)
        row = rows[0]
        _fit(row, cfg, out, cand)
        cand.measured(row)
        if row.ok:  # passes, fails or undecided on validation, at the search's gate
            cand.validation.verdict = cfg.gate.verdict(row)
        fails = [row.error] if not row.ok else cfg.gate.failures(row)
        cand.passed = not fails
        cand.say("; ".join(fails) or "passes on validation")
    except (UsageError, DataError, ModelError):
        raise  # the user's input is wrong: no rung would do better
    except Exception as e:  # an export or runtime failure is this rung's result, not the end
        cand.status, cand.reason = "failed", first_line(e)
    cand.seconds = round(time.perf_counter() - t0, 1)
    return cand


def _kept_float_note(rung: Rung, cand: Candidate, sens) -> dict:
    """The manifest's ``conversion.kept_float``: which layers were kept float, and why."""
    return {"names": cand.kept_float, "why": f"the {rung.keep_float} whose float version "
            f"alone raised agreement most on {len(sens.rank_data.images)} validation images "
            "(NNCF's reverting method); candidates from "
            + ("TFLite's quantization debugger (RMSE/scale)" if rung.format == "tflite-int8"
               else "ONNX Runtime's qdq_loss_debug (lowest SQNR)")}


def _fit(row, cfg: OptimizeConfig, out: Path, cand: Candidate) -> None:
    """The row's memory figures for the budgets and ``--target mcu`` (``app.target``):
    kept in the candidate, and a measured arena written into the candidate's manifest."""
    judge_fit([row], cfg.gate, cfg.target, out)
    if row.micro is not None:
        cand.micro = row.micro
        record_measured([row], out)


def _useful(cand: Candidate, fastest_float: Candidate | None) -> str | None:
    """Why a passing candidate ends its ladder (None: it does not, the ladder goes on)."""
    if fastest_float is None:
        return "passes the gate (no float candidate to beat)"
    bar = fastest_float
    if faster(interval(cand.validation_row()), interval(bar.validation_row())):
        return (f"passes the gate and is faster than {bar.format} "
                f"({cand.p50:.3g} ms < {bar.p50:.3g} ms)")
    cand.say(f"not faster than {bar.format} ({bar.p50:.3g} ms): the ladder goes on")
    return None


def _not_tried(rung: Rung, why: str, status: str = "not tried") -> Candidate:
    cand = Candidate.of(rung)
    cand.status, cand.reason = status, f"{status}: {why}"
    return cand


def search(model, ctx_of, search_ds: Dataset, cfg: OptimizeConfig, out: Path,
           progress=None, deadline: float | None = None) -> tuple[list[Candidate], bool]:
    """Climb each family's ladder on a dataset without its test split.

    Returns (a record for every rung of every ladder, tried or not and why; whether the
    time budget, ``deadline`` (``time.time()``), stopped the search).
    """
    if len(search_ds.y_test):
        raise ValueError("search must not see the test split")
    ref_val = reference_probs(model, search_ds, preprocessing=ctx_of(1).preprocessing,
                              split="val")
    rank = ranking_subset(search_ds.x_val, search_ds.y_val, ref_val, seed=cfg.seed)
    sens = _Sensitivity(model, ctx_of, rank)
    candidates, stopped, fastest_float = [], False, None
    for family, rungs in ladders(cfg).items():
        ended = None
        for rung in rungs:
            if rung.skip:  # this reference or machine cannot make it: said, not tried
                candidates.append(_not_tried(rung, rung.skip, "skipped"))
                continue
            if ended or (deadline and time.time() > deadline):
                stopped = stopped or not ended
                candidates.append(_not_tried(rung, ended or "the time budget ran out"))
                continue
            if progress:
                progress(rung.label)
            cand = _try(rung, model, search_ds, ref_val, cfg, ctx_of, sens, out)
            candidates.append(cand)
            if family == "float" and cand.ok and (fastest_float is None
                                                  or cand.p50 < fastest_float.p50):
                fastest_float = cand
            if family != "float" and cand.passed and not cfg.exhaustive:
                why = _useful(cand, fastest_float)
                if why:
                    ended = f"the ladder stopped at \"{rung.label}\", which {why}"
    return candidates, stopped
