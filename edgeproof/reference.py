"""One loader for every reference model: ``load_reference(path)`` -> ``Reference``.

What the commands compare with (``export``, ``optimize``, ``evaluate``, ``explain``, and
``bench --reference`` / ``parity`` through the Keras runtime) can be:

- a ``.keras`` / ``.h5`` file: the file's own metadata says which Keras wrote it; tf-keras 2
  files load with tf-keras, Keras 3 files with Keras 3 in this same process (the two live
  together; docs/EXPORT.md has the measured cost);
- a SavedModel folder: tf-keras' own (``keras_metadata.pb``) loads as a tf-keras model;
  any other (Keras 3 ``export()``, ``tf.saved_model.save``) runs through its serving
  signature;
- an ``.onnx`` float file (PyTorch, Keras 3, tf2onnx), on ONNX Runtime (its weights may
  sit in ``model.onnx.data`` beside it, as ``torch.onnx.export`` writes them);
- a PyTorch ``torch.export`` program (``.pt2``) or TorchScript file, run in PyTorch
  (``edgeproof.reference_torch``; the ``[torch]`` extra).

Anything else, or a file that is broken, is a one-line ``ModelError`` naming the file,
what it looked like and what to do.

Example:
    >>> ref = load_reference("my_model.keras")  # doctest: +SKIP
    >>> pre, names, how = reference_preprocessing(ref)  # doctest: +SKIP
    >>> ref.predict(to_float(images, pre)).shape  # doctest: +SKIP
    (8, 10)
"""

from __future__ import annotations

from pathlib import Path

from edgeproof.errors import ModelError, UsageError
from edgeproof.keras_loader import (KERAS_SUFFIXES, keras_file_version, keras_major,
                                    load_keras3_model, load_keras_model)
from edgeproof.manifest import Manifest, Preprocessing, manifest_path
from edgeproof.reference_model import (KINDS, Reference, keras_reference,
                                       reference_from_model)
from edgeproof.reference_onnx import load_onnx_reference
from edgeproof.reference_tf import load_saved_model
from edgeproof.reference_torch import TORCH_SUFFIXES, load_torch_reference, torch_file_kind

UNKNOWN_PREPROCESSING = "unknown: no manifest, and the file does not show how it scales pixels"
GIVE = ("give a .keras or .h5 file, a SavedModel folder, an .onnx file, or a PyTorch .pt2 "
        "(torch.export) or TorchScript file")
ASSUMED = "assumed: pixels * 1/255 (no manifest; the model's first layers do not scale)"

__all__ = ["KINDS", "Reference", "load_reference", "reference_from_model",
           "reference_preprocessing", "UNKNOWN_PREPROCESSING"]


def looks_like(p: Path) -> str:
    """What a file's first bytes look like, for the message refusing it.

    Example:
        >>> looks_like(Path("README.md"))  # doctest: +SKIP
        'text'
    """
    try:
        head = b""
        if p.is_file():
            with open(p, "rb") as fh:  # a refused file may be gigabytes: read its head only
                head = fh.read(16)
    except OSError:
        return "unreadable"
    if p.is_dir():
        return "a folder without saved_model.pb"
    if head[4:8] == b"TFL3":
        return "a TFLite flatbuffer: an export, not a reference; give the model it came from"
    if head.startswith(b"PK"):
        kind = torch_file_kind(p)
        return {"pickle": "a torch.save pickle", "torch_export": "a torch.export program",
                "torchscript": "a TorchScript module"}.get(kind, "a zip archive")
    if head.startswith(b"\x89HDF"):
        return "an HDF5 file"
    if not head:
        return "an empty file"
    try:
        head.decode("utf-8")
        return "text"
    except UnicodeDecodeError:
        return "binary data of no known model format"


