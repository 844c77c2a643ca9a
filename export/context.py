"""What every converter needs besides the model: class names, preprocessing, calibration."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from export.manifest import Manifest, Preprocessing, TensorInfo


@dataclass
class ExportContext:
    """Inputs shared by all converters.

    Args:
        class_names: label names, index = class id.
        preprocessing: the pixel pipeline the model was trained with.
        calibration: uint8 images (N, H, W, C) for int8 calibration, or None.
        calibration_info: how the calibration images were drawn (recorded in the manifest).
        source: facts about the source model (name, sha256, path).
        train_images: uint8 training images (N, H, W, C) for quantization-aware
            fine-tuning (``tflite-qat-int8``), or None.
        train_labels: their integer labels.
    """

    class_names: list[str]
    preprocessing: Preprocessing
    calibration: np.ndarray | None = None
    calibration_info: dict | None = None
    source: dict = field(default_factory=dict)
    train_images: np.ndarray | None = None
    train_labels: np.ndarray | None = None

    def calibration_float(self) -> np.ndarray:
        """Calibration images as the model's float input (same path as every runtime)."""
        from bench.preprocess import to_float

        return to_float(self.calibration, self.preprocessing)


def model_fingerprint(model) -> str:
    """sha256 over a Keras model's weights: identifies the source of every export."""
    h = hashlib.sha256()
    for w in model.get_weights():
        h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()


def keras_io(model) -> tuple[TensorInfo, TensorInfo]:
    """Float32 NHWC input/output specs of a single-input, single-output Keras model."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        from toolkit.errors import ExportError

        raise ExportError(f"Model has {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
                          "edgekit exports image classifiers with one input and one output.")
    ishape = [-1] + [int(d) for d in model.inputs[0].shape[1:]]
    oshape = [-1] + [int(d) for d in model.outputs[0].shape[1:]]
    iname = model.inputs[0].name.split(":")[0]
    return TensorInfo(iname, ishape), TensorInfo("probs", oshape)


def base_manifest(model, ctx: ExportContext, fmt: str, options: dict) -> Manifest:
    inp, out = keras_io(model)
    return Manifest(format=fmt, class_names=list(ctx.class_names), input=inp, output=out,
                    preprocessing=ctx.preprocessing, source=dict(ctx.source), options=dict(options),
                    calibration=ctx.calibration_info)
