"""OpenVINO IR exports: ``openvino-fp32`` and ``openvino-int8``, from the float ONNX graph
edgeproof makes for any reference kind (``keras_to_onnx``: tf2onnx for TensorFlow kinds,
``torch.onnx`` for PyTorch, the file itself for ONNX), so the input keeps that graph's
layout and dtype (NHWC float32 for TensorFlow kinds, NCHW for PyTorch and PyTorch-made
ONNX files).

- ``openvino-fp32``: ``ov.convert_model`` on that graph, saved with
  ``compress_to_fp16=False`` (OpenVINO's default would store the weights as f16): the IR
  computes what the float graph does. The manifest records the inference precision the
  CPU plugin would pick on the exporting machine without a hint (bf16 where the CPU has
  bf16 units), and that edgeproof's ``openvino`` runtime asks for f32 unless told.
- ``openvino-int8``: two candidates from the same calibration images as every int8
  format (``ExportContext.calibration_float``): NNCF's ``nncf.quantize`` on the OpenVINO
  model, and edgeproof's own QDQ int8 ONNX graph (``convert_onnx_int8``) read by
  OpenVINO. Both run at f32 on held-out train images (train images not used for
  calibration; the calibration images when the context has no others), and the one that
  keeps more top-1 answers of the float model is written (``method=best``; a tie keeps
  NNCF's, OpenVINO's own quantizer). ``conversion.int8_choice`` says which, with both
  agreements and the images they were measured on.

An IR is two files: the artifact is the ``.xml`` with its ``.bin`` as a companion
(``Artifact.companions``), both written atomically.

Example:
    >>> art = convert_openvino_fp32(model, ctx, fmt="openvino-fp32")  # doctest: +SKIP
    >>> art.suffix, sorted(art.companions)  # doctest: +SKIP
    ('.xml', ['.bin'])
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import tempfile
from pathlib import Path

import numpy as np

from edgeproof.datasets import calibration_indices
from edgeproof.errors import ExportError, first_line
from edgeproof.export.artifact import Artifact
from edgeproof.export.context import ExportContext, model_input
from edgeproof.export.onnx_export import keras_to_onnx
from edgeproof.export.onnx_quant import convert_onnx_int8
from edgeproof.machine import cpu_info
from edgeproof.preprocess import to_float

INSTALL = 'pip install "edgeproof[openvino]"'
SELECTION_SIZE = 200  # held-out train images the int8 candidates are compared on
_EXACT = {"INFERENCE_PRECISION_HINT": "f32"}


def openvino(fmt: str):
    """``openvino``, or a one-line ExportError naming the extra.

    Example:
        >>> openvino("openvino-fp32").__name__  # doctest: +SKIP
        'openvino'
    """
    try:
        import openvino as ov
    except ImportError:
        raise ExportError(f"{fmt} needs OpenVINO, which is not installed: {INSTALL}.") from None
    return ov


def float_model(model, ctx: ExportContext, fmt: str, opset: int, options: dict):
    """(the OpenVINO model of the float ONNX graph, its manifest).

    Example:
        >>> ov_model, manifest = float_model(model, ctx, "openvino-fp32", 17, {})  # doctest: +SKIP
    """
    import onnx

    ov = openvino(fmt)
    proto, manifest = keras_to_onnx(model, ctx, fmt, opset, options)
    with tempfile.TemporaryDirectory() as d:
        src = str(Path(d) / "float.onnx")
        onnx.save(proto, src)
        try:
            ov_model = ov.convert_model(src)
        except Exception as e:
            raise ExportError(f"{fmt}: ov.convert_model failed: {first_line(e)}") from None
    manifest.input.name = ov_model.inputs[0].get_any_name()
    manifest.output.name = ov_model.outputs[0].get_any_name()
    manifest.conversion["openvino"] = {
        "from": "the float ONNX graph edgeproof exports (onnx-fp32's)", "compress_to_fp16": False,
        "why": "weights kept float32 so the IR computes what the float model does"}
    return ov_model, manifest


def ir_artifact(ov_model, manifest, fmt: str) -> Artifact:
    """The IR of ``ov_model`` (``.xml`` + its ``.bin``), float weights kept as they are.

    Example:
        >>> ir_artifact(ov_model, manifest, "openvino-fp32").companions.keys()  # doctest: +SKIP
        dict_keys(['.bin'])
    """
    ov = openvino(fmt)
    with tempfile.TemporaryDirectory() as d:
        xml = Path(d) / "model.xml"
        ov.save_model(ov_model, str(xml), compress_to_fp16=False)
        return Artifact(xml.read_bytes(), ".xml", manifest,
                        companions={".bin": xml.with_suffix(".bin").read_bytes()})


def outputs(ov_model, x: np.ndarray, config: dict | None = None, batch: int = 32) -> np.ndarray:
    """``ov_model``'s output on ``x`` on the CPU plugin (f32 unless ``config`` says).

    Example:
        >>> outputs(ov_model, x).shape  # doctest: +SKIP
        (200, 10)
    """
    import openvino as ov

    compiled = ov.Core().compile_model(ov_model, "CPU", _EXACT if config is None else config)
    out = compiled.output(0)
    return np.concatenate([compiled(x[i:i + batch])[out] for i in range(0, len(x), batch)])


def plugin_default_precision(ov_model) -> dict:
    """The inference precision the CPU plugin picks for ``ov_model`` on this machine when
    given no hint, read back from the compiled model.

    Example:
        >>> plugin_default_precision(ov_model)["cpu_plugin_default"]  # doctest: +SKIP
        'bf16'
    """
    import openvino as ov

    hint = str(ov.Core().compile_model(ov_model, "CPU").get_property("INFERENCE_PRECISION_HINT"))
    short = next((s for long, s in (("bfloat16", "bf16"), ("float16", "f16"),
                                    ("float32", "f32")) if long in hint), hint)
    return {"cpu_plugin_default": short, "measured_on": cpu_info()["cpu"],
            "edgeproof_runtime_default": "f32",
            "why": "OpenVINO's CPU plugin runs float layers in bf16 where the CPU has bf16 units; "
                   "edgeproof's openvino runtime asks for f32 (exact) unless --runtime-option "
                   "precision=default|bf16|f16, and every row shows the precision that ran"}


def convert_openvino_fp32(model, ctx: ExportContext, *, fmt: str, opset: int = 17,
                          **options) -> Artifact:
    """OpenVINO IR, float32 (see the module docstring).

    Example:
        >>> art = convert_openvino_fp32(model, ctx, fmt="openvino-fp32")  # doctest: +SKIP
    """
    ov_model, manifest = float_model(model, ctx, fmt, opset, {"opset": opset, **options})
    manifest.conversion["inference_precision"] = plugin_default_precision(ov_model)
    return ir_artifact(ov_model, manifest, fmt)


def selection_images(ctx: ExportContext, n: int = SELECTION_SIZE) -> tuple[np.ndarray, str]:
    """Up to ``n`` class-balanced train images not used for calibration (the calibration
    images when the context holds no others), and what they are.

    Example:
        >>> images, what = selection_images(ctx)  # doctest: +SKIP
        >>> what  # doctest: +SKIP
        '200 train images not used for calibration'
    """
    info, y = ctx.calibration_info or {}, ctx.train_labels
    if ctx.train_images is not None and y is not None and "indices_sha256" in info:
        used = calibration_indices(y, info.get("requested", info.get("n", 0)), info.get("seed", 0))
        if hashlib.sha256(used.tobytes()).hexdigest() == info["indices_sha256"]:
            rest = np.setdiff1d(np.arange(len(y)), used)
            if len(rest):
                pick = rest[calibration_indices(y[rest], min(n, len(rest)), info.get("seed", 0))]
                return ctx.train_images[pick], f"{len(pick)} train images not used for calibration"
    return ctx.calibration, (f"the {len(ctx.calibration)} calibration images (the context has "
                             "no other train images)")


def nncf_int8(ov_model, x: np.ndarray, preset: str, fmt: str):
    """NNCF post-training quantization of ``ov_model`` on calibration inputs ``x``.

    Example:
        >>> q = nncf_int8(ov_model, x, "performance", "openvino-int8")  # doctest: +SKIP
    """
    try:
        import nncf
    except ImportError:
        raise ExportError(f"{fmt} needs NNCF, which is not installed: {INSTALL}.") from None
    nncf.set_log_level(logging.ERROR)
    chatter = io.StringIO()  # NNCF draws progress bars on stdout
    try:
        with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
            return nncf.quantize(ov_model, nncf.Dataset([x[i:i + 1] for i in range(len(x))]),
                                 preset=getattr(nncf.QuantizationPreset, preset.upper()),
                                 subset_size=len(x))
    except Exception as e:
        raise ExportError(f"{fmt}: nncf.quantize failed: {first_line(e)}. Try --option "
                          "method=qdq.") from None


def qdq_int8(model, ctx: ExportContext, fmt: str, opset: int):
    """edgeproof's static QDQ int8 ONNX graph (``onnx-int8``), read by OpenVINO.

    Example:
        >>> q = qdq_int8(model, ctx, "openvino-int8", 17)  # doctest: +SKIP
    """
    import openvino as ov

    art = convert_onnx_int8(model, ctx, fmt=fmt, opset=opset)
    try:
        return ov.Core().read_model(art.data)
    except Exception as e:
        raise ExportError(f"{fmt}: OpenVINO cannot read the QDQ graph: {first_line(e)}") from None


def convert_openvino_int8(model, ctx: ExportContext, *, fmt: str, opset: int = 17,
                          method: str = "best", preset: str = "performance",
                          **options) -> Artifact:
    """OpenVINO IR, int8: NNCF's or the QDQ graph's, whichever keeps more answers.

    Args:
        method: ``best`` (both, the better kept), ``nncf`` or ``qdq``.
        preset: NNCF's preset (``performance``: symmetric; ``mixed``: asymmetric
            activations).

    Example:
        >>> art = convert_openvino_int8(model, ctx, fmt="openvino-int8")  # doctest: +SKIP
        >>> art.manifest.conversion["int8_choice"]["kept"]  # doctest: +SKIP
        'qdq'
    """
    if ctx.calibration is None or not len(ctx.calibration):
        raise ExportError(f"{fmt} needs calibration data: pass --calib DATA.")
    given = {"opset": opset, "method": method, "preset": preset, **options}
    ov_model, manifest = float_model(model, ctx, fmt, opset, given)
    x = model_input(ctx.calibration_float(), manifest)
    candidates = {}
    if method in ("best", "nncf"):
        candidates["nncf"] = nncf_int8(ov_model, x, preset, fmt)
    if method in ("best", "qdq"):
        candidates["qdq"] = qdq_int8(model, ctx, fmt, opset)
    images, what = selection_images(ctx)
    sel = model_input(to_float(images, ctx.preprocessing), manifest)
    want = outputs(ov_model, sel).argmax(1)
    agree = {k: round(float((outputs(m, sel).argmax(1) == want).mean()), 4)
             for k, m in candidates.items()}
    kept = max(agree, key=lambda k: (agree[k], k == "nncf"))
    manifest.calibration = ctx.calibration_info
    manifest.conversion["inference_precision"] = plugin_default_precision(candidates[kept])
    manifest.conversion["int8_choice"] = {
        "kept": kept, "top1_agreement": agree, "images": what,
        "against": "the float model (the same IR before quantization), both run at f32",
        "candidates": {k: v for k, v in {
            "nncf": f"nncf.quantize (preset {preset}) on the OpenVINO model",
            "qdq": "edgeproof's onnx-int8 static QDQ graph, read by OpenVINO"}.items()
            if k in agree}}
    return ir_artifact(candidates[kept], manifest, fmt)
