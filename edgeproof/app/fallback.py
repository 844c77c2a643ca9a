"""Which layers to keep in float, ranked by what reverting each one actually does.

A proxy error (TFLite's quantization debugger: RMSE over the quantization step; ONNX
Runtime's SQNR loss) says where int8 damages a tensor, not how much that damage changes
the answers. NNCF's accuracy-control mode ranks by the effect instead: revert one layer
to float at a time, export, and measure top-1 agreement on a ranking subset of the
validation split. Here the proxy picks the first ``limit`` candidates (cheap, one pass),
and each is then measured alone; the ranking is by agreement, ties going to the file
that keeps fewer XNNPACK partitions (a float island between int8 ops splits the graph).
The ladder's float-fallback rungs keep the first k of this ranking, re-validated on the
whole validation split.

Example:
    >>> ranked = rank_by_reverting(model, ctx, "tflite-int8", proxy, data, out)  # doctest: +SKIP
    >>> ranked[0]["name"], ranked[0]["agreement"]  # doctest: +SKIP
    ('model/bn7_shift/add', 0.962)
"""

from __future__ import annotations

import tempfile
from pathlib import Path


from edgeproof.bench.one_artifact import bench_artifact
from edgeproof.bench.settings import BenchSettings, EvalData
from edgeproof.errors import EdgeproofError, first_line
from edgeproof.export.artifact import write_artifact
from edgeproof.export.formats import export_model

OPTION = {"tflite-int8": "float_layers", "onnx-int8": "exclude_nodes"}
RANK_IMAGES = 1000  # validation images the ranking runs on


def _measure(model, ctx, fmt: str, names: list[str], data: EvalData, folder: Path) -> dict:
    """Agreement (and XNNPACK partitions) of ``fmt`` with ``names`` kept float."""
    art = export_model(model, fmt, ctx, {OPTION[fmt]: names})
    path = write_artifact(art, folder, "rank", force=True)
    row, _ = bench_artifact(path, BenchSettings(latency=False, threads="default"), data)
    if not row.ok:
        raise EdgeproofError(row.error or "failed")
    return {"agreement": row.top1_agreement,
            "partitions": (row.runtime_details or {}).get("delegate_nodes")}


def rank_by_reverting(model, ctx, fmt: str, proxy: list[str], data: EvalData,
                      limit: int = 8) -> list[dict]:
    """The first ``limit`` names of the ``proxy`` ranking, each measured alone in float on
    ``data``; returns ``[{name, agreement, partitions, proxy_rank}]``, best first.

    A name whose export fails is ranked last with its error (it may not be a quantized
    tensor at all), so a bad proxy guess costs one conversion, never the search.
    """
    ranked = []
    with tempfile.TemporaryDirectory() as d:
        for i, name in enumerate(proxy[:limit]):
            try:
                got = _measure(model, ctx, fmt, [name], data, Path(d))
            except EdgeproofError as e:
                got = {"agreement": -1.0, "partitions": None, "error": first_line(e)}
            ranked.append({"name": name, "proxy_rank": i + 1, **got})
    # Agreement in steps of one image: equal agreement goes to fewer partitions.
    return sorted(ranked, key=lambda r: (-round(r["agreement"] * len(data.images)),
                                         r["partitions"] or 1, r["proxy_rank"]))


def ranking_subset(images, labels, reference, n: int = RANK_IMAGES, seed: int = 0) -> EvalData:
    """A seeded sample of ``n`` validation images (splits may be stored class by class, so
    a prefix would hold one or two classes).

    Example:
        >>> import numpy as np
        >>> len(ranking_subset(np.zeros((5, 2, 2, 1)), np.arange(5), None, 3).labels)
        3
    """
    return EvalData(images, labels, reference).sample(n, seed)
