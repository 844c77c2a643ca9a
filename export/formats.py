"""The table of export formats: each row is a name, a suffix, its options and a function.

Example:
    >>> [f.name for f in list_formats()][:4]
    ['keras', 'saved_model', 'tflite-fp32', 'tflite-dynamic']
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from edgeproof.errors import EdgeproofError
from edgeproof.export.artifact import Artifact, write_artifact
from edgeproof.export.context import tf_keras_of
from edgeproof.export.executorch_export import MAX_BATCH, convert_executorch
from edgeproof.export.keras_export import convert_keras, convert_saved_model
from edgeproof.export.onnx_export import convert_onnx
from edgeproof.export.onnx_quant import convert_onnx_fp16, convert_onnx_int8
from edgeproof.export.openvino_export import convert_openvino_fp32, convert_openvino_int8
from edgeproof.export.qat import convert_qat_int8
from edgeproof.export.prepare import DEFAULT_STEPS, for_integer_export
from edgeproof.export.quant_debug import layer_errors
from edgeproof.export.tflite import convert_tflite
from edgeproof.options import Option, resolve_options
from edgeproof.preprocess import to_float
from edgeproof.registry import Registry

_IO = Option("int8", "input/output type", str, ("int8", "uint8", "float32"))
REWRITES = Option(list(DEFAULT_STEPS), "float rewrites before quantizing: fold_batchnorm, "
                  "equalize (exact), bias_correction (calibrated, not exact); none: off", list)
_OPSET = Option(17, "ONNX opset", int)
# A .pte's options (PyTorch models); PT2E folds BatchNorm itself, so no rewrites.
_PTE = {"min_delegated": Option(None, "refuse a .pte whose share of operators inside XNNPACK "
                                "is lower (0-1, e.g. 0.9)", float),
        "max_batch": Option(MAX_BATCH, "largest batch a dynamic-batch .pte takes (ExecuTorch "
                                       "plans memory for it)", int)}

log = logging.getLogger("edgeproof.export")


@dataclass(frozen=True)
class Format:
    """One export format.

    Attributes:
        name: the format's name (``tflite-int8``).
        suffix: the artifact's file suffix.
        runtime: the runtime that runs it by default.
        convert: ``convert(model, ctx, fmt=name, **options) -> Artifact``.
        options: the options it accepts (``edgeproof.options.Option``: default, help, kind,
            choices), the same declaration runtimes use.
        needs_calibration: whether a representative dataset is required.
        debug_quant: ``debug_quant(model, ctx) -> rows`` of per-layer quantization
            error (``--debug-quant``), or None where the format has no such report.
        torch_only: made from a PyTorch reference only (``.pte``: ExecuTorch lowers a
            ``torch.export`` program); a Keras or ONNX source gets a one-line error.

    Integer formats also take ``rewrites`` (``REWRITES``): the exact float rewrites applied
    before quantizing (``export.rewrites``; ``none`` turns them off).
    """

    name: str
    suffix: str
    runtime: str
    convert: Callable
    description: str
    options: dict[str, Option] = field(default_factory=dict)
    needs_calibration: bool = False
    debug_quant: Callable | None = None
    torch_only: bool = False

    def resolve_options(self, given: dict | None) -> dict:
        """Defaults overlaid with ``given``, parsed; unknown options and bad values are
        errors listing the valid ones.

        Example:
            >>> get_format("onnx-int8").resolve_options({"mode": "dynamic"})["mode"]
            'dynamic'
        """
        return resolve_options(given, self.options, self.name, "Format")


_ROWS = [
    Format("keras", ".keras", "keras", convert_keras,
           "the trained Keras model (.keras archive, loads with safe_mode)"),
    Format("saved_model", "", "keras", convert_saved_model,
           "TensorFlow SavedModel folder (written atomically)"),
    Format("tflite-fp32", ".tflite", "litert", partial(convert_tflite, mode="fp32"),
           "TFLite, float32"),
    Format("tflite-dynamic", ".tflite", "litert",
           partial(convert_tflite, mode="dynamic"),
           "TFLite dynamic-range quantization (int8 weights, float activations)"),
    Format("tflite-fp16", ".tflite", "litert", partial(convert_tflite, mode="fp16"),
           "TFLite with float16 weights"),
    Format("tflite-int8", ".tflite", "litert", partial(convert_tflite, mode="int8"),
           "TFLite full-integer int8 (representative dataset from the train split); "
           "float_layers: tensor names kept float (selective quantization)",
           options={"io_type": _IO,
                    "float_layers": Option([], "tensor names kept float", list)},
           needs_calibration=True, debug_quant=layer_errors),
    Format("tflite-int16x8", ".tflite", "litert",
           partial(convert_tflite, mode="int16x8"),
           "TFLite 16-bit activations, 8-bit weights", needs_calibration=True),
    Format("tflite-qat-int8", ".tflite", "litert", convert_qat_int8,
           "TFLite int8 after quantization-aware fine-tuning on the train split (tfmot)",
           options={"io_type": _IO, "epochs": Option(2, "fine-tuning epochs", int),
                    "lr": Option(1e-4, "fine-tuning learning rate", float),
                    "batch_size": Option(32, "fine-tuning batch size", int),
                    "train_size": Option(2000, "training images used (0: all)", int, low=0)},
           needs_calibration=True),
    Format("onnx-fp32", ".onnx", "onnxruntime", convert_onnx,
           "ONNX float32 via tf2onnx, NHWC input, dynamic batch", options={"opset": _OPSET}),
    Format("onnx-fp16", ".onnx", "onnxruntime", convert_onnx_fp16,
           "ONNX float16 weights/activations, float32 inputs/outputs kept",
           options={"opset": _OPSET}),
    Format("onnx-int8", ".onnx", "onnxruntime", convert_onnx_int8,
           "ONNX Runtime int8: static QDQ (uint8 activations, per-channel int8 weights, "
           "calibrated), or dynamic",
           options={"opset": _OPSET,
                    "mode": Option("static", "calibrated static QDQ or dynamic", str,
                                   ("static", "dynamic")),
                    "activations": Option("uint8", "activation type", str, ("uint8", "int8")),
                    "calibration": Option("minmax", "calibration method", str,
                                          ("minmax", "entropy", "percentile")),
                    "exclude_nodes": Option([], "node names kept float", list),
                    "engine": Option("edgeproof", "edgeproof: ONNX Runtime's quantizer with the "
                                     "options above; nncf: NNCF's default PTQ (nncf.quantize)",
                                     str, ("edgeproof", "nncf"))},
           needs_calibration=True),
    Format("openvino-fp32", ".xml", "openvino", convert_openvino_fp32,
           "OpenVINO IR (.xml + .bin), float32 weights kept (compress_to_fp16=False), from the "
           "float ONNX graph", options={"opset": _OPSET}),
    Format("openvino-int8", ".xml", "openvino", convert_openvino_int8,
           "OpenVINO IR int8: NNCF quantize, or edgeproof's QDQ int8 graph read by OpenVINO, "
           "whichever keeps more answers on held-out train images (the manifest says which)",
           options={"opset": _OPSET,
                    "method": Option("best", "int8 candidates: both (best), nncf or qdq", str,
                                     ("best", "nncf", "qdq")),
                    "preset": Option("performance", "NNCF preset", str,
                                     ("performance", "mixed")),
                    "rewrites": REWRITES},
           needs_calibration=True),
    Format("executorch-fp32", ".pte", "executorch", partial(convert_executorch, mode="fp32"),
           "ExecuTorch .pte of a PyTorch model, float32, lowered to XNNPACK (contiguous NCHW "
           "input, dynamic batch), proved against PyTorch", options=dict(_PTE), torch_only=True),
    Format("executorch-int8", ".pte", "executorch", partial(convert_executorch, mode="int8"),
           "ExecuTorch .pte int8 of a PyTorch model: PT2E with the XNNPACK quantizer "
           "(per-channel weights) calibrated on the train split, lowered to XNNPACK",
           options=dict(_PTE), needs_calibration=True, torch_only=True),
]
_INTEGER = ("tflite-dynamic", "tflite-int8", "tflite-int16x8", "tflite-qat-int8", "onnx-int8")
FORMATS: Registry[Format] = Registry("format", "export")
for _row in _ROWS:
    if _row.name in _INTEGER:  # every integer format takes the exact rewrites, on by default
        _row.options["rewrites"] = REWRITES
    FORMATS.add(_row.name, _row)
DEFAULT_FORMATS = ("keras", "tflite-fp32", "tflite-int8", "onnx-fp32")


def list_formats() -> list[Format]:
    """Every registered format, in table order.

    Example:
        >>> "onnx-int8" in [f.name for f in list_formats()]
        True
    """
    return FORMATS.rows()


def get_format(name: str) -> Format:
    """The format row ``name``; an unknown name is a UsageError listing the valid ones.

    Example:
        >>> get_format("onnx-fp16").suffix
        '.onnx'
    """
    return FORMATS.get(name)


def export_model(model, fmt: str, ctx, options: dict | None = None):
    """Convert ``model`` to format ``fmt``; returns an ``Artifact`` (nothing is written).

    Example:
        >>> art = export_model(model, "tflite-int8", ctx)  # doctest: +SKIP
        >>> write_artifact(art, "out/models", "model.int8")  # doctest: +SKIP
    """
    f = get_format(fmt)
    opts = f.resolve_options(options)
    if "rewrites" in opts:
        kept = list(opts.get("float_layers") or []) + list(opts.get("exclude_nodes") or [])
        model, ctx = rewritten_for_integer(model, ctx, opts.pop("rewrites"), kept)
    return f.convert(model, ctx, fmt=f.name, **opts)


def rewritten_for_integer(model, ctx, steps, keep_float=()):
    """(model, context) after the exact rewrites ``steps``; the context's ``conversion``
    records them for the manifest (what was folded, max |Δp| of the float check).

    Example:
        >>> q_model, q_ctx = rewritten_for_integer(model, ctx, ["fold_batchnorm"])  # doctest: +SKIP
        >>> q_ctx.conversion["exact_rewrites"]["applied"]  # doctest: +SKIP
        True
    """
    if ctx.calibration is not None and len(ctx.calibration):
        x = ctx.calibration_float()
    else:  # no calibration images (dynamic range): random pixels through the same path,
        # enough to check an exact rewrite, not to measure a bias
        steps = [s for s in steps if s != "bias_correction"]
        h, w = ctx.preprocessing.size
        pixels = np.random.default_rng(0).integers(0, 256, (16, h, w, ctx.preprocessing.channels),
                                                   dtype=np.uint8)
        x = to_float(pixels, ctx.preprocessing)
    keras_model = tf_keras_of(model)  # the rewrites are tf-keras graph rewrites
    if keras_model is None:
        return model, ctx
    rewritten, record = for_integer_export(keras_model, x, steps, keep_float)
    model = model if rewritten is keras_model else rewritten
    return model, dataclasses.replace(ctx, conversion={**ctx.conversion, "exact_rewrites": record})


@dataclass
class ExportOutcome:
    """One format's result in ``export_formats``: the path written, or the error."""

    format: str
    path: Path | None
    seconds: float
    error: str | None = None
    artifact: Artifact | None = None