def load_reference(path: str | Path, safe_mode: bool = True) -> Reference:
    """Load a reference model of any kind (see the module docstring).

    Args:
        path: a ``.keras`` / ``.h5`` file, a SavedModel folder, an ``.onnx`` file, or a
            PyTorch ``.pt2`` / TorchScript file.
        safe_mode: refuse Lambda layers in ``.keras`` files (``--unsafe`` turns it off).

    Raises:
        ModelError: missing, none of these kinds, truncated, a custom layer this process
            cannot build, two inputs, ... (one line: the file, what it looked like, what
            to do).

    Example:
        >>> load_reference("resnet18.onnx").describe()  # doctest: +SKIP
        'resnet18.onnx (an ONNX model, pytorch 2.13.0)'
    """
    p = Path(path)
    if not p.exists():
        raise ModelError(f"Model not found: {p}")
    if p.is_dir():
        if not (p / "saved_model.pb").exists():
            raise ModelError(f"{p} is a folder without saved_model.pb, not a SavedModel: "
                             f"{GIVE}.")
        if (p / "keras_metadata.pb").exists():  # tf-keras' own SavedModel: its layers too
            return keras_reference(load_keras_model(p, safe_mode), p, "2 (SavedModel)")
        return load_saved_model(p)
    suffix = p.suffix.lower()
    if suffix in KERAS_SUFFIXES:
        version = keras_file_version(p)
        if keras_major(version) >= 3:
            return keras_reference(load_keras3_model(p, safe_mode), p, version)
        return keras_reference(load_keras_model(p, safe_mode), p, version)
    if suffix == ".onnx":
        return load_onnx_reference(p)
    if suffix in TORCH_SUFFIXES:
        return load_torch_reference(p)
    raise ModelError(f"{p} is not a model edgeproof can take as a reference (it looks like "
                     f"{looks_like(p)}): {GIVE}.")


def reference_preprocessing(ref: Reference, override: dict | None = None,
                            strict: bool = True) -> tuple[Preprocessing, list[str] | None, str]:
    """The pixels ``ref`` expects, its class names when known, and how that was decided.

    In order: the manifest beside the model (edgeproof wrote it); what the model shows
    (a leading Rescaling / Normalization layer, a constant scale or mean at the start of
    its graph); for Keras models, the usual 1/255 (as edgeproof always did); ``override``
    (``--preprocess``) replaces the fields it names. A SavedModel or ONNX file that shows
    nothing is unknown: a UsageError asking for ``--preprocess`` (``strict``), or the
    ``UNKNOWN_PREPROCESSING`` note.

    Example:
        >>> pre, names, how = reference_preprocessing(load_reference("resnet18.onnx"),
        ...                                           {"scale": 1 / 255})  # doctest: +SKIP
        >>> how  # doctest: +SKIP
        "given: --preprocess {'scale': 0.00392156862745098}"
    """
    side = manifest_path(ref.path) if ref.path is not None else None
    names = None
    if side is not None and side.exists():
        m = Manifest.load(side)
        pre, names, how = m.preprocessing, list(m.class_names), "manifest"
    else:
        h, w, c = ref.input_shape
        pre = Preprocessing(size=[h, w], color="grayscale" if c == 1 else "rgb")
        if ref.evidence:
            pre, how = pre.override({"scale": ref.evidence[0], "offset": ref.evidence[1]}), \
                f"detected: {ref.evidence[2]}"
        else:
            how = ASSUMED if ref.kind in ("tf_keras", "keras3") else UNKNOWN_PREPROCESSING
    sized = override and ({"crop", "size"} & set(override))
    if ref.extras.get("any_size") and not sized and how != "manifest" and strict:
        raise UsageError(f"{ref.describe()} runs at any input size and a TorchScript file does "
                         "not store the one it was trained at: pass --preprocess crop=N (N x N "
                         "pixels), or save a .pt2 (torch.export keeps the shape).")
    if override:
        return pre.override(override), names, f"given: --preprocess {override}"
    if how == UNKNOWN_PREPROCESSING and strict:
        raise UsageError(f"{ref.describe()} has no manifest and its graph does not show how it "
                         "scales pixels (a PyTorch model normalises outside the graph): pass "
                         "--preprocess scale=...,offset=... (input = pixel * scale + offset; "
                         "e.g. scale=1/255 for inputs in [0, 1]).")
    return pre, names, how
