"""Classify image files with any artifact, preprocessing from its manifest (`edgeproof predict`).

Files are decoded by the same function training used (``edgeproof.preprocess``), in
batches; an unreadable file is reported and skipped, never the end of the run.

Example:
    >>> for rec in predict_files("m.tflite", ["photos/"], top_k=2):  # doctest: +SKIP
    ...     print(rec["image"], rec["predictions"][0]["class"])
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from edgeproof.bench.runtimes import get_runtime_class, open_runtime, runtime_for
from edgeproof.datasets import collect_images
from edgeproof.errors import DataError
from edgeproof.bench.derive import artifact_manifest, preprocessing_known
from edgeproof.errors import UsageError
from edgeproof.preprocess import decode_image


def predict_files(artifact, paths, runtime: str | None = None, top_k: int = 1,
                  batch_size: int = 32, runtime_options: dict | None = None,
                  preprocess: dict | None = None) -> Iterator[dict]:
    """Yield one record per image under ``paths`` (files, or folders searched recursively).

    A record is ``{"image", "predictions": [{"class", "index", "probability"}, ...]}``
    (the ``top_k`` classes, most probable first), or ``{"image", "error"}`` for a file
    that cannot be decoded. ``runtime_options`` a runtime does not declare are ignored;
    ``preprocess`` overrides the manifest's (or tells it, for a file without one).
    """
    manifest = artifact_manifest(artifact, preprocess)
    if not preprocessing_known(manifest):
        raise UsageError(f"{artifact} has no manifest and does not show how it scales pixels; "
                         "pass --preprocess scale=...,offset=....")
    files = collect_images(paths)
    names = manifest.class_names
    runtime = runtime or runtime_for(artifact)
    # Options such as Keras' ``unsafe`` mean nothing to other runtimes: each takes its own.
    accepted = get_runtime_class(runtime).OPTIONS
    options = {k: v for k, v in (runtime_options or {}).items() if k in accepted}
    with open_runtime(artifact, runtime, manifest=manifest, **options) as rt:
        for i in range(0, len(files), batch_size):
            batch, ok = [], []
            for f in files[i:i + batch_size]:
                try:
                    batch.append(decode_image(f, manifest.preprocessing))
                    ok.append(f)
                except DataError as e:
                    yield {"image": str(f), "error": str(e)}
            if not batch:
                continue
            probs = rt.predict_images(np.stack(batch), batch_size=len(batch))
            for f, p in zip(ok, probs):
                top = np.argsort(-p)[:top_k]
                yield {"image": str(f), "predictions": [
                    {"class": names[j], "index": int(j), "probability": round(float(p[j]), 6)}
                    for j in top]}