def export_formats(model, ctx, formats, out_dir, stem: str, options: dict | None = None,
                   force: bool = False, status=None) -> list[ExportOutcome]:
    """Export ``model`` to each format and write ``<out_dir>/<stem>-<format><suffix>``.

    The one export loop (``edgeproof export`` and ``edgeproof run``): a format that fails
    becomes an outcome with its one-line error and the others still run.

    Args:
        options: format options; each format gets the ones it declares (the caller
            checks that every key is taken by some format).
        status: called with a progress line per format.

    Example:
        >>> done = export_formats(model, ctx, ["tflite-int8", "onnx-fp32"], "out", "m")  # doctest: +SKIP
        >>> [o.path.name for o in done if o.error is None]  # doctest: +SKIP
        ['m-tflite-int8.tflite', 'm-onnx-fp32.onnx']
    """
    done = []
    for name in formats:
        if status:
            status(f"exporting {name}")
        t0 = time.perf_counter()
        try:
            fmt = get_format(name)
            mine = {k: v for k, v in (options or {}).items() if k in fmt.options}
            art = export_model(model, name, ctx, mine)
            path = write_artifact(art, out_dir, f"{stem}-{name}", force=force)
            done.append(ExportOutcome(name, path, time.perf_counter() - t0, artifact=art))
        except EdgeproofError as e:
            log.warning("export %s failed: %s", name, e)
            done.append(ExportOutcome(name, None, time.perf_counter() - t0, str(e)))
    return done
