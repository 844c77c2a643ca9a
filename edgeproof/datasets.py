"""Datasets as one object: uint8 NHWC arrays per split, class names, provenance.

Sources: the built-in scikit-learn digits (offline), a Keras-style ``.npz``
(``x_train, y_train, x_test, y_test``), a folder with one subfolder per class, and the
online Keras/TF downloads (``mnist``, ``cifar10``, ``flowers``) on a user's machine.

Folder datasets are de-duplicated by file content before a deterministic stratified
split, so no image sits in two splits. Images are decoded by the same function the
runtimes use (``edgeproof.preprocess.decode_image``), so training and deployment see the
same pixels.
"""

from __future__ import annotations

import hashlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeproof.preprocess import IMAGE_SUFFIXES, decode_image, resize_batch
from edgeproof.manifest import Preprocessing
from edgeproof.errors import DataError
from edgeproof.tfcompat import keras
from edgeproof.validation import check_float, check_int

log = logging.getLogger("edgeproof.datasets")

BUILTIN = ("digits", "mnist", "cifar10", "flowers")
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck"]
FLOWERS_URL = "https://storage.googleapis.com/download.tensorflow.org/example_images/flower_photos.tgz"
DEFAULT_SPLIT = (0.6, 0.2, 0.2)


@dataclass
class Dataset:
    """Train/val/test splits of uint8 images (N, H, W, C) with integer labels.

    Attributes:
        name: short name (``digits``, ``flowers``, a folder's name, ...).
        class_names: label i is ``class_names[i]``.
        preprocessing: how pixels become model input (size, colour, scale, offset).
        provenance: where the data came from and how it was split.
    """

    name: str
    class_names: list[str]
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    preprocessing: Preprocessing
    provenance: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(int(d) for d in self.x_train.shape[1:])

    @property
    def split_sizes(self) -> dict[str, int]:
        return {"train": len(self.y_train), "val": len(self.y_val), "test": len(self.y_test)}

    def summary(self) -> dict:
        return {"name": self.name, "num_classes": self.num_classes,
                "class_names": list(self.class_names), "split": self.split_sizes,
                "image_shape": list(self.input_shape), "provenance": self.provenance}


