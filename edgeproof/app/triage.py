"""`triage`: where an integer artifact loses the float reference's answers, and why.

The float reference and the int8 artifact run on the same validation images; every
intermediate tensor they share is compared (``export.tensor_compare``: SQNR and cosine
per tensor). The first tensor below the threshold is named with the layer that made it,
and a cause is read from evidence on it and on the tensors it read: an activation range
dominated by outliers, a per-tensor weight scale over very unequal channels, an unfolded
BatchNorm, an input scale that wastes the integer range, saturation at the output.

The float side is the graph the artifact was quantized from, rebuilt here: the
reference with the exact rewrites the artifact's manifest records (the same float
function), converted to float TFLite or ONNX (for a PyTorch reference with an ``.onnx``
artifact: edgeproof's own onnx-fp32 of it). Bias correction, which the export may also
have applied, is left out: the float side is the reference's own function.

Example:
    >>> r = triage(TriageConfig("m.keras", "m-tflite-int8.tflite", "digits"))  # doctest: +SKIP
    >>> r.first_diverging.name, r.causes[0].kind  # doctest: +SKIP
    ('sequential/conv2d_1/Relu', 'outlier_range')
"""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeproof.app.reporting import write_json
from edgeproof.bench.derive import artifact_manifest
from edgeproof.bench.one_artifact import evaluation_split
from edgeproof.errors import UsageError
from edgeproof.export.context import context_for_model, model_input, tf_keras_of
from edgeproof.export.formats import rewritten_for_integer
from edgeproof.export.graph import int8_friendly
from edgeproof.export.onnx_export import keras_to_onnx
from edgeproof.export.prepare import EXACT_STEPS
from edgeproof.export.tensor_compare import Comparison, compare_onnx, compare_tflite
from edgeproof.export.tensor_stats import TensorStats
from edgeproof.export.tflite import convert_tflite
from edgeproof.manifest import Manifest
from edgeproof.preprocess import prepare, to_float
from edgeproof.reference import load_reference

DEFAULT_THRESHOLD_DB = 15.0   # below this SQNR a tensor has lost most of its information
DEFAULT_IMAGES = 64
OUTLIER_RATIO = 8.0           # max |x| over the 99.9th percentile: a range outliers set
CHANNEL_RATIO = 20.0          # largest channel's range over the median one's
FEW_LEVELS = 0.1              # the bulk of the values spans under 10% of the integer range
WEIGHT_CHANNEL_RATIO = 10.0
SATURATED = 0.01
HIST_BINS = 20


@dataclass
class TriageConfig:
    """What `edgeproof triage` was asked.

    Attributes:
        reference: the float model (any kind edgeproof loads).
        artifact: the integer ``.tflite`` or ``.onnx`` file.
        dataset: the images (their validation split is used).
        preprocess: ``--preprocess`` overrides, parsed.
        images: how many validation images run.
        threshold_db: the SQNR below which a tensor counts as diverged.
        seed: the dataset split's seed.
        json_path: where to write the JSON, or None.
    """

    reference: str | Path
    artifact: str | Path
    dataset: str
    preprocess: dict | None = None
    images: int = DEFAULT_IMAGES
    threshold_db: float = DEFAULT_THRESHOLD_DB
    seed: int = 0
    json_path: str | Path | None = None


@dataclass
class Cause:
    """One reason read from evidence: its kind, the tensor and layer it is on, the line."""

    kind: str
    tensor: str
    layer: str
    evidence: str
    histogram: dict | None = None


