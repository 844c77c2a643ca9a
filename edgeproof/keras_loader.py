"""Loading a user's Keras model (``.keras``, ``.h5`` or a SavedModel folder), and what
pixels it expects.

The core owns it because every layer needs it: training resumes and evaluates a model,
the exporters convert one, and the Keras runtime benchmarks one.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edgeproof.errors import ModelError, first_line
from edgeproof.manifest import Manifest, Preprocessing, manifest_path
from edgeproof.tfcompat import keras


def load_keras_model(path: str | Path, safe_mode: bool = True):
    """Load a user's Keras model (``.keras``, ``.h5`` or a SavedModel folder).

    ``safe_mode`` refuses ``.keras`` files with Lambda layers (arbitrary code); pass
    ``safe_mode=False`` (``--unsafe``) only for files you trust.

    Raises:
        ModelError: missing, not a Keras model, refused (Lambda) or unreadable.

    Example:
        >>> load_keras_model("runs/demo/models/small_cnn-keras.keras").name  # doctest: +SKIP
        'small_cnn'
    """
    k = keras()
    p = Path(path)
    if not p.exists():
        raise ModelError(f"Model not found: {p}")
    if p.is_file() and p.suffix not in (".keras", ".h5", ".hdf5"):
        raise ModelError(f"{p} is not a Keras model: expected .keras, .h5 or a SavedModel folder.")
    if p.is_dir() and not (p / "saved_model.pb").exists():
        raise ModelError(f"{p} is a folder without saved_model.pb; not a SavedModel.")
    try:
        kw = {"safe_mode": safe_mode} if p.suffix == ".keras" else {}
        return k.models.load_model(os.fspath(p), compile=False, **kw)
    except Exception as e:
        msg = first_line(e)
        if "lambda" in msg.lower() or "safe_mode" in msg.lower():
            raise ModelError(f"{p} contains a Lambda layer (arbitrary code); refused. Pass --unsafe "
                             "only if you trust the file.") from None
        raise ModelError(f"Cannot load {p} as a Keras model: {msg[:200]}") from None


# A first Rescaling layer with a scale below this maps 0-255 pixels (1/255, 1/127.5); one
# above it (edgeproof's own transfer models map [0, 1] to [-1, 1] with 2.0) expects
# pixels already scaled.
RAW_PIXEL_SCALE = 0.1
_PASS_THROUGH = ("Resizing", "CenterCrop", "InputLayer")


def _leading_layers(model):
    """The layers from the input onwards while the graph is a single chain, descending
    into a nested model that comes first."""
    k = keras()
    layers = model.layers if isinstance(model, k.Sequential) else \
        [layer for layer in model.layers if not isinstance(layer, k.layers.InputLayer)]
    for layer in layers:
        if isinstance(layer, k.Model):
            yield from _leading_layers(layer)
            return
        yield layer
        if len(getattr(layer, "_outbound_nodes", [])) > 1:
            return  # a branch: past here the input is no longer one chain


def detect_preprocessing(model) -> str | None:
    """Why the model takes raw 0-255 pixels, or None when its first layers do not say so.

    A first ``Rescaling(1/255)`` (Keras' own tutorials build models that way) or a first
    ``Normalization`` adapted on pixel values means the model scales its input itself;
    feeding it pixels already scaled by 1/255 would scale them twice.

    Example:
        >>> k = keras()
        >>> m = k.Sequential([k.Input((8, 8, 3)), k.layers.Rescaling(1 / 255), k.layers.Flatten()])
        >>> detect_preprocessing(m)
        "its first layer 'rescaling' is Rescaling(scale=0.00392157, offset=0): it takes raw 0-255 pixels"
    """
    k = keras()
    for layer in _leading_layers(model):
        name = type(layer).__name__
        if name in _PASS_THROUGH:
            continue
        if isinstance(layer, k.layers.Rescaling):
            scale = float(np.max(np.abs(np.asarray(layer.scale, dtype=np.float64))))
            if scale < RAW_PIXEL_SCALE:
                return (f"its first layer '{layer.name}' is Rescaling(scale={scale:.6g}, "
                        f"offset={float(np.mean(layer.offset)):g}): it takes raw 0-255 pixels")
            return None
        if isinstance(layer, k.layers.Normalization):
            mean = float(np.mean(np.asarray(layer.mean)))
            if mean > 2.0:  # adapted on 0-255 pixels
                return (f"its first layer '{layer.name}' is Normalization(mean={mean:.4g}): it "
                        "takes raw 0-255 pixels")
            return None
        return None
    return None


def model_preprocessing(model, model_path) -> tuple[Preprocessing, list[str] | None, str]:
    """The preprocessing a Keras model expects, its class names when known, and how that
    was decided.

    In order: the manifest beside the model (edgeproof wrote it); the model's own first
    layers (``detect_preprocessing``: raw pixels, scale 1); else the input shape with
    the usual 1/255 scaling, and no class names.

    Example:
        >>> pre, names, how = model_preprocessing(model, "runs/train/model.keras")  # doctest: +SKIP
        >>> how  # doctest: +SKIP
        'manifest'
    """
    side = manifest_path(model_path)
    if side.exists():
        m = Manifest.load(side)
        return m.preprocessing, list(m.class_names), "manifest"
    h, w, c = (int(d) for d in model.inputs[0].shape[1:4])
    pre = Preprocessing(size=[h, w], color="grayscale" if c == 1 else "rgb")
    why = detect_preprocessing(model)
    if why:
        return pre.override({"scale": 1.0, "offset": 0.0}), None, f"detected: {why}"
    return pre, None, "assumed: pixels * 1/255 (no manifest; the model's first layers do not scale)"
