"""What every converter needs besides the model: class names, preprocessing, calibration,
and the model itself as a conversion source.

``calibration_context`` draws the calibration images from a dataset's train split;
``context_for_model`` builds the context for a model a user brings (its manifest when
edgeproof wrote one, else what the model shows, else flags and the calibration dataset).

A converter's ``model`` is a live tf-keras model (what ``run`` and ``train`` hand over)
or a ``Reference`` of any kind (what ``export`` and ``optimize`` load); ``source_of``
makes both one object, and ``tflite_converter`` / ``tf_keras_model`` are where the kinds
part: tf-keras converts from the Keras model, Keras 3 and SavedModels from a serving
SavedModel, ONNX references are not TensorFlow graphs.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeproof.datasets import Dataset, calibration_indices, load_dataset
from edgeproof.errors import ExportError, UsageError
from edgeproof.manifest import Manifest, Preprocessing, TensorInfo
from edgeproof.preprocess import to_float
from edgeproof.reference import Reference, reference_from_model, reference_preprocessing
from edgeproof.reference_tf import serving_saved_model
from edgeproof.reference_torch import TORCH_KINDS
from edgeproof.tfcompat import tf

TFLITE_FROM_ONNX = (
    "{what} is not a TensorFlow graph and edgeproof makes TFLite ({fmt}) from TensorFlow graphs "
    "only (onnx2tf would convert it, but it pins TensorFlow 2.19 and cannot be installed beside "
    "this one): use onnx-fp32, onnx-fp16 or onnx-int8, or export the original model to TFLite.")


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
        conversion: what was done to the model before conversion (exact rewrites), copied
            into each manifest's ``conversion``.
    """

    class_names: list[str]
    preprocessing: Preprocessing
    calibration: np.ndarray | None = None
    calibration_info: dict | None = None
    source: dict = field(default_factory=dict)
    train_images: np.ndarray | None = None
    train_labels: np.ndarray | None = None
    conversion: dict = field(default_factory=dict)

    def calibration_float(self) -> np.ndarray:
        """Calibration images as the model's float input (same path as every runtime)."""
        return to_float(self.calibration, self.preprocessing)


def source_of(model) -> Reference:
    """The conversion source: ``model`` itself when it is a ``Reference``, else a cheap
    ``Reference`` around the live Keras model.

    Example:
        >>> source_of(model).kind  # doctest: +SKIP
        'tf_keras'
    """
    return reference_from_model(model)


def tf_keras_of(model):
    """The tf-keras model behind ``model``, or None (Keras 3, SavedModel, ONNX).

    Example:
        >>> tf_keras_of(load_reference("resnet18.onnx")) is None  # doctest: +SKIP
        True
    """
    ref = source_of(model)
    return ref.model if ref.kind == "tf_keras" else None


def tf_keras_model(model, fmt: str):
    """The tf-keras model for what only tf-keras does (QAT); an ExportError for the others.

    Example:
        >>> tf_keras_model(load_reference("k3.keras"), "tflite-qat-int8")  # doctest: +SKIP
        Traceback (most recent call last):
        ...
        edgeproof.errors.ExportError: tflite-qat-int8 needs a tf-keras model; ...
    """
    return source_of(model).tf_keras_model(fmt, ExportError)


def tflite_converter(model, fmt: str = "tflite"):
    """A ``TFLiteConverter`` for any TensorFlow-kind source.

    tf-keras: ``from_keras_model``. Keras 3 and SavedModels: ``from_saved_model`` with the
    serving signature (a Keras 3 model is written once by its own ExportArchive; handing
    a Keras 3 model to ``from_concrete_functions`` as trackable gives NaN, and
    ``from_keras_model`` prints a banner on stdout). ONNX: an ExportError saying why not.

    Example:
        >>> ref = load_reference("my_savedmodel")  # doctest: +SKIP
        >>> conv = tflite_converter(ref, "tflite-fp32")  # doctest: +SKIP
    """
    t = tf()
    ref = source_of(model)
    if ref.kind == "tf_keras":
        return t.lite.TFLiteConverter.from_keras_model(ref.model)
    if ref.kind == "onnx":
        raise ExportError(TFLITE_FROM_ONNX.format(fmt=fmt, what=ref.describe()))
    if ref.kind in TORCH_KINDS:
        raise ExportError(f"{fmt} on {ref.describe()}: this step needs a TensorFlow graph; a "
                          "PyTorch model's TFLite comes from litert-torch (tflite-fp32, "
                          "tflite-dynamic, tflite-int8).")
    folder, key = serving_saved_model(ref)
    return t.lite.TFLiteConverter.from_saved_model(folder, signature_keys=[key])


