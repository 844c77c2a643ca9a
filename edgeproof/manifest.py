"""The manifest that travels with every artifact, as ``<artifact>.json`` beside it.

It holds everything a runtime needs to feed the artifact the same pixels the Keras
model saw (preprocessing, input/output dtype and quantization) and everything a user
needs to trust it (class names, source model hash, library versions, the artifact's
sha256). It is TensorFlow-free so that ``edgeproof.bench`` can read it on an edge box.

Manifests written by edgekit 0.1.0 (this project's former name) load unchanged: their
``edgekit_version`` becomes ``producer: edgekit`` and ``producer_version``.

``micro`` (optional, written only when measured) is what TFLM measured for the artifact:
``{arena_bytes, flash_bytes, ops, ...}``, the figures a firmware author pastes. It is
added to the sidecar ``<artifact>.json`` only, after export: the copy embedded in a
``.tflite`` file is part of the file's bytes (and its sha256), so it never changes.
Manifests without it (every older version) load unchanged.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

from edgeproof import __version__
from edgeproof.embedded import read_embedded_manifest
from edgeproof.errors import ModelError, UsageError

SCHEMA_VERSION = 1
_LIBS = ("tensorflow", "tf-keras", "tf2onnx", "onnx", "onnxruntime-gpu", "onnxruntime",
         "ai-edge-litert", "tensorflow-model-optimization", "numpy")


def library_versions(names=_LIBS) -> dict[str, str]:
    """Versions of the installed libraries that matter for conversion, without importing them."""
    out = {"python": platform.python_version(), "edgeproof": __version__}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    p = Path(path)
    files = sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]
    for f in files:
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


@dataclass
class Preprocessing:
    """How raw uint8 pixels become the model's float input.

    Geometry first, on the uint8 image: with ``resize``, the shorter side is resized to
    ``resize`` (aspect kept) and the centre ``size`` cut out (torchvision's
    ``Resize(resize)`` + ``CenterCrop``); ``crop=N`` is that centre crop, N x N, and makes
    ``size`` [N, N] (alone, the shorter side goes to N). Without either, an image of another
    size is resized to ``size``; an image already at ``size`` is taken as it is (decoded and
    resized already). Then ``x = pixel * scale + offset``, and with ``mean`` / ``std``
    ``x = (x - mean) / std`` per channel (torchvision's ``ToTensor`` + ``Normalize``: the
    default scale 1/255 is ``ToTensor``).

    Args:
        size: the model's input ``[height, width]``.
        color: ``"grayscale"`` (1 channel) or ``"rgb"`` (3 channels).
        scale, offset: affine map applied to uint8 pixel values.
        channel_order: ``"RGB"`` or ``"BGR"`` (caffe-style models).
        interpolation: resize filter (``"bilinear"``, ``"nearest"``, ``"bicubic"``, ...).
        mean, std: one float per channel of the model input (in its channel order), or None.
        resize: the shorter side before the centre crop, or None.
        crop: the centre crop's side (``size`` is then ``[crop, crop]``), or None.

    Example:
        >>> Preprocessing(size=[224, 224], mean=[0.485, 0.456, 0.406],
        ...               std=[0.229, 0.224, 0.225], resize=256, crop=224).channels
        3
    """

    size: list[int]
    color: str = "rgb"
    scale: float = 1.0 / 255.0
    offset: float = 0.0
    channel_order: str = "RGB"
    interpolation: str = "bilinear"
    mean: list[float] | None = None
    std: list[float] | None = None
    resize: int | None = None
    crop: int | None = None

    def __post_init__(self) -> None:
        for name in ("mean", "std"):
            values = getattr(self, name)
            if values is None:
                continue
            values = [float(v) for v in values]
            if len(values) != self.channels:
                raise UsageError(f"--preprocess {name}= has {len(values)} value(s) but the model "
                                 f"input has {self.channels} channel(s) ({self.color}); give one "
                                 "per channel.")
            setattr(self, name, values)
        if self.std is not None and min(self.std) <= 0:
            raise UsageError(f"--preprocess std= must be > 0 for every channel; got {self.std}.")
        for name in ("resize", "crop"):
            v = getattr(self, name)
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or int(v) != v or v < 1:
                raise UsageError(f"--preprocess {name}= must be a whole number of pixels >= 1; "
                                 f"got {v!r}.")
            setattr(self, name, int(v))
        if self.crop is not None and list(self.size) != [self.crop, self.crop]:
            raise UsageError(f"--preprocess crop={self.crop} makes the input {self.crop}x"
                             f"{self.crop}, but its size is {list(self.size)}.")
        if self.resize is not None and max(self.size) > self.resize:
            what = f"crop={self.crop}" if self.crop else f"the input size {list(self.size)}"
            raise UsageError(f"--preprocess {what} is larger than resize={self.resize}: the "
                             "centre crop is cut from the image resized to that shorter side.")

    @property
    def channels(self) -> int:
        return 1 if self.color == "grayscale" else 3

    def to_dict(self) -> dict:
        """The fields as JSON-ready data, the optional ones only when set (so manifests
        without them stay byte-identical to earlier versions').

        Example:
            >>> Preprocessing(size=[8, 8], color="grayscale").to_dict()["size"]
            [8, 8]
            >>> "mean" in Preprocessing(size=[8, 8]).to_dict()
            False
        """
        d = asdict(self)
        for name in _OPTIONAL:
            if d[name] is None:
                del d[name]
        return d

    def override(self, spec: dict) -> "Preprocessing":
        """A copy with the fields of ``spec`` (from ``parse_preprocess``) replaced; ``crop``
        sets ``size`` too (unless ``spec`` names the size itself).

        Example:
            >>> Preprocessing(size=[32, 32]).override({"scale": 1.0}).scale
            1.0
            >>> Preprocessing(size=[32, 32]).override({"resize": 256, "crop": 224}).size
            [224, 224]
        """
        spec = dict(spec)
        if spec.get("crop") is not None and "size" not in spec:
            spec["size"] = [int(spec["crop"])] * 2
        return dataclasses.replace(self, **spec)


_OPTIONAL = ("mean", "std", "resize", "crop")
_SPEC_KEYS = {"scale": "scale", "offset": "offset", "colour": "color", "color": "color",
              "order": "channel_order", "interpolation": "interpolation", "mean": "mean",
              "std": "std", "resize": "resize", "crop": "crop"}
_SPEC_CHOICES = {"color": ("rgb", "grayscale"), "channel_order": ("RGB", "BGR"),
                 "interpolation": ("bilinear", "nearest", "bicubic", "area", "lanczos")}
_LISTS = ("mean", "std")  # their values run on, comma-separated, until the next KEY=
_KEYS_HELP = "scale, offset, mean, std, resize, crop, colour, order, interpolation"


def _number(key: str, text: str) -> float:
    num, _, den = text.partition("/")
    try:
        return float(num) / (float(den) if den else 1.0)
    except (ValueError, ZeroDivisionError):
        raise UsageError(f"--preprocess {key}= must be a number or a fraction like 1/255; "
                         f"got {text!r}.") from None


def _pixels(key: str, text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        v = 0
    if v < 1:
        raise UsageError(f"--preprocess {key}= must be a whole number of pixels >= 1; "
                         f"got {text!r}.")
    return v


def _items(text: str) -> list[tuple[str, list[str]]]:
    """``KEY=V,V,KEY=V`` -> [(key, [values])]: a bare value belongs to the key before it."""
    items: list[tuple[str, list[str]]] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key, sep, value = (s.strip() for s in part.partition("="))
        if sep:
            if key not in _SPEC_KEYS:
                raise UsageError(f"--preprocess has no key {key!r}; its keys are {_KEYS_HELP} "
                                 "(KEY=VALUE, comma-separated).")
            if any(_SPEC_KEYS[k] == _SPEC_KEYS[key] for k, _ in items):
                raise UsageError(f"--preprocess {key}= is given twice.")
            items.append((key, [value]))
        elif items and _SPEC_KEYS[items[-1][0]] in _LISTS:
            items[-1][1].append(part)
        else:
            after = f" after {items[-1][0]}=" if items else ""
            raise UsageError(f"--preprocess item {part!r}{after} is not KEY=VALUE; only mean= "
                             "and std= take several values (e.g. mean=0.485,0.456,0.406).")
    return items


def parse_preprocess(text: str | None) -> dict:
    """``--preprocess`` text -> Preprocessing fields: how pixels become the model's input.

    Keys: ``scale`` and ``offset`` (numbers or fractions; input = pixel * scale + offset),
    ``mean`` and ``std`` (one number per channel, comma-separated: the numbers after the
    key belong to it until the next ``KEY=``; then input = (input - mean) / std),
    ``resize`` (the shorter side, in pixels) and ``crop`` (the centre crop; the model's
    input is crop x crop), ``colour`` (rgb | grayscale), ``order`` (RGB | BGR),
    ``interpolation`` (bilinear | nearest | bicubic | area | lanczos).

    Raises:
        UsageError: an unknown key, a value that is not a number, a key given twice.

    Example:
        >>> parse_preprocess("scale=1/127.5,offset=-1,colour=rgb")
        {'scale': 0.00784313725490196, 'offset': -1.0, 'color': 'rgb'}
        >>> parse_preprocess("mean=0.485,0.456,0.406,std=0.229,0.224,0.225,resize=256,crop=224")
        {'mean': [0.485, 0.456, 0.406], 'std': [0.229, 0.224, 0.225], 'resize': 256, 'crop': 224}
    """
    out: dict = {}
    for key, values in _items(text or ""):
        field_name = _SPEC_KEYS[key]
        if field_name in _LISTS:
            out[field_name] = [_number(key, v) for v in values]
        elif field_name in ("scale", "offset"):
            out[field_name] = _number(key, values[0])
        elif field_name in ("resize", "crop"):
            out[field_name] = _pixels(key, values[0])
        else:
            choices = _SPEC_CHOICES[field_name]
            match = next((c for c in choices if c.lower() == values[0].lower()), None)
            if match is None:
                raise UsageError(f"--preprocess {key}= must be one of {', '.join(choices)}; "
                                 f"got {values[0]!r}.")
            out[field_name] = match
    return out


@dataclass
class TensorInfo:
    """One model input or output: name, shape (-1 = dynamic batch), dtype, layout, quantization.

    ``quantization`` is ``{"scale": s, "zero_point": z}`` for integer tensors, else None.
    """

    name: str
    shape: list[int]
    dtype: str = "float32"
    layout: str = "NHWC"
    quantization: dict | None = None


@dataclass
class Manifest:
    """Everything a runtime and a user need to know about one artifact.

    Example:
        >>> m = Manifest(format="onnx-fp32", class_names=["a", "b"],
        ...              input=TensorInfo("input", [-1, 32, 32, 1]),
        ...              output=TensorInfo("probs", [-1, 2]),
        ...              preprocessing=Preprocessing(size=[32, 32], color="grayscale"))
        >>> Manifest.from_dict(m.to_dict()) == m
        True
    """

    format: str
    class_names: list[str]
    input: TensorInfo
    output: TensorInfo
    preprocessing: Preprocessing
    sha256: str | None = None
    size_bytes: int | None = None
    source: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    calibration: dict | None = None
    conversion: dict = field(default_factory=dict)  # what the converter changed, and why
    versions: dict = field(default_factory=library_versions)
    producer: str = "edgeproof"
    producer_version: str = __version__
    schema_version: int = SCHEMA_VERSION
    micro: dict | None = None  # TFLM's measured arena / flash / ops (sidecar only)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_dict(self) -> dict:
        """The manifest as JSON-ready data (``micro`` only when measured, so manifests
        without it stay byte-identical to earlier versions')."""
        d = asdict(self)
        d["preprocessing"] = self.preprocessing.to_dict()
        if d["micro"] is None:
            del d["micro"]
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    @classmethod
    def from_dict(cls, d: dict) -> "Manifest":
        try:
            d = dict(d)
            if "edgekit_version" in d and "producer" not in d:  # written by edgekit 0.1.0
                d["producer"], d["producer_version"] = "edgekit", d.pop("edgekit_version")
            d["input"] = TensorInfo(**d["input"])
            d["output"] = TensorInfo(**d["output"])
            d["preprocessing"] = Preprocessing(**d["preprocessing"])
            known = set(cls.__dataclass_fields__)
            return cls(**{k: v for k, v in d.items() if k in known})
        except (KeyError, TypeError, ValueError, UsageError) as e:
            raise ModelError(f"Manifest is malformed ({e}); re-export the artifact with edgeproof export.") from None

    @classmethod
    def load(cls, path: str | Path) -> "Manifest":
        """Read a manifest JSON file."""
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except FileNotFoundError:
            raise ModelError(f"No manifest at {path}; export the model with edgeproof export, "
                             "which writes <artifact>.json beside the artifact.") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ModelError(f"Manifest {path} is not valid JSON ({e}).") from None


def manifest_path(artifact: str | Path) -> Path:
    """The sidecar path ``<artifact>.json`` of an artifact file or folder."""
    p = Path(artifact)
    return p.with_name(p.name + ".json")


def find_manifest(artifact: str | Path) -> Manifest:
    """Load the manifest beside ``artifact``, else the one embedded in an ONNX or TFLite file.

    Args:
        artifact: the artifact's path.

    Example:
        >>> find_manifest("exports/model-tflite-int8.tflite").class_names  # doctest: +SKIP
        ['daisy', 'dandelion', 'rose', 'sunflower', 'tulip']
    """
    side = manifest_path(artifact)
    if side.exists():
        return Manifest.load(side)
    embedded = read_embedded_manifest(artifact)
    if embedded is not None:
        return Manifest.from_dict(embedded)
    raise ModelError(f"No manifest for {artifact}: expected {side.name} beside it. "
                     "Export with edgeproof export, or pass the manifest next to the file.")
