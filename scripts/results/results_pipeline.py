"""Does the input pipeline keep the model busy? images/s of the tf.data folder pipeline
alone (first pass: decode+resize; second pass: from cache) vs flowers_cnn training steps.

Usage: python scripts/results/results_pipeline.py [../shared/datasets/flowers] [N_IMAGES]
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np


def main(root="../shared/datasets/flowers", n=640, size=150, batch=32) -> dict:
    from edgeproof.datasets import list_images
    from edgeproof.toolkit.data import folder_pipeline
    from edgeproof.toolkit.models import create_model

    classes, files, labels = list_images(root)
    idx = np.random.default_rng(0).permutation(len(files))[:n]
    data = folder_pipeline([files[i] for i in idx], labels[idx], size, batch)
    rates = []
    for _ in range(2):
        t0, seen = time.perf_counter(), 0
        for x, _y in data:
            seen += len(x)
        rates.append(seen / (time.perf_counter() - t0))
    model = create_model("flowers_cnn", len(classes), (size, size, 3))
    model.compile("rmsprop", "sparse_categorical_crossentropy")
    xb, yb = next(iter(data))
    model.train_on_batch(xb, yb)  # trace once
    steps = max(3, n // batch // 2)
    t0 = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(xb, yb)
    train_rate = steps * batch / (time.perf_counter() - t0)
    return {"images": int(n), "size": size, "batch": batch,
            "pipeline_first_pass_img_s": round(rates[0], 1),
            "pipeline_cached_img_s": round(rates[1], 1),
            "flowers_cnn_train_step_img_s": round(train_rate, 1)}


if __name__ == "__main__":
    args = sys.argv[1:]
    print(json.dumps(main(*(args[:1] or []), *(int(a) for a in args[1:2])), indent=2))