def model_input(x: np.ndarray, manifest: Manifest) -> np.ndarray:
    """Float NHWC images in the layout of ``manifest``'s input (NCHW: transposed).

    Example:
        >>> model_input(ctx.calibration_float(), manifest).shape  # doctest: +SKIP
        (200, 3, 32, 32)
    """
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if manifest.input.layout == "NCHW" \
        else x


def model_fingerprint(model) -> str:
    """sha256 over a Keras model's weights (of the file, for SavedModel / ONNX references):
    identifies the source of every export.

    Example:
        >>> len(model_fingerprint(model))  # doctest: +SKIP
        64
    """
    return source_of(model).sha256()


def keras_io(model) -> tuple[TensorInfo, TensorInfo]:
    """Float32 NHWC input/output specs of a single-input, single-output model (any kind).

    Example:
        >>> keras_io(model)[0].shape  # doctest: +SKIP
        [-1, 32, 32, 3]
    """
    ref = source_of(model)
    return TensorInfo(ref.input_name, [-1, *ref.input_shape]), \
        TensorInfo("probs", [-1, ref.num_classes])


def base_manifest(model, ctx: ExportContext, fmt: str, options: dict) -> Manifest:
    """The manifest every converter starts from; a source that ends in logits gets a
    softmax in each export, and the manifest says so.

    Example:
        >>> base_manifest(model, ctx, "tflite-fp32", {}).input.shape  # doctest: +SKIP
        [-1, 32, 32, 3]
    """
    ref = source_of(model)
    inp, out = keras_io(ref)
    manifest = Manifest(format=fmt, class_names=list(ctx.class_names), input=inp, output=out,
                        preprocessing=ctx.preprocessing, source=dict(ctx.source),
                        options=dict(options), calibration=ctx.calibration_info,
                        conversion=dict(ctx.conversion))
    if ref.outputs_logits:
        manifest.conversion["softmax"] = {
            "added": True, "why": f"the source model outputs logits ({ref.output_why}); a "
                                  "softmax after it makes this artifact output probabilities, "
                                  "as every export is compared"}
    return manifest


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

    ``model`` is a ``Reference`` (any kind) or a live Keras model. Preprocessing comes
    from the model's manifest when edgeproof wrote one, else from what the model shows (a
    ``Rescaling(1/255)`` first, a constant scale first in a SavedModel / ONNX graph: raw
    pixels), else 1/255 for Keras models; the ``preprocess`` overrides (``--preprocess``)
    win over all; a SavedModel or ONNX file that shows nothing needs them (UsageError).
    Class names: the flag, the manifest, the calibration dataset, else numbers. The
    manifest's source records the model's kind and how the preprocessing was decided.

    Example:
        >>> ctx, ds = context_for_model(ref, "m.keras", "digits", 200, 0)  # doctest: +SKIP
    """
    ref = source_of(model)
    if ref.path is None and model_path is not None:
        ref = dataclasses.replace(ref, path=Path(model_path))
    pre, known_names, how = reference_preprocessing(ref, preprocess)
    ds = load_dataset(calib, image_size=pre.size[0], seed=seed) if calib else None
    n_out = ref.num_classes
    names = class_names or known_names or (ds.class_names if ds else None) or \
        [str(i) for i in range(n_out)]
    if len(names) != n_out:
        raise UsageError(f"The model has {n_out} outputs but {len(names)} class names were given "
                         f"({'the calibration dataset' if ds and not class_names else '--class-names'}).")
    source = {"model_name": ref.name, "path": str(model_path), "sha256": ref.sha256(),
              "preprocessing": how, "kind": ref.kind}
    if ref.layout != "NHWC":
        source["layout"] = ref.layout
    if ref.outputs_logits:
        source["outputs"] = f"logits ({ref.output_why}); softmax applied"
    if ds is None:
        return ExportContext(list(names), pre, source=source), None
    n, note = calib_size_for(calib_size, len(ds.y_train), ds.name)
    ctx = calibration_context(ds, n, seed, source)
    ctx.class_names, ctx.preprocessing = list(names), pre
    if note:
        ctx.calibration_info["note"] = note
    return ctx, ds