@dataclass
class TriageResult:
    """The comparison, the first diverging tensor and the causes found."""

    reference: str
    artifact: str
    float_side: str
    comparison: Comparison
    threshold_db: float
    first_diverging: TensorStats | None
    causes: list[Cause] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The JSON record (``first_diverging_tensor`` and ``layer`` under their own keys).

        Example:
            >>> c = Comparison("onnx", [TensorStats("t", producer="conv", sqnr_db=3.0)], 4)
            >>> r = TriageResult("m", "a", "f", c, 15.0, c.tensors[0])
            >>> r.to_dict()["first_diverging_tensor"], r.to_dict()["layer"]
            ('t', 'conv')
        """
        first = self.first_diverging
        c = self.comparison
        return {"reference": self.reference, "artifact": self.artifact, "kind": c.kind,
                "float_side": self.float_side, "images": c.images,
                "top1_agreement": c.agreement, "threshold_db": self.threshold_db,
                "first_diverging_tensor": first.name if first else None,
                "layer": first.producer if first else None,
                "causes": [dataclasses.asdict(x) for x in self.causes],
                "tensors": [t.to_dict() for t in c.tensors], "unmatched": c.unmatched}


def histogram(s: TensorStats) -> dict | None:
    """Counts of the tensor's sampled float values in ``HIST_BINS`` bins, and the share the
    integer range clips.

    Example:
        >>> h = histogram(TensorStats("t", sample=np.arange(100, dtype=np.float32)))
        >>> sum(h["counts"]), len(h["edges"])
        (100, 21)
    """
    if s.sample is None or not s.sample.size:
        return None
    counts, edges = np.histogram(s.sample, HIST_BINS)
    return {"counts": counts.tolist(), "edges": [round(float(e), 6) for e in edges],
            "clipped_share": s.clipped_share}


def dominated(s: TensorStats) -> bool:
    """Whether outliers set the tensor's range: a few values far above the rest, or one
    channel so much wider than the median one that the median channel gets few levels.

    Example:
        >>> dominated(TensorStats("t", channel_ratio=900.0, median_channel_levels=0.001))
        True
    """
    return bool(s.outlier_ratio > OUTLIER_RATIO or (s.channel_ratio > CHANNEL_RATIO and
                                                     s.median_channel_levels < FEW_LEVELS))


def _origin(s: TensorStats, by_name: dict) -> TensorStats:
    """Follow outlier-dominated inputs back (through pooling, padding, ...) to the first
    tensor that has them: the layer that made the outliers."""
    seen = {s.name}
    while True:
        back = [by_name[i] for i in s.inputs if i in by_name and i not in seen and
                dominated(by_name[i])]
        if not back:
            return s
        s = min(back, key=lambda t: t.index)
        seen.add(s.name)


def _outlier(s: TensorStats) -> Cause | None:
    if not dominated(s):
        return None
    return Cause("outlier_range", s.name, s.producer,
                 f"activation range dominated by outliers: the largest channel spans "
                 f"{s.channel_ratio:.1f}x the median one, which gets "
                 f"{100 * s.median_channel_levels:.2f}% of the integer levels; max |x| is "
                 f"{s.outlier_ratio:.1f}x the 99.9th percentile; clipped "
                 f"{100 * s.clipped_share:.2f}%", histogram(s))


def _weight(s: TensorStats) -> Cause | None:
    w = s.weight
    if w is None or not w.per_tensor or not w.channel_ratio > WEIGHT_CHANNEL_RATIO:
        return None
    return Cause("per_tensor_weight_scale", s.name, s.producer,
                 f"one weight scale for {w.tensor}, whose largest output channel spans "
                 f"{w.channel_ratio:.1f}x the median one: quantize weights per channel")


def _batchnorm(s: TensorStats) -> Cause | None:
    if s.affine_channels <= 1:
        return None
    return Cause("unfolded_batchnorm", s.name, s.producer,
                 f"{s.producer_type} by a {s.affine_channels}-value constant: a BatchNorm that "
                 "was not folded into the layer before it")


def _input_scale(s: TensorStats) -> Cause | None:
    if s.producer_type != "INPUT" or not s.levels_used < 0.25:
        return None
    return Cause("input_scale", s.name, "input",
                 f"the input's values use {100 * s.levels_used:.1f}% of its integer levels: the "
                 "input scale wastes range")


def _saturation(s: TensorStats) -> Cause | None:
    if not s.saturated_share > SATURATED:
        return None
    return Cause("output_saturation", s.name, s.producer,
                 f"{100 * s.saturated_share:.1f}% of the output's integers sit at a bound")


def diagnose(c: Comparison, first: TensorStats | None) -> list[Cause]:
    """Causes on the first diverging tensor and the tensors it read, then the input and
    output (an ordered, de-duplicated list).

    Example:
        >>> t = TensorStats("x", producer="input", producer_type="INPUT", levels_used=0.05)
        >>> [x.kind for x in diagnose(Comparison("onnx", [t], 1), None)]
        ['input_scale']
    """
    by_name = c.by_name()
    near = [first] + [by_name[i] for i in first.inputs if i in by_name] if first else []
    found = [_outlier(_origin(s, by_name)) for s in near]
    found += [f(s) for s in near for f in (_weight, _batchnorm)]
    if c.tensors:
        found += [_input_scale(c.tensors[0]), _saturation(c.tensors[-1])]
    seen, causes = set(), []
    for x in found:
        if x is not None and (x.kind, x.tensor) not in seen:
            seen.add((x.kind, x.tensor))
            causes.append(x)
    return causes


def _exact_steps(manifest: Manifest) -> list[str]:
    """The exact rewrites the artifact's export applied (its manifest's record)."""
    rec = manifest.conversion.get("exact_rewrites") or {}
    if rec.get("applied") is False:
        return []
    return [s for s in rec.get("steps", []) if s in EXACT_STEPS]


def _float_tflite(model, ctx) -> bytes:
    keras_model = tf_keras_of(model)
    if keras_model is not None:  # the int8 export's pooling rewrite (exact) too
        model, _ = int8_friendly(keras_model)
    return convert_tflite(model, ctx, fmt="tflite-fp32", mode="fp32").data


def _float_onnx(model, ctx, manifest: Manifest):
    import onnx
    from onnxruntime.quantization.shape_inference import quant_pre_process

    opset = int(manifest.options.get("opset", 17))
    proto, _ = keras_to_onnx(model, ctx, "onnx-fp32", opset, {})
    with tempfile.TemporaryDirectory() as d:  # the pre-processing onnx-int8 applied
        src, dst = Path(d) / "fp32.onnx", Path(d) / "pre.onnx"
        onnx.save(proto, str(src))
        try:
            quant_pre_process(str(src), str(dst), skip_symbolic_shape=True)
            return onnx.load(str(dst))
        except Exception:  # onnx-int8 quantized the raw graph then
            return proto


def compare(cfg: TriageConfig) -> tuple[Comparison, str]:
    """Run the float side and the artifact on the images; returns (comparison, what the
    float side is)."""
    art = Path(cfg.artifact)
    kind = {".tflite": "tflite", ".onnx": "onnx"}.get(art.suffix.lower())
    if kind is None:
        raise UsageError(f"triage takes a .tflite or .onnx artifact; got {art.name}.")
    if not art.exists():
        raise UsageError(f"Artifact not found: {art}")
    manifest = artifact_manifest(art, cfg.preprocess)
    ref = load_reference(cfg.reference)
    ctx, _ = context_for_model(ref, cfg.reference, None, None, cfg.seed, cfg.preprocess)
    ctx = dataclasses.replace(ctx, preprocessing=manifest.preprocessing)
    steps = _exact_steps(manifest)
    model, ctx = rewritten_for_integer(ref.exportable, ctx, steps) if steps else \
        (ref.exportable, ctx)
    _, images, _ = evaluation_split(cfg.dataset, manifest, cfg.seed, cfg.images, split="val")
    x = to_float(images, manifest.preprocessing)
    side = f"{ref.describe()}" + (f" with {', '.join(steps)}" if steps else "")
    if kind == "tflite":
        cmp = compare_tflite(_float_tflite(model, ctx), art.read_bytes(), x,
                             prepare(images, manifest))
        return cmp, side + ", as float TFLite"
    import onnx

    cmp = compare_onnx(_float_onnx(model, ctx, manifest), onnx.load(str(art)),
                       model_input(x, manifest))
    return cmp, side + ", as edgeproof's onnx-fp32"


def triage(cfg: TriageConfig) -> TriageResult:
    """Compare, name the first tensor under ``cfg.threshold_db`` and its causes; write
    ``cfg.json_path`` when given (see the module docstring).

    Example:
        >>> triage(TriageConfig("m.keras", "m.onnx", "digits")).to_dict()["layer"]  # doctest: +SKIP
        'conv2d_1'
    """
    if cfg.images < 1:
        raise UsageError(f"--images must be at least 1; got {cfg.images}.")
    cmp, side = compare(cfg)
    first = next((t for t in cmp.tensors if t.sqnr_db < cfg.threshold_db), None)
    result = TriageResult(str(cfg.reference), str(cfg.artifact), side, cmp, cfg.threshold_db,
                          first, diagnose(cmp, first))
    if cfg.json_path:
        write_json(cfg.json_path, result.to_dict())
    return result
