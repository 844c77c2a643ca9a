"""Flash and RAM of ``.tflite`` artifacts on a microcontroller: what ``edgeproof memory``
reports, what the budget gate reads, and what goes into an artifact's manifest.

Per artifact: flash (the file as it would be linked, the embedded manifest included, with
that manifest's bytes said apart since a deployment may strip them), the tensor arena, the
op where the most bytes are live and the largest tensors live there (from tensor
lifetimes), the multiply-accumulates, and the ops with whether TFLM has a kernel for each.

The arena is **measured** where TFLM builds the file (``bench.tflm_arena``: the smallest arena
that works, in a sandbox process) and **computed** from tensor lifetimes where it cannot
(float16 or dynamic-range files, missing ops, tflite-micro not installed): a lower bound,
tensor buffers only. ``arena_kind`` always says which, and only a measured arena is ever
written into a manifest.

Example:
    >>> entry = memory_of("m-int8.tflite")  # doctest: +SKIP
    >>> entry["arena_bytes"], entry["arena_kind"], entry["flash_bytes"]  # doctest: +SKIP
    (23840, 'measured', 145632)
"""

from __future__ import annotations

import json
from pathlib import Path

from edgeproof.atomic import atomic_write_bytes
from edgeproof.bench import tflm_arena
from edgeproof.bench.gate import fmt_bytes
from edgeproof.bench.micro import analyze
from edgeproof.embedded import read_embedded_manifest
from edgeproof.errors import EdgeproofError, RuntimeFailure, first_line
from edgeproof.manifest import manifest_path, sha256_file

MANIFEST_KEYS = ("arena_bytes", "arena_recorded_bytes", "arena_head_bytes", "arena_tail_bytes",
                 "flash_bytes", "manifest_bytes", "ops", "macs", "kernels", "tflite_micro")


def memory_of(path: str | Path, measure: bool = True) -> dict:
    """One artifact's memory figures (the ``micro`` dict of a row, plus ``artifact``).

    Args:
        path: a ``.tflite`` file.
        measure: run it on TFLM (a sandbox process) when tflite-micro is installed; False:
            computed figures only.

    Returns:
        ``{artifact, flash_bytes, manifest_bytes, arena_bytes, arena_kind, macs, ops,
        peak, computed_arena_bytes, ...}``; ``tflm_error`` says why the arena is computed.
        An unreadable file is ``{artifact, error}``.

    Example:
        >>> memory_of("m-fp16.tflite")["arena_kind"]  # doctest: +SKIP
        'computed'
    """
    p = Path(path)
    try:
        data = p.read_bytes()
        figures = analyze(data)
    except (OSError, EdgeproofError) as e:
        return {"artifact": str(p), "error": first_line(e)}
    entry = {"artifact": str(p), **{k: figures[k] for k in tflm_arena.FIGURE_KEYS}}
    if not measure or tflm_arena.version() is None:
        why = "not run on TFLM" if not measure else f"tflite-micro not installed ({tflm_arena.INSTALL})"
        return _computed(entry, figures, why)
    try:
        got = tflm_arena.measure(data, figures)
    except RuntimeFailure as e:
        return _computed(entry, figures, first_line(e))
    if not got["ok"]:
        entry = _computed(entry, figures, got["error"])
        entry["ops"] = {**entry["ops"], **got["ops"]}
        return entry
    return {**entry, **{k: v for k, v in got.items() if k not in ("ok", "error")}}


def _computed(entry: dict, figures: dict, why: str) -> dict:
    return {**entry, "arena_bytes": figures["computed_arena_bytes"], "arena_kind": "computed",
            "ops": {op: None for op in figures["ops"]}, "tflm_error": why}


def attach_memory(rows, report_dir: str | Path = ".") -> None:
    """Give each ``.tflite`` row without microcontroller figures its ``micro`` (measured
    where TFLM builds the file, else computed), so that budgets can judge it.

    Example:
        >>> attach_memory(rows, "runs/demo")  # doctest: +SKIP
    """
    for row in rows:
        art = row.artifact or ""
        if row.micro is None and art.endswith(".tflite"):
            entry = memory_of(Path(report_dir) / art)
            if "error" not in entry:
                row.micro = {k: v for k, v in entry.items() if k != "artifact"}


