"""Evaluation the way the lab reports do it: per-class report, confusion matrix, curves,
and the worst-classified test images.

``evaluate_model`` writes into one folder:
    classification_report.txt / metrics.json   scikit-learn precision, recall, F1 per class
    confusion_matrix.png                       counts, true label on the rows
    curves.png                                 loss and accuracy per epoch (from history.csv)
    worst.png / worst.md                       the N test images with the lowest probability
                                               for their true class, grid + table
    gradcam/worst-<rank>-<index>.png           Grad-CAM overlays of the first few of them

Example:
    >>> report = evaluate_model(model, ds, "runs/eval", history_csv="runs/train/history.csv")  # doctest: +SKIP
    >>> report["accuracy"]  # doctest: +SKIP
    0.71
"""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np

from edgeproof.atomic import atomic_write_bytes
from edgeproof.datasets import Dataset, load_dataset
from edgeproof.errors import DataError, ModelError
from edgeproof.reference import load_reference, reference_preprocessing
from edgeproof.figures import pyplot, save
from edgeproof.preprocess import to_float
from edgeproof.toolkit.data import make_tf_dataset
from edgeproof.toolkit.gradcam import find_last_conv, gradcam, save_overlay


def predict_probs(model, x: np.ndarray, ds: Dataset, batch_size: int = 64) -> np.ndarray:
    """Class probabilities of uint8 images ``x`` through the dataset's preprocessing.

    Example:
        >>> predict_probs(model, ds.x_test, ds).shape  # doctest: +SKIP
        (360, 10)
    """
    data = make_tf_dataset(x, np.zeros(len(x), np.int64), ds, batch_size, False, 0)
    return np.asarray(model.predict(data.map(lambda a, b: a), verbose=0), dtype=np.float64)


def worst_classified(probs: np.ndarray, y: np.ndarray, n: int = 10) -> list[dict]:
    """The ``n`` samples with the lowest probability for their true class.

    Example:
        >>> worst_classified(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([0, 0]), 1)
        [{'index': 1, 'predicted': 1, 'actual': 0, 'probability': 0.2}]
    """
    p_true = probs[np.arange(len(y)), y]
    order = np.argsort(p_true, kind="stable")[:n]
    return [{"index": int(i), "predicted": int(probs[i].argmax()), "actual": int(y[i]),
             "probability": round(float(p_true[i]), 6)} for i in order]


