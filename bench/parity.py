"""Parity of a candidate artifact against its reference model, at the level users care about.

Top-1 agreement, accuracy and its delta (overall and per class), max/mean absolute
difference of probabilities and KL divergence, and the image counts behind them
(``parity_counts``); ``bench.gate.Gate`` turns them into passes, fails or undecided.
"""

from __future__ import annotations

import numpy as np

from edgeproof.bench.bounds import PairedCounts

EPS = 1e-7


def accuracy(probs: np.ndarray, y: np.ndarray) -> float:
    return float((np.argmax(probs, axis=1) == y).mean()) if len(y) else float("nan")


def per_class_accuracy(probs: np.ndarray, y: np.ndarray, num_classes: int) -> list[float | None]:
    pred = np.argmax(probs, axis=1)
    return [float((pred[y == c] == c).mean()) if (y == c).any() else None
            for c in range(num_classes)]


def compare(ref: np.ndarray, cand: np.ndarray, y: np.ndarray | None = None) -> dict:
    """Parity numbers of candidate probabilities ``cand`` against reference ``ref``.

    Args:
        ref, cand: (N, classes) probabilities on the same images.
        y: true labels, for accuracy and per-class deltas (optional).

    Example:
        >>> p = np.array([[0.9, 0.1], [0.2, 0.8]])
        >>> compare(p, p, np.array([0, 1]))["top1_agreement"]
        1.0
        >>> compare(p, p, np.array([0, 0]))["parity_counts"]
        {'n': 2, 'agree': 2, 'both_right': 1, 'lost': 0, 'gained': 0}
    """
    ref, cand = np.asarray(ref, np.float64), np.asarray(cand, np.float64)
    if ref.shape != cand.shape:
        raise ValueError(f"reference {ref.shape} and candidate {cand.shape} differ in shape")
    diff = np.abs(ref - cand)
    p, q = np.clip(ref, EPS, 1.0), np.clip(cand, EPS, 1.0)
    kl = (p * (np.log(p) - np.log(q))).sum(axis=1)
    out = {"top1_agreement": float((ref.argmax(1) == cand.argmax(1)).mean()),
           "max_abs_diff": float(diff.max()) if diff.size else 0.0,
           "mean_abs_diff": float(diff.mean()) if diff.size else 0.0,
           "kl_divergence": float(kl.mean()) if kl.size else 0.0}
    # The counts the gate's bounds need (image by image, not the rounded rates).
    counts = PairedCounts.from_predictions(ref.argmax(1), cand.argmax(1), y)
    if y is not None:
        y = np.asarray(y)
        n = ref.shape[1]
        ref_acc, acc = accuracy(ref, y), accuracy(cand, y)
        pc_ref, pc = per_class_accuracy(ref, y, n), per_class_accuracy(cand, y, n)
        out.update({"accuracy": acc, "reference_accuracy": ref_acc, "accuracy_delta": acc - ref_acc,
                    "per_class_accuracy_delta": [None if a is None else a - b
                                                 for a, b in zip(pc, pc_ref)]})
    out["parity_counts"] = counts.to_dict()
    return out


def chance_warning(accuracy: float | None, num_classes: int | None, who: str) -> str | None:
    """A loud warning when ``who`` scores at chance level on a labelled dataset.

    A model that learned anything scores well above 1/classes; at chance, the likely cause
    is the pixels it was fed (scaled twice, or not at all), not the model.

    Example:
        >>> chance_warning(0.1, 10, "the Keras model")[:52]
        'WARNING: the Keras model scores 10.00% on 10 classes'
    """
    if accuracy is None or not num_classes or num_classes < 2 or accuracy > 1.5 / num_classes:
        return None
    return (f"WARNING: {who} scores {100 * accuracy:.2f}% on {num_classes} classes, chance level. "
            "The likely cause is preprocessing: the model may scale its input itself (a "
            "Rescaling first layer) or expect another scale; check the manifest's preprocessing "
            "or pass --preprocess scale=...,offset=....")