def calibration_indices(y: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Pick ``n`` indices of ``y`` class-balanced and deterministically (sorted)."""
    y = np.asarray(y)
    n = min(int(n), len(y))
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    per_class = {c: rng.permutation(np.flatnonzero(y == c)).tolist() for c in classes}
    picked: list[int] = []
    while len(picked) < n:
        for c in classes:
            if per_class[c] and len(picked) < n:
                picked.append(per_class[c].pop())
    return np.sort(np.asarray(picked, dtype=np.int64))


def split_stratified(n_or_y, seed: int, fractions=DEFAULT_SPLIT):
    """Deterministic stratified train/val/test index split of labels ``y``."""
    from sklearn.model_selection import train_test_split

    y = np.asarray(n_or_y)
    idx = np.arange(len(y))
    train_f, val_f, test_f = fractions
    counts = np.bincount(y)
    if counts[counts > 0].min() < 3:
        bad = int(np.flatnonzero((counts > 0) & (counts < 3))[0])
        raise DataError(f"Class {bad} has {counts[bad]} image(s); each class needs at least 3 "
                        "to appear in train, val and test. Add images or drop the class.")
    try:
        rest, test = train_test_split(idx, test_size=test_f, stratify=y, random_state=seed)
        train, val = train_test_split(rest, test_size=val_f / (train_f + val_f),
                                      stratify=y[rest], random_state=seed)
    except ValueError as e:
        raise DataError(f"Cannot split the dataset stratified ({e}); add images per class.") from None
    return np.sort(train), np.sort(val), np.sort(test)


def _make(name, class_names, x, y, splits, pre, provenance) -> Dataset:
    tr, va, te = splits
    return Dataset(name, list(class_names), x[tr], y[tr], x[va], y[va], x[te], y[te], pre,
                   provenance)


def load_digits(image_size: int = 32, seed: int = 0) -> Dataset:
    """scikit-learn's 1797 handwritten digits (8x8, 0-16), upscaled to ``image_size``."""
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    x = np.clip(d.images * (255.0 / 16.0) + 0.5, 0, 255).astype(np.uint8)[..., None]
    pre = Preprocessing(size=[image_size, image_size], color="grayscale")
    x = resize_batch(x, pre)
    y = d.target.astype(np.int64)
    prov = {"source": "sklearn.datasets.load_digits", "original_size": [8, 8],
            "split": "stratified 60/20/20", "seed": seed}
    return _make("digits", [str(i) for i in range(10)], x, y, split_stratified(y, seed), pre, prov)


def _from_arrays(name, x_train, y_train, x_test, y_test, class_names, image_size, seed,
                 source, val_fraction=0.1) -> Dataset:
    x_train, x_test = (np.asarray(a) for a in (x_train, x_test))
    if x_train.ndim == 3:
        x_train, x_test = x_train[..., None], x_test[..., None]
    if x_train.ndim != 4 or x_train.dtype != np.uint8:
        raise DataError(f"{source}: x_train must be uint8 images (N, H, W[, C]); "
                        f"got {x_train.dtype} {x_train.shape}.")
    y_train = np.asarray(y_train).reshape(-1).astype(np.int64)
    y_test = np.asarray(y_test).reshape(-1).astype(np.int64)
    if len(y_train) != len(x_train) or len(y_test) != len(x_test):
        raise DataError(f"{source}: x and y lengths differ.")
    color = "grayscale" if x_train.shape[-1] == 1 else "rgb"
    size = image_size or x_train.shape[1]
    pre = Preprocessing(size=[size, size], color=color)
    x_train, x_test = resize_batch(x_train, pre), resize_batch(x_test, pre)
    from sklearn.model_selection import train_test_split

    tr, va = train_test_split(np.arange(len(y_train)), test_size=val_fraction,
                              stratify=y_train, random_state=seed)
    tr, va = np.sort(tr), np.sort(va)
    n_cls = int(max(y_train.max(), y_test.max())) + 1
    names = list(class_names) if class_names is not None else [str(i) for i in range(n_cls)]
    prov = {"source": source, "split": f"given train/test; val = {val_fraction:.0%} of train, "
            "stratified", "seed": seed}
    return Dataset(name, names, x_train[tr], y_train[tr], x_train[va], y_train[va], x_test,
                   y_test, pre, prov)


def load_npz(path: str | Path, image_size: int | None = None, seed: int = 0) -> Dataset:
    """A Keras-style ``.npz`` with ``x_train, y_train, x_test, y_test`` (optional ``class_names``)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = {"x_train", "y_train", "x_test", "y_test"} - set(z.files)
            if missing:
                raise DataError(f"{path} lacks {', '.join(sorted(missing))}; an .npz dataset needs "
                                "x_train, y_train, x_test, y_test (keras.datasets layout).")
            arrays = {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test")}
            names = [str(c) for c in z["class_names"]] if "class_names" in z.files else None
    except (OSError, ValueError) as e:
        raise DataError(f"Cannot read {path} as .npz ({e}).") from None
    if names is None and path.stem.lower().startswith("cifar10"):
        names = CIFAR10_CLASSES
    return _from_arrays(path.stem, arrays["x_train"], arrays["y_train"], arrays["x_test"],
                        arrays["y_test"], names, image_size, seed, str(path))


def find_images(folder: str | Path) -> list[Path]:
    """Image files under ``folder``, recursively, sorted: the one rule for "which files".

    A file is an image when its suffix is one of ``IMAGE_SUFFIXES`` (any case). Hidden
    files and folders (a leading dot: ``.DS_Store``, ``.ipynb_checkpoints``) are skipped,
    and symbolic links to folders are not followed (no cycles, no escaping the folder).

    Example:
        >>> find_images("no/such/folder")
        []
    """
    found = []
    for dirpath, dirnames, names in os.walk(folder, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [Path(dirpath) / n for n in sorted(names)
                  if n.lower().endswith(IMAGE_SUFFIXES) and not n.startswith(".")]
    return found


def collect_images(paths) -> list[Path]:
    """Files named on a command line: folders searched with ``find_images``, files as given.

    Raises:
        DataError: a path does not exist, or nothing found is an image.

    Example:
        >>> collect_images(["no/such.jpg"])
        Traceback (most recent call last):
        ...
        edgeproof.errors.DataError: Image not found: no/such.jpg
    """
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += find_images(p)
        elif p.exists():
            files.append(p)  # named explicitly: the decoder says if it is no image
        else:
            raise DataError(f"Image not found: {p}")
    if not files:
        raise DataError(f"No images ({', '.join(IMAGE_SUFFIXES)}) under "
                        f"{', '.join(map(str, paths))}.")
    return files


def _list_folder(root: Path):
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise DataError(f"{root} has no class subfolders; a folder dataset needs one subfolder "
                        "per class (root/<class>/<image>).")
    files, labels = [], []
    for label, cls in enumerate(classes):
        found = find_images(root / cls)
        files += found
        labels += [label] * len(found)
    if not files:
        raise DataError(f"{root} has class subfolders but no images ({', '.join(IMAGE_SUFFIXES)}).")
    return classes, files, np.asarray(labels, dtype=np.int64)


def _dedupe(files, labels):
    seen: dict[str, int] = {}
    keep, dupes = [], []
    for i, f in enumerate(files):
        try:
            digest = hashlib.sha1(Path(f).read_bytes()).hexdigest()
        except OSError:
            keep.append(i)  # unreadable files are reported by the decoder
            continue
        if digest in seen:
            dupes.append(str(f))
        else:
            seen[digest] = i
            keep.append(i)
    return [files[i] for i in keep], labels[keep], dupes


def load_folder(root: str | Path, image_size: int | None = None, seed: int = 0,
                color: str = "rgb", workers: int | None = None) -> Dataset:
    """Images in ``root/<class>/*``: de-duplicated, decoded, split 60/20/20 stratified."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"Dataset folder not found: {root}")
    classes, files, labels = _list_folder(root)
    files, labels, dupes = _dedupe(files, labels)
    size = image_size or 128
    pre = Preprocessing(size=[size, size], color=color)

    def decode(f):
        try:
            return decode_image(f, pre)
        except DataError as e:
            return e

    with ThreadPoolExecutor(max_workers=workers or min(8, (os.cpu_count() or 2) * 2)) as ex:
        decoded = list(ex.map(decode, files))
    bad = [str(f) for f, d in zip(files, decoded) if isinstance(d, DataError)]
    for f in bad:
        log.warning("skipping unreadable image %s", f)
    ok = [i for i, d in enumerate(decoded) if not isinstance(d, DataError)]
    if not ok:
        raise DataError(f"No readable images under {root}.")
    x = np.stack([decoded[i] for i in ok])
    y = labels[ok]
    prov = {"source": str(root), "files": len(files) + len(dupes), "duplicates_removed": len(dupes),
            "unreadable_skipped": bad, "split": "stratified 60/20/20 after content de-dup",
            "seed": seed}
    return _make(root.name, classes, x, y, split_stratified(y, seed), pre, prov)


def _keras_download(name: str, image_size, seed) -> Dataset:
    k = keras()
    try:
        if name == "flowers":
            path = k.utils.get_file("flower_photos", origin=FLOWERS_URL, untar=True)
            root = Path(path)
            if not any(d.is_dir() for d in root.iterdir()):
                raise OSError("empty download")
            inner = root / "flower_photos"
            return load_folder(inner if inner.is_dir() else root, image_size, seed)
        loader = {"mnist": k.datasets.mnist, "cifar10": k.datasets.cifar10}[name]
        (xtr, ytr), (xte, yte) = loader.load_data()
    except DataError:
        raise
    except Exception as e:
        hint = {"flowers": "a folder with one subfolder per class",
                "mnist": "an .npz with x_train, y_train, x_test, y_test",
                "cifar10": "an .npz with x_train, y_train, x_test, y_test"}[name]
        raise DataError(f"Could not download {name} ({type(e).__name__}); offline? "
                        f"Pass a local copy instead: --dataset PATH ({hint}).") from None
    names = CIFAR10_CLASSES if name == "cifar10" else None
    return _from_arrays(name, xtr, ytr, xte, yte, names, image_size, seed, f"keras.datasets.{name}")


def load_dataset(spec: str | Path, image_size: int | None = None, seed: int = 0) -> Dataset:
    """Load a dataset by name (``digits``, ``mnist``, ``cifar10``, ``flowers``) or path.

    Args:
        spec: a built-in name, a folder (one subfolder per class) or a ``.npz`` file.
        image_size: square side to resize to; None keeps the source's size
            (digits: 32, folders: 128).
        seed: seeds the split.

    Example:
        >>> ds = load_dataset("digits", image_size=32)
        >>> ds.split_sizes
        {'train': 1077, 'val': 360, 'test': 360}
    """
    if image_size is not None:
        check_int("image_size", image_size, "load_dataset", low=8, high=4096)
    check_int("seed", seed, "load_dataset", low=0)
    spec_s = str(spec)
    if spec_s == "digits":
        return load_digits(image_size or 32, seed)
    p = Path(spec_s).expanduser()
    if p.exists():
        if p.is_dir():
            return load_folder(p, image_size, seed)
        if p.suffix == ".npz":
            return load_npz(p, image_size, seed)
        raise DataError(f"{p} is neither a folder of class subfolders nor an .npz file.")
    if spec_s in BUILTIN:
        return _keras_download(spec_s, image_size, seed)
    raise DataError(f"Dataset not found: {spec_s}. Use one of {', '.join(BUILTIN)}, a folder "
                    "with one subfolder per class, or an .npz file.")


def subsample(x: np.ndarray, y: np.ndarray, fraction: float, seed: int = 0):
    """A class-balanced deterministic fraction of (x, y), for quick runs."""
    check_float("fraction", fraction, "subsample", low=0.0, high=1.0, low_open=True)
    idx = calibration_indices(y, max(1, int(round(len(y) * fraction))), seed)
    return x[idx], y[idx]


def list_images(root: str | Path):
    """(class_names, files, labels) of a folder dataset, de-duplicated by content."""
    classes, files, labels = _list_folder(Path(root))
    files, labels, _ = _dedupe(files, labels)
    return classes, files, labels
