"""The one preprocessing path every runtime uses, driven by the artifact's manifest.

``prepare(images, manifest)`` turns uint8 NHWC pixels into exactly the tensor an
artifact expects: colour conversion, resize (the shorter side to ``resize`` and a centre
crop, as torchvision's ``Resize`` + ``CenterCrop``, or straight to the size), ``x * scale +
offset``, then ``(x - mean) / std`` per channel, quantization for integer inputs, layout.
Keras, PyTorch, TFLite int8, ONNX, TFLM and the device agent (which gets the host's
prepared tensors) therefore see the same pixels. Only numpy and Pillow are needed.
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


def fit_image(img: Image.Image, pre: Preprocessing) -> Image.Image:
    """``img`` brought to ``pre.size``: with ``resize`` / ``crop``, the shorter side resized
    (aspect kept) and the centre cut out, with torchvision's rounding; else resized to the
    size. An image already at the size is returned as it is.

    Example:
        >>> pre = Preprocessing(size=[4, 4], resize=6, crop=4)
        >>> fit_image(Image.new("RGB", (12, 8)), pre).size
        (4, 4)
    """
    h, w = pre.size
    if img.size == (w, h):
        return img
    filt = _FILTERS.get(pre.interpolation, Image.BILINEAR)
    side = pre.resize or pre.crop
    if side is None:
        return img.resize((w, h), filt)
    iw, ih = img.size
    long = int(side * max(iw, ih) / min(iw, ih))  # torchvision: int(), not round()
    nw, nh = (side, long) if iw <= ih else (long, side)
    if (nw, nh) != (iw, ih):
        img = img.resize((nw, nh), filt)
    top, left = int(round((nh - h) / 2.0)), int(round((nw - w) / 2.0))
    return img.crop((left, top, left + w, top + h))


def decode_image(path: str | Path, pre: Preprocessing) -> np.ndarray:
    """Read an image file as uint8 HWC at ``pre.size`` in ``pre.color`` (``fit_image``:
    resized, or its shorter side resized and the centre cropped).

    Handles grayscale, RGBA (alpha composited on white), palette, CMYK and 16-bit
    images; very large JPEGs are decoded at reduced size first to bound memory.

    Raises:
        DataError: the file is missing, empty, truncated or not an image.

    Example:
        >>> decode_image("photo.jpg", Preprocessing(size=[224, 224], resize=256,
        ...                                         crop=224)).shape  # doctest: +SKIP
        (224, 224, 3)
    """
    h, w = pre.size
    side = pre.resize or pre.crop
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as img:
                # draft keeps both sides >= the request: the shorter one >= side
                img.draft("RGB" if pre.color == "rgb" else "L", (side, side) if side else (w, h))
                img.load()
                img = _to_8bit(img)
                if img.mode in ("RGBA", "LA", "P", "PA"):
                    img = img.convert("RGBA")
                    bg = Image.new("RGBA", img.size, (255, 255, 255, 255))
                    img = Image.alpha_composite(bg, img)
                img = fit_image(img.convert("L" if pre.color == "grayscale" else "RGB"), pre)
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
    """uint8 NHWC images brought to ``pre.size`` by ``fit_image`` (resized, or the shorter
    side resized and the centre cropped); a no-op when they are already at the size.

    Example:
        >>> resize_batch(np.zeros((2, 30, 40, 3), np.uint8),
        ...              Preprocessing(size=[8, 8], resize=10, crop=8)).shape
        (2, 8, 8, 3)
    """
    h, w = pre.size
    if images.shape[1:3] == (h, w):
        return images
    out = []
    for im in images:
        pil = fit_image(Image.fromarray(im[:, :, 0] if im.shape[-1] == 1 else im), pre)
        arr = np.asarray(pil, dtype=np.uint8)
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
    """uint8 NHWC -> float32 model input: channels, size (``resize_batch``), then
    ``x * scale + offset`` and, per channel, ``(x - mean) / std``.

    Example:
        >>> pre = Preprocessing(size=[1, 1], mean=[0.5, 0.0, 0.25], std=[0.5, 1.0, 0.25])
        >>> to_float(np.full((1, 1, 1, 3), 255, np.uint8), pre).ravel().tolist()
        [1.0, 1.0, 3.0]
    """
    if images.shape[-1] != pre.channels:
        images = _convert_channels(images, pre.channels)
    images = resize_batch(images, pre)
    x = images.astype(np.float32) * np.float32(pre.scale) + np.float32(pre.offset)
    if pre.mean is not None:  # broadcast over the last (channel) axis
        x -= np.asarray(pre.mean, np.float32)
    if pre.std is not None:
        x /= np.asarray(pre.std, np.float32)
    return x


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
                           "Preprocessing (scale/offset, mean/std) comes from the manifest.")
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
