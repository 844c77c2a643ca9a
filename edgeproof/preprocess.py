"""The one preprocessing path every runtime uses, driven by the artifact's manifest.

``prepare(images, manifest)`` turns uint8 NHWC pixels into exactly the tensor an
artifact expects: resize, colour conversion, ``x * scale + offset``, quantization for
integer inputs, layout. Keras, TFLite int8 and ONNX therefore see the same pixels.
Only numpy and Pillow are needed.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from edgeproof.manifest import Manifest, Preprocessing
from edgeproof.errors import RuntimeFailure, DataError, first_line

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
_FILTERS = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC,
            "area": Image.BOX, "lanczos": Image.LANCZOS}
# Photos of 12000x12000 are legitimate input; we decode them reduced (draft) and resize.
Image.MAX_IMAGE_PIXELS = 400_000_000
ImageFile.LOAD_TRUNCATED_IMAGES = False


def _to_8bit(img: Image.Image) -> Image.Image:
    """16-bit and 32-bit integer images are rescaled to 8 bits instead of clipped."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if img.mode.startswith("I;16") or a.max() > 255 else 255.0
        return Image.fromarray(np.clip(a / hi * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if img.mode == "F":
        a = np.asarray(img, dtype=np.float64)
        return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "L")
    return img


def decode_image(path: str | Path, pre: Preprocessing) -> np.ndarray:
    """Read an image file as uint8 HWC at ``pre.size`` in ``pre.color``.

    Handles grayscale, RGBA (alpha composited on white), palette, CMYK and 16-bit
    images; very large JPEGs are decoded at reduced size first to bound memory.

    Raises:
        DataError: the file is missing, empty, truncated or not an image.
    """
    h, w = pre.size
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as img:
                img.draft("RGB" if pre.color == "rgb" else "L", (w, h))
                img.load()
                img = _to_8bit(img)
                if img.mode in ("RGBA", "LA", "P", "PA"):
                    img = img.convert("RGBA")
                    bg = Image.new("RGBA", img.size, (255, 255, 255, 255))
                    img = Image.alpha_composite(bg, img)
                img = img.convert("L" if pre.color == "grayscale" else "RGB")
                if img.size != (w, h):
                    img = img.resize((w, h), _FILTERS.get(pre.interpolation, Image.BILINEAR))
                arr = np.asarray(img, dtype=np.uint8)
    except FileNotFoundError:
        raise DataError(f"Image not found: {path}") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError,
            Image.DecompressionBombError) as e:
        raise DataError(f"Cannot read image {path}: {first_line(e)}") from None
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if pre.channel_order == "BGR" and arr.shape[-1] == 3:
        arr = arr[:, :, ::-1]
    return np.ascontiguousarray(arr)


def resize_batch(images: np.ndarray, pre: Preprocessing) -> np.ndarray:
    """Resize uint8 NHWC images to ``pre.size`` (no-op when already there)."""
    h, w = pre.size
    if images.shape[1:3] == (h, w):
        return images
    filt = _FILTERS.get(pre.interpolation, Image.BILINEAR)
    out = []
    for im in images:
        pil = Image.fromarray(im[:, :, 0] if im.shape[-1] == 1 else im)
        arr = np.asarray(pil.resize((w, h), filt), dtype=np.uint8)
        out.append(arr[:, :, None] if arr.ndim == 2 else arr)
    return np.stack(out)


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype: str) -> np.ndarray:
    """Affine quantization with round-half-to-even and saturation, as TFLite does."""
    info = np.iinfo(dtype)
    q = np.round(x / scale) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return (q.astype(np.float32) - zero_point) * np.float32(scale)


def to_float(images: np.ndarray, pre: Preprocessing) -> np.ndarray:
    """uint8 NHWC -> float32 model input: channels, size, then ``x * scale + offset``."""
    if images.shape[-1] != pre.channels:
        images = _convert_channels(images, pre.channels)
    images = resize_batch(images, pre)
    return images.astype(np.float32) * np.float32(pre.scale) + np.float32(pre.offset)


def prepare(images: np.ndarray, manifest: Manifest) -> np.ndarray:
    """Turn uint8 NHWC ``images`` into the exact input tensor of ``manifest``'s artifact.

    Args:
        images: uint8 array (N, H, W, C); resized to the manifest's size when needed.
        manifest: the artifact's manifest (preprocessing and input tensor spec).

    Returns:
        An array of the artifact's input dtype and layout.

    Example:
        >>> x = prepare(np.zeros((2, 32, 32, 1), np.uint8), manifest)  # doctest: +SKIP
    """
    images = np.asarray(images)
    pre, spec = manifest.preprocessing, manifest.input
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise RuntimeFailure(f"Expected images shaped (N, H, W, C); got {images.shape}.")
    if images.dtype != np.uint8:
        raise RuntimeFailure(f"Expected uint8 pixels (0-255); got {images.dtype}. "
                           "Preprocessing (scale/offset) comes from the manifest.")
    x = to_float(images, pre)
    if spec.dtype in ("int8", "uint8", "int16"):
        q = spec.quantization or {}
        if "scale" not in q:
            raise RuntimeFailure(f"Manifest of {manifest.format} has an {spec.dtype} input "
                               "but no quantization parameters; re-export it.")
        x = quantize(x, q["scale"], q["zero_point"], spec.dtype)
    elif spec.dtype != "float32":
        x = x.astype(spec.dtype)
    if spec.layout == "NCHW":
        x = np.transpose(x, (0, 3, 1, 2))
    return np.ascontiguousarray(x)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64, returned as float32.

    Example:
        >>> softmax(np.array([[0.0, 0.0]])).tolist()
        [[0.5, 0.5]]
    """
    z = np.asarray(logits, np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def postprocess(raw: np.ndarray, manifest: Manifest) -> np.ndarray:
    """Turn an artifact's raw output into float32 class probabilities (softmax for a model
    whose manifest says it ends in logits: a PyTorch ONNX file used as it is)."""
    spec = manifest.output
    if spec.dtype in ("int8", "uint8", "int16") and spec.quantization:
        out = dequantize(raw, spec.quantization["scale"], spec.quantization["zero_point"])
    else:
        out = np.asarray(raw, dtype=np.float32)
    return softmax(out) if "logits" in manifest.conversion else out


def _convert_channels(images: np.ndarray, channels: int) -> np.ndarray:
    c = images.shape[-1]
    if channels == 1 and c in (3, 4):
        rgb = images[..., :3].astype(np.float32)
        gray = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
        return np.clip(gray + 0.5, 0, 255).astype(np.uint8)[..., None]
    if channels == 3 and c == 1:
        return np.repeat(images, 3, axis=-1)
    if channels == 3 and c == 4:
        return images[..., :3]
    raise RuntimeFailure(f"Expected images with {channels} channel(s); got {c}.")
