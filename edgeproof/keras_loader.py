"""Keras files of both generations: which Keras wrote a file, loading it with that Keras,
and what pixels the model expects.

edgeproof runs tf-keras 2 (``TF_USE_LEGACY_KERAS=1``, for tensorflow-model-optimization),
and Keras 3 (``import keras``, the default since TensorFlow 2.16) lives beside it in the
same process: the file's own ``metadata.json`` (``.keras``) or ``keras_version``
attribute (``.h5``) says which one wrote it, and that one loads it.
``load_keras_model`` stays tf-keras only (``train --resume`` and quantization-aware
training need a tf-keras model); ``edgeproof.reference.load_reference`` loads any kind.
"""

from __future__ import annotations

import json
import os
import sys
import zipfile
from pathlib import Path

import numpy as np

from edgeproof.errors import ModelError, first_line
from edgeproof.tfcompat import keras, tf

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")


def keras_file_version(path: str | Path) -> str:
    """The Keras version that wrote a ``.keras`` / ``.h5`` file, read from the file itself.

    Raises:
        ModelError: the file is not a readable Keras archive (truncated, not a zip / HDF5).

    Example:
        >>> keras_file_version("runs/train/model.keras")  # doctest: +SKIP
        '2.21.0'
    """
    p = Path(path)
    if p.suffix.lower() == ".keras":
        try:
            with zipfile.ZipFile(p) as z:
                meta = json.loads(z.read("metadata.json"))
            return str(meta["keras_version"])
        except (zipfile.BadZipFile, OSError) as e:
            raise ModelError(f"{p} is not a readable .keras archive ({first_line(e)}); it looks "
                             "truncated or is not a Keras file: save or copy it again.") from None
        except (KeyError, ValueError):
            raise ModelError(f"{p} is a zip without a Keras metadata.json; it is not a .keras "
                             "model: save it with model.save('name.keras').") from None
    import h5py

    try:
        with h5py.File(p, "r") as f:
            version = f.attrs.get("keras_version")
    except OSError as e:
        raise ModelError(f"{p} is not a readable HDF5 Keras file ({first_line(e)}); it looks "
                         "truncated or is not a Keras file: save or copy it again.") from None
    if version is None:
        raise ModelError(f"{p} is an HDF5 file without a keras_version: weights only, not a "
                         "model. Save the whole model with model.save('name.keras').")
    return version.decode() if isinstance(version, bytes) else str(version)


def keras_major(version: str) -> int:
    """The major number of a Keras version string (0 when it is not a number).

    Example:
        >>> keras_major("3.15.1"), keras_major("2.21.0")
        (3, 2)
    """
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        return 0


def unknown_custom_layers(path: str | Path) -> list[str]:
    """Classes in a ``.keras`` file's config that need user code this process lacks.

    A custom class is saved with ``module: null`` and ``registered_name: "package>Name"``;
    unless it is registered here (its package imported), no loader can build it. Reading
    the config first gives a clear message instead of the loader's chained TypeError.

    Example:
        >>> unknown_custom_layers("k3_custom.keras")  # doctest: +SKIP
        ['MyLayer (registered as mine>MyLayer)']
    """
    p = Path(path)
    if p.suffix.lower() != ".keras":
        return []
    with zipfile.ZipFile(p) as z:
        config = json.loads(z.read("config.json"))
    found: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            reg = node.get("registered_name")
            name = str(node.get("class_name", ""))
            internal = name.startswith("__") and name.endswith("__")  # __keras_tensor__, ...
            if "class_name" in node and not internal and (node.get("module") is None or
                                                          (isinstance(reg, str) and ">" in reg)):
                if not _registered(reg or node["class_name"]):
                    found.append(f"{node['class_name']}" + (f" (registered as {reg})"
                                                            if reg else ""))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(config)
    return list(dict.fromkeys(found))


def _registered(name: str) -> bool:
    mod = sys.modules.get("keras")
    if mod is None or not hasattr(mod, "saving"):
        return False
    try:
        return mod.saving.get_registered_object(name) is not None
    except Exception:  # an odd name: treat as unknown
        return False


