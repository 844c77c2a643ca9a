"""What every converter needs besides the model: class names, preprocessing, calibration.

``calibration_context`` draws the calibration images from a dataset's train split;
``context_for_model`` builds the context for a model a user brings (its manifest when
edgeproof wrote one, else flags and the calibration dataset).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from edgeproof.datasets import Dataset, calibration_indices, load_dataset
from edgeproof.errors import ExportError, UsageError
from edgeproof.keras_loader import model_preprocessing
from edgeproof.manifest import Manifest, Preprocessing, TensorInfo
from edgeproof.preprocess import to_float


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
        raise ExportError(f"Model has {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
                          "edgeproof exports image classifiers with one input and one output.")
    ishape = [-1] + [int(d) for d in model.inputs[0].shape[1:]]
    oshape = [-1] + [int(d) for d in model.outputs[0].shape[1:]]
    iname = model.inputs[0].name.split(":")[0]
    return TensorInfo(iname, ishape), TensorInfo("probs", oshape)


def base_manifest(model, ctx: ExportContext, fmt: str, options: dict) -> Manifest:
    inp, out = keras_io(model)
    return Manifest(format=fmt, class_names=list(ctx.class_names), input=inp, output=out,
                    preprocessing=ctx.preprocessing, source=dict(ctx.source), options=dict(options),
                    calibration=ctx.calibration_info)


DEFAULT_CALIB_SIZE = 200


def calib_size_for(requested: int | None, n_train: int, dataset: str) -> tuple[int, str | None]:
    """How many calibration images to draw, and a one-line note when the default was cut.

    ``requested`` None means the default (``DEFAULT_CALIB_SIZE``), which is cut to the
    train split when the data is smaller; an explicit size larger than the split is the
    user's error, said before any work starts.

    Example:
        >>> calib_size_for(None, 48, "photos")
        (48, 'calibration: the train split of photos has 48 images, fewer than the default 200; calibrating on all 48.')
        >>> calib_size_for(500, 48, "photos")
        Traceback (most recent call last):
        ...
        edgeproof.errors.UsageError: --calib-size 500 is larger than the train split of photos (48 images); pass --calib-size 48 or less.
    """
    if requested is None:
        if n_train >= DEFAULT_CALIB_SIZE:
            return DEFAULT_CALIB_SIZE, None
        return n_train, (f"calibration: the train split of {dataset} has {n_train} images, "
                         f"fewer than the default {DEFAULT_CALIB_SIZE}; calibrating on all "
                         f"{n_train}.")
    if requested > n_train:
        raise UsageError(f"--calib-size {requested} is larger than the train split of {dataset} "
                         f"({n_train} images); pass --calib-size {n_train} or less.")
    return requested, None


def calibration_context(ds: Dataset, n: int, seed: int, source: dict) -> ExportContext:
    """Class-balanced, deterministic calibration images from the train split.

    Example:
        >>> ctx = calibration_context(load_dataset("digits"), 200, 0, {"model_name": "m"})
        >>> ctx.calibration.shape[0], ctx.calibration_info["split"]
        (200, 'train')

    Raises:
        UsageError: the train split has fewer than ``n`` images.
    """
    if n > len(ds.y_train):
        raise UsageError(f"--calib-size {n} is larger than the train split of {ds.name} "
                         f"({len(ds.y_train)} images); pass --calib-size {len(ds.y_train)} or less.")
    idx = calibration_indices(ds.y_train, n, seed)
    info = {"split": "train", "n": int(len(idx)), "requested": int(n), "seed": seed,
            "class_balanced": True, "dataset": ds.name,
            "indices_sha256": hashlib.sha256(idx.tobytes()).hexdigest()}
    return ExportContext(ds.class_names, ds.preprocessing, ds.x_train[idx], info, source,
                         train_images=ds.x_train, train_labels=ds.y_train)


def context_for_model(model, model_path, calib: str | None, calib_size: int | None, seed: int,
                      preprocess: dict | None = None, class_names: list[str] | None = None):
    """Export context for a model a user brings; returns (context, dataset or None).

    Preprocessing comes from the model's manifest when edgeproof wrote one, else from
    its own first layers (a ``Rescaling(1/255)`` first: raw pixels), else 1/255; the
    ``preprocess`` overrides (``--preprocess``) win over all three. Class names: the
    flag, the manifest, the calibration dataset, else numbers. The manifest's source
    records how the preprocessing was decided.

    Example:
        >>> ctx, ds = context_for_model(model, "m.keras", "digits", 200, 0)  # doctest: +SKIP
    """
    pre, known_names, how = model_preprocessing(model, model_path)
    if preprocess:
        pre, how = pre.override(preprocess), f"given: --preprocess {preprocess}"
    ds = load_dataset(calib, image_size=pre.size[0], seed=seed) if calib else None
    n_out = int(model.outputs[0].shape[-1])
    names = class_names or known_names or (ds.class_names if ds else None) or \
        [str(i) for i in range(n_out)]
    if len(names) != n_out:
        raise UsageError(f"The model has {n_out} outputs but {len(names)} class names were given "
                         f"({'the calibration dataset' if ds and not class_names else '--class-names'}).")
    source = {"model_name": getattr(model, "name", None), "path": str(model_path),
              "sha256": model_fingerprint(model), "preprocessing": how}
    if ds is None:
        return ExportContext(list(names), pre, source=source), None
    n, note = calib_size_for(calib_size, len(ds.y_train), ds.name)
    ctx = calibration_context(ds, n, seed, source)
    ctx.class_names, ctx.preprocessing = list(names), pre
    if note:
        ctx.calibration_info["note"] = note
    return ctx, ds