def plot_confusion(cm: np.ndarray, class_names, path: Path) -> Path:
    """Confusion matrix PNG (rows: true class, columns: predicted)."""
    from sklearn.metrics import ConfusionMatrixDisplay

    plt = pyplot()
    size = max(4.0, 0.6 * len(class_names) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ConfusionMatrixDisplay(cm, display_labels=class_names).plot(ax=ax, colorbar=False,
                                                                xticks_rotation=45)
    return save(fig, path, dpi=100)


def read_history(path: str | Path) -> dict[str, list[float]]:
    """history.csv (Keras CSVLogger) -> {metric: [per-epoch values]}."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return {}
    return {k: [float(r[k]) for r in rows] for k in rows[0] if k != "epoch" and rows[0][k] != ""}


def plot_curves(history: dict, path: Path) -> Path | None:
    """Loss and accuracy per epoch (train and val) side by side."""
    if not history.get("loss"):
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for key, style in ((metric, "-o"), (f"val_{metric}", "--o")):
            if key in history:
                ax.plot(range(1, len(history[key]) + 1), history[key], style, label=key)
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.legend()
    return save(fig, path, dpi=100)


def plot_worst(images: np.ndarray, rows: list[dict], class_names, path: Path) -> Path:
    """A grid of the worst-classified images titled 'actual -> predicted (p)'."""
    plt = pyplot()
    cols = min(5, max(1, len(rows)))
    nrows = max(1, int(np.ceil(len(rows) / cols)))
    fig, axes = plt.subplots(nrows, cols, figsize=(2.6 * cols, 2.9 * nrows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, r in zip(axes.ravel(), rows):
        img = images[r["index"]]
        ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray")
        ax.set_title(f"#{r['index']} {class_names[r['actual']]}\n-> {class_names[r['predicted']]}"
                     f" (p={r['probability']:.2f})", fontsize=8)
    return save(fig, path, dpi=100)


def worst_table(rows: list[dict], class_names) -> str:
    """Markdown table: index, predicted, actual, probability of the true class."""
    lines = ["| index | predicted | actual | probability (true class) |", "|---|---|---|---|"]
    lines += [f"| {r['index']} | {class_names[r['predicted']]} | {class_names[r['actual']]} | "
              f"{r['probability']:.4f} |" for r in rows]
    return "\n".join(lines) + "\n"


def explain_worst(model, ds: Dataset, x: np.ndarray, rows: list[dict], out_dir: Path,
                  n: int) -> tuple[list[str], str | None]:
    """Grad-CAM overlays (for the true class) of the first ``n`` worst-classified images.

    Returns (paths written, None) or ([], why not) when the model has no conv layer.
    """
    rows = rows[:n]
    if not rows:
        return [], None
    try:
        path = find_last_conv(model)
    except ModelError as e:
        return [], str(e)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for rank, r in enumerate(rows, 1):
        img = x[r["index"]]
        heat, _ = gradcam(model, to_float(img[None], ds.preprocessing), r["actual"], path)
        dest = out_dir / f"worst-{rank}-{r['index']}.png"
        save_overlay(img, heat[0], dest, title=f"#{r['index']}: actual {ds.class_names[r['actual']]}"
                     f" (p={r['probability']:.2f}), predicted {ds.class_names[r['predicted']]}")
        written.append(str(dest))
    return written, None


def evaluate_model(model, ds: Dataset, out_dir: str | Path, history_csv: str | Path | None = None,
                   worst: int = 10, split: str = "test", probs: np.ndarray | None = None,
                   explain: int = 3) -> dict:
    """Evaluate ``model`` on a split of ``ds`` and write the report files into ``out_dir``.

    Args:
        history_csv: a Keras CSVLogger file for the curves plot (skipped when absent).
        worst: how many worst-classified images to show.
        split: ``test`` (default) or ``val``.
        probs: the model's probabilities on that split when already computed (``edgeproof run``
            has them from its reference pass); computed here otherwise.
        explain: Grad-CAM overlays (for the true class) of this many of the worst images.

    Example:
        >>> evaluate_model(model, ds, "eval/")["files"]["confusion_matrix"]  # doctest: +SKIP
        'eval/confusion_matrix.png'
    """
    from sklearn.metrics import classification_report, confusion_matrix

    x, y = getattr(ds, f"x_{split}"), getattr(ds, f"y_{split}")
    if not len(y):
        raise DataError(f"The {split} split of {ds.name} is empty; nothing to evaluate.")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    probs = predict_probs(model, x, ds) if probs is None else np.asarray(probs, np.float64)
    if probs.shape[0] != len(y):
        raise DataError(f"{probs.shape[0]} probability rows for {len(y)} {split} images.")
    if probs.shape[1] != ds.num_classes:
        raise ModelError(f"The model has {probs.shape[1]} outputs but {ds.name} has "
                         f"{ds.num_classes} classes; evaluate on the dataset it was trained on.")
    pred = probs.argmax(1)
    labels = list(range(ds.num_classes))
    text = classification_report(y, pred, labels=labels, target_names=ds.class_names, digits=4,
                                 zero_division=0)
    per_class = classification_report(y, pred, labels=labels, target_names=ds.class_names,
                                      output_dict=True, zero_division=0)
    cm = confusion_matrix(y, pred, labels=labels)
    rows = worst_classified(probs, y, worst)
    files = {"classification_report": out / "classification_report.txt",
             "confusion_matrix": plot_confusion(cm, ds.class_names, out / "confusion_matrix.png"),
             "worst_grid": plot_worst(x, rows, ds.class_names, out / "worst.png"),
             "worst_table": out / "worst.md"}
    atomic_write_bytes(files["classification_report"], text.encode())
    atomic_write_bytes(files["worst_table"], worst_table(rows, ds.class_names).encode())
    if history_csv and Path(history_csv).exists():
        curves = plot_curves(read_history(history_csv), out / "curves.png")
        if curves:
            files["curves"] = curves
    overlays, why_not = explain_worst(model, ds, x, rows, out / "gradcam", explain)
    report = {"dataset": ds.name, "split": split, "n": int(len(y)),
              "accuracy": float((pred == y).mean()), "per_class": per_class,
              "confusion_matrix": cm.tolist(), "worst": rows,
              "files": {k: str(v) for k, v in files.items()}, "gradcam": overlays}
    if why_not:
        report["gradcam_skipped"] = why_not
    atomic_write_bytes(out / "metrics.json", json.dumps(report, indent=2).encode())
    return report


def evaluation_summary(ev: dict, out: Path) -> dict:
    """The report.json view of ``evaluate_model``'s result: per-class scores, the worst
    images and file paths relative to the run folder (the full copy is eval/metrics.json).

    Example:
        >>> summary = evaluation_summary(evaluate_model(model, ds, "run/eval"), Path("run"))  # doctest: +SKIP
        >>> summary["files"]["confusion_matrix"]  # doctest: +SKIP
        'eval/confusion_matrix.png'
    """

    def rel(p: str) -> str:
        return Path(p).relative_to(out).as_posix() if Path(p).is_relative_to(out) else p

    pc = ev["per_class"]
    keep = ("precision", "recall", "f1-score", "support")
    summary = {
        "split": ev["split"], "n": ev["n"], "accuracy": ev["accuracy"],
        "macro_avg": {k: pc["macro avg"][k] for k in keep},
        "weighted_avg": {k: pc["weighted avg"][k] for k in keep},
        "per_class": {name: {k: v[k] for k in keep} for name, v in pc.items()
                      if name not in ("accuracy", "macro avg", "weighted avg")},
        "confusion_matrix": ev["confusion_matrix"], "worst": ev["worst"],
        "files": {k: rel(v) for k, v in ev["files"].items()},
        "gradcam": [rel(p) for p in ev.get("gradcam", [])],
    }
    if ev.get("gradcam_skipped"):
        summary["gradcam_skipped"] = ev["gradcam_skipped"]
    return summary


def evaluate_file(model_path: str | Path, dataset: str, out_dir: str | Path | None = None,
                  seed: int = 0, image_size: int | None = None, history_csv=None,
                  worst: int = 10, split: str = "test", explain: int = 3,
                  preprocess: dict | None = None) -> dict:
    """``evaluate_model`` for a saved model: load it and the dataset at its input size.

    Args:
        model_path: any model the core loader takes (``edgeproof.reference``): a tf-keras
            or Keras 3 ``.keras`` / ``.h5``, a SavedModel folder, an ONNX file
            (``edgeproof train`` writes a ``.keras``).
        dataset: the dataset it was trained on, with the same ``seed`` (same split).
        out_dir: default ``<model folder>/eval``; history_csv: default ``history.csv``
            beside the model.
        preprocess: ``--preprocess`` fields; the pixels otherwise come from the model's
            manifest or what it shows (a SavedModel / ONNX file showing nothing needs them).

    Example:
        >>> evaluate_file("runs/train/model.keras", "digits")["accuracy"]  # doctest: +SKIP
        0.97
    """
    model_path = Path(model_path)
    ref = load_reference(model_path)
    pre, _, _ = reference_preprocessing(ref, preprocess)
    size = image_size or pre.size[0]
    ds = load_dataset(dataset, size, seed)
    # the shared preprocessing converts channels (grey to RGB) when the model's colour says so
    if ds.input_shape[-1] != ref.input_shape[-1] and pre.channels != ref.input_shape[-1]:
        raise DataError(f"{dataset} has {ds.input_shape[-1]} channel(s) but the model takes "
                        f"{ref.input_shape[-1]}; evaluate on the training dataset.")
    ds = dataclasses.replace(ds, preprocessing=dataclasses.replace(pre, size=[size, size]))
    history = history_csv or model_path.parent / "history.csv"
    out = Path(out_dir) if out_dir else model_path.parent / "eval"
    x = getattr(ds, f"x_{split}")
    probs = None if ref.kind == "tf_keras" else ref.predict(to_float(x, ds.preprocessing))
    report = evaluate_model(ref.model, ds, out, history, worst, split, probs=probs,
                            explain=explain if ref.model is not None else 0)
    if ref.model is None and explain:
        report["gradcam_skipped"] = f"{ref.describe()} has no Keras layers to explain"
    params = int(ref.model.count_params()) if ref.model is not None else None
    return {**report, "dataset_summary": ds.summary(),
            "model": {"name": ref.name, "params": params, "kind": ref.kind,
                      "input_shape": list(ds.input_shape)}}
