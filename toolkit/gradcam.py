"""Grad-CAM (Selvaraju et al. 2017): where in the image the model looked.

The last convolutional layer is found automatically, also inside a nested model (the
InceptionV3 / ResNet50 base of a transfer model), and the outer model is run layer by
layer around it so its activations and the prediction come from one forward pass.
Keras models of either generation work (tf-keras 2 and Keras 3: layers are matched by
class name, and the sub-model is built with the Keras that built the model); a SavedModel
or an ONNX file has no layers to look into, and is refused with a one-line error.

Example:
    >>> heat, probs = gradcam(model, batch)  # doctest: +SKIP
    >>> save_overlay(image_uint8, heat[0], "cam.png", title="rose 0.91")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeproof.errors import ModelError
from edgeproof.figures import pyplot, save
from edgeproof.keras_loader import is_nested_model, keras_module_of
from edgeproof.preprocess import decode_image, to_float
from edgeproof.reference import load_reference, reference_preprocessing
from edgeproof.tfcompat import tf

_CONV = ("Conv2D", "SeparableConv2D", "DepthwiseConv2D")


def _is_conv(layer) -> bool:
    """A 2-D convolution of either Keras (by class name, subclasses included)."""
    try:
        return any(c.__name__ in _CONV for c in type(layer).__mro__) and \
            len(layer.output.shape) == 4
    except (AttributeError, ValueError):
        return False


def find_last_conv(model) -> list[str]:
    """Path of layer names to the last Conv2D, descending into nested models.

    Example:
        >>> find_last_conv(create_model("lab_model1", 10, (28, 28, 1)))  # doctest: +SKIP
        ['conv0']
    """
    for layer in reversed(model.layers):
        if is_nested_model(layer):
            try:
                return [layer.name] + find_last_conv(layer)
            except ModelError:
                continue
        if _is_conv(layer) and layer.name != "to_base_range":
            return [layer.name]
    raise ModelError(f"Model {model.name} has no convolutional layer; Grad-CAM needs one.")


def _conv_and_output(model, x, path: list[str]):
    """Forward ``x`` through ``model`` returning (activations of the layer at ``path``, output)."""
    k = keras_module_of(model)
    if len(path) == 1:
        grad_model = k.Model(model.inputs, [model.get_layer(path[0]).output, model.outputs[0]])
        return grad_model(x, training=False)
    conv, h = None, x
    # Outer models around a nested base are chains (input -> preprocess -> base -> head).
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        if layer.name == path[0]:
            conv, h = _conv_and_output(layer, h, path[1:])
        else:
            h = layer(h, training=False)
    return conv, h


def gradcam(model, images: np.ndarray, class_index: int | None = None, layer_path=None):
    """Grad-CAM heatmaps in [0, 1] at the conv layer's resolution, and the probabilities.

    Args:
        images: float model input (N, H, W, C).
        class_index: the class to explain (default: each image's predicted class).
        layer_path: override the automatic ``find_last_conv`` choice.
    """
    t = tf()
    path = layer_path or find_last_conv(model)
    x = t.convert_to_tensor(images, t.float32)
    with t.GradientTape() as tape:
        conv, probs = _conv_and_output(model, x, path)
        tape.watch(conv)
        idx = t.argmax(probs, axis=1) if class_index is None else \
            t.fill([t.shape(probs)[0]], t.cast(class_index, t.int64))
        score = t.gather(probs, idx, axis=1, batch_dims=1)
    grads = tape.gradient(score, conv)
    weights = t.reduce_mean(grads, axis=(1, 2), keepdims=True)
    cam = t.nn.relu(t.reduce_sum(weights * conv, axis=-1)).numpy()
    peak = cam.reshape(len(cam), -1).max(1).reshape(-1, 1, 1)
    return cam / np.where(peak > 0, peak, 1.0), probs.numpy()


def save_overlay(image: np.ndarray, heat: np.ndarray, path: str | Path, title: str = "",
                 alpha: float = 0.4) -> Path:
    """Write ``image`` (uint8 HWC) with the upsampled ``heat`` map blended over it."""
    from PIL import Image

    plt = pyplot()
    h, w = image.shape[:2]
    up = np.asarray(Image.fromarray(np.uint8(heat * 255)).resize((w, h), Image.BILINEAR)) / 255.0
    fig, axes = plt.subplots(1, 2, figsize=(6, 3.3))
    base = image[..., 0] if image.shape[-1] == 1 else image
    for ax in axes:
        ax.imshow(base, cmap="gray")
        ax.axis("off")
    axes[1].imshow(up, cmap="jet", alpha=alpha)
    fig.suptitle(title, fontsize=9)
    return save(fig, path, dpi=100)


def explain_files(model_path, images, out_dir, class_index: int | None = None) -> dict:
    """Grad-CAM overlay per image file into ``out_dir``; returns the layer and one record
    per image (file, class name, probability, overlay path).

    Example:
        >>> explain_files("m.keras", ["rose.jpg"], "explain")["images"][0]["class"]  # doctest: +SKIP
        'rose'
    """
    ref = load_reference(model_path)
    model = ref.model
    if model is None:  # no layers to look into: a SavedModel signature or an ONNX graph
        raise ModelError(f"explain needs a Keras model (tf-keras or Keras 3) for its "
                         f"convolution layers; {ref.describe()} has none"
                         + ("" if ref.has_gradients else " and no gradients")
                         + ": give the .keras file it was made from.")
    pre, names, _ = reference_preprocessing(ref)
    names = names or [str(i) for i in range(ref.num_classes)]
    path = find_last_conv(model)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pixels = np.stack([decode_image(f, pre) for f in images])
    heat, probs = gradcam(model, to_float(pixels, pre), class_index, path)
    records = []
    for f, img, hm, p in zip(images, pixels, heat, probs):
        cls = class_index if class_index is not None else int(p.argmax())
        dest = out / f"{Path(f).stem}-gradcam.png"
        save_overlay(img, hm, dest, title=f"{Path(f).name}: {names[cls]} p={p[cls]:.2f}")
        records.append({"image": str(f), "class": names[cls], "probability": float(p[cls]),
                        "overlay": str(dest)})
    return {"layer": "/".join(path), "images": records}