def keras3():
    """The Keras 3 module (``import keras``) on the TensorFlow backend, beside tf-keras.

    Importing it costs about 1.5 s and 107 MiB once (measured, docs/EXPORT.md) and changes
    no global: ``tf.keras`` stays tf-keras.

    Raises:
        ModelError: Keras 3 is missing, or this process imported it on another backend.

    Example:
        >>> keras3().backend.backend()  # doctest: +SKIP
        'tensorflow'
    """
    tf()
    if "keras" not in sys.modules:
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    try:
        import keras as k3
    except ImportError:
        raise ModelError("This model was saved by Keras 3, which is not installed: pip install "
                         "'keras>=3'.") from None
    if k3.backend.backend() != "tensorflow":
        raise ModelError(f"Keras 3 runs on the {k3.backend.backend()} backend in this process; "
                         "edgeproof converts Keras 3 models on TensorFlow: set "
                         "KERAS_BACKEND=tensorflow.")
    return k3


def _load_error(p: Path, e: Exception, who: str):
    msg = first_line(e)
    if "lambda" in msg.lower() or "safe_mode" in msg.lower():
        return ModelError(f"{p} contains a Lambda layer (arbitrary code); refused. Pass --unsafe "
                          "only if you trust the file.")
    cause = e.__cause__ or e.__context__
    if cause is not None and "Could not locate" in str(cause):
        msg = first_line(cause)
    return ModelError(f"Cannot load {p} as a {who} model: {msg[:200]}")


def load_keras3_model(path: str | Path, safe_mode: bool = True):
    """Load a file Keras 3 wrote, with Keras 3, in this process (custom layers refused first).

    Example:
        >>> load_keras3_model("my_model.keras").name  # doctest: +SKIP
        'k3cnn'
    """
    p = Path(path)
    custom = unknown_custom_layers(p)
    if custom:
        raise ModelError(f"{p} is a Keras 3 model with custom layer(s) {', '.join(custom)} that "
                         "edgeproof cannot build without their code: export it where the code "
                         "is importable (model.export('saved_model_dir')) and give edgeproof "
                         "that SavedModel.")
    k3 = keras3()
    try:
        kw = {"safe_mode": safe_mode} if p.suffix.lower() == ".keras" else {}
        return k3.saving.load_model(os.fspath(p), compile=False, **kw)
    except Exception as e:
        raise _load_error(p, e, "Keras 3") from None


def load_keras_model(path: str | Path, safe_mode: bool = True):
    """Load a tf-keras 2 model (``.keras``, ``.h5`` or a tf-keras SavedModel folder).

    ``safe_mode`` refuses ``.keras`` files with Lambda layers (arbitrary code); pass
    ``safe_mode=False`` (``--unsafe``) only for files you trust. A file Keras 3 wrote is
    refused with a pointer to ``edgeproof.reference.load_reference``.

    Raises:
        ModelError: missing, not a tf-keras model, refused (Lambda) or unreadable.

    Example:
        >>> load_keras_model("runs/demo/models/small_cnn-keras.keras").name  # doctest: +SKIP
        'small_cnn'
    """
    k = keras()
    p = Path(path)
    if not p.exists():
        raise ModelError(f"Model not found: {p}")
    if p.is_file() and p.suffix.lower() not in KERAS_SUFFIXES:
        raise ModelError(f"{p} is not a Keras model: expected .keras, .h5 or a SavedModel folder.")
    if p.is_dir() and not (p / "saved_model.pb").exists():
        raise ModelError(f"{p} is a folder without saved_model.pb; not a SavedModel.")
    if p.is_dir() and not (p / "keras_metadata.pb").exists():
        raise ModelError(f"{p} is a SavedModel that tf-keras did not write (Keras 3 export() or "
                         "tf.saved_model.save); this needs a tf-keras 2 model.")
    if p.is_file():
        version = keras_file_version(p)
        if keras_major(version) >= 3:
            raise ModelError(f"{p} was saved by Keras {version}; this needs a tf-keras 2 model "
                             "(train --resume, quantization-aware training). Other commands "
                             "take it as it is.")
        custom = unknown_custom_layers(p)
        if custom:
            raise ModelError(f"{p} has custom layer(s) {', '.join(custom)} "
                             "that edgeproof cannot build without their code; export a "
                             "SavedModel where the code is importable.")
    try:
        kw = {"safe_mode": safe_mode} if p.suffix == ".keras" else {}
        return k.models.load_model(os.fspath(p), compile=False, **kw)
    except Exception as e:
        raise _load_error(p, e, "Keras") from None