def record_in_manifest(path: str | Path, micro: dict) -> Path:
    """Write a measured ``micro`` section into the artifact's sidecar manifest, atomically.

    Only the sidecar ``<artifact>.json`` changes: the artifact's bytes, its sha256 and the
    manifest embedded in it stay as exported. A file without a sidecar gets one, made
    from its embedded manifest with the file's sha256 and size.

    Raises:
        RuntimeFailure: the arena is not measured, the sidecar does not match the file,
            or there is no manifest to extend.

    Example:
        >>> record_in_manifest("m-int8.tflite", memory_of("m-int8.tflite"))  # doctest: +SKIP
        PosixPath('m-int8.tflite.json')
    """
    p, side = Path(path), manifest_path(path)
    if micro.get("arena_kind") != "measured":
        raise RuntimeFailure(f"{p.name}: only a measured arena goes into a manifest "
                             f"({micro.get('tflm_error') or 'not measured'}).")
    if side.exists():
        doc = json.loads(side.read_text())
        if doc.get("sha256") and doc["sha256"] != sha256_file(p):
            raise RuntimeFailure(f"{side.name} does not match {p.name} (sha256); re-export it "
                                 "before recording its memory.")
    else:
        doc = read_embedded_manifest(p)
        if doc is None:
            raise RuntimeFailure(f"{p.name} has no manifest to record its memory in.")
        doc.update(sha256=sha256_file(p), size_bytes=p.stat().st_size)
    doc["micro"] = {k: micro[k] for k in MANIFEST_KEYS if k in micro}
    return atomic_write_bytes(side, (json.dumps(doc, indent=2) + "\n").encode())


def firmware_line(entry: dict) -> str:
    """The line a firmware author pastes, with what it assumes.

    Example:
        >>> firmware_line({"artifact": "m.tflite", "arena_bytes": 23840,
        ...                "arena_kind": "measured", "tflite_micro": "0.dev1"})
        'm.tflite: constexpr int kTensorArenaSize = 23840;  // measured: tflite-micro 0.dev1, reference kernels; alignas(16)'
    """
    name = Path(entry["artifact"]).name
    if entry.get("arena_kind") != "measured":
        return (f"{name}: no measured arena ({entry.get('tflm_error') or entry.get('error')}); "
                f"the computed {entry.get('arena_bytes')} B is a lower bound")
    return (f"{name}: constexpr int kTensorArenaSize = {entry['arena_bytes']};  // measured: "
            f"tflite-micro {entry.get('tflite_micro')}, reference kernels; alignas(16)")


def table_rows(entries: list[dict]) -> tuple[list[str], list[list[str]]]:
    """(headers, text rows) of the memory table, one row per artifact.

    Example:
        >>> table_rows([{"artifact": "x.tflite", "error": "Not a TFLite flatbuffer"}])[1][0][-1]
        'error: Not a TFLite flatbuffer'
    """
    headers = ["artifact", "flash B", "of it manifest B", "arena B", "arena", "head + tail B",
               "MACs", "peak at op", "largest live tensors there", "ops TFLM lacks"]
    rows = []
    for e in entries:
        if "error" in e:
            rows.append([Path(e["artifact"]).name, "-", "-", "-", "-", "-", "-", "-", "-",
                         f"error: {e['error']}"])
            continue
        peak = e.get("peak") or {}
        largest = ", ".join(f"{t['name'].split('/')[-1]} {fmt_bytes(t['bytes'])}"
                            for t in peak.get("largest", [])[:2])
        missing = [op for op, ok in (e.get("ops") or {}).items() if ok is False]
        head_tail = (f"{e['arena_head_bytes']:,} + {e['arena_tail_bytes']:,}"
                     if e.get("arena_head_bytes") is not None else "-")
        rows.append([Path(e["artifact"]).name, f"{e['flash_bytes']:,}",
                     f"{e['manifest_bytes']:,}", f"{e['arena_bytes']:,}",
                     e["arena_kind"], head_tail, f"{e['macs']:,}",
                     f"{peak.get('op_index')} {peak.get('op')}" if peak else "-",
                     largest or "-", ", ".join(missing) or "none"])
    return headers, rows