def keras_module_of(model):
    """The Keras that built ``model``: Keras 3 (``keras``) or tf-keras (``tf_keras``).

    Example:
        >>> keras_module_of(load_keras3_model("k3.keras")).__name__  # doctest: +SKIP
        'keras'
    """
    return keras3() if is_keras3_model(model) else keras()


def is_keras3_model(model) -> bool:
    """Whether ``model`` is a live Keras 3 model (its class lives in the ``keras`` package).

    Example:
        >>> is_keras3_model(keras().Sequential())
        False
    """
    return type(model).__module__.startswith("keras.")


# A first Rescaling layer with a scale below this maps 0-255 pixels (1/255, 1/127.5); one
# above it (edgeproof's own transfer models map [0, 1] to [-1, 1] with 2.0) expects
# pixels already scaled.
RAW_PIXEL_SCALE = 0.1
_PASS_THROUGH = ("Resizing", "CenterCrop", "InputLayer")


def is_nested_model(layer) -> bool:
    """A layer that is itself a model (a transfer model's base, a Sequential block), of
    either Keras: duck-typed, since Keras 3 models are not tf-keras classes.

    Example:
        >>> is_nested_model(object())
        False
    """
    return hasattr(layer, "layers") and hasattr(layer, "inputs")


def _leading_layers(model):
    """The layers from the input onwards while the graph is a single chain, descending
    into a nested model that comes first. Matched by class name: Keras 3 layers are not
    tf-keras classes."""
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        if is_nested_model(layer):
            yield from _leading_layers(layer)
            return
        yield layer
        if len(getattr(layer, "_outbound_nodes", [])) > 1:
            return  # a branch: past here the input is no longer one chain


def detect_preprocessing(model) -> str | None:
    """Why the model takes raw 0-255 pixels, or None when its first layers do not say so.

    A first ``Rescaling(1/255)`` (Keras' own tutorials build models that way) or a first
    ``Normalization`` adapted on pixel values means the model scales its input itself;
    feeding it pixels already scaled by 1/255 would scale them twice. Works for tf-keras
    and Keras 3 models alike.

    Example:
        >>> k = keras()
        >>> m = k.Sequential([k.Input((8, 8, 3)), k.layers.Rescaling(1 / 255, name="rescaling"), k.layers.Flatten()])
        >>> detect_preprocessing(m)
        "its first layer 'rescaling' is Rescaling(scale=0.00392157, offset=0): it takes raw 0-255 pixels"
    """
    for layer in _leading_layers(model):
        name = type(layer).__name__
        if name in _PASS_THROUGH:
            continue
        if name == "Rescaling":
            cfg = layer.get_config()
            scale = float(np.max(np.abs(np.asarray(cfg["scale"], dtype=np.float64))))
            if scale < RAW_PIXEL_SCALE:
                return (f"its first layer '{layer.name}' is Rescaling(scale={scale:.6g}, "
                        f"offset={float(np.mean(cfg['offset'])):g}): it takes raw 0-255 pixels")
            return None
        if name == "Normalization":
            mean = float(np.mean(np.asarray(layer.mean)))
            if mean > 2.0:  # adapted on 0-255 pixels
                return (f"its first layer '{layer.name}' is Normalization(mean={mean:.4g}): it "
                        "takes raw 0-255 pixels")
            return None
        return None
    return None
