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
    >>> m = memory_of("m-int8.tflite").micro  # doctest: +SKIP
    >>> m.arena_bytes, m.arena_kind, m.flash_bytes  # doctest: +SKIP
    (23840, 'measured', 145632)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from edgeproof.atomic import atomic_write_bytes
from edgeproof.bench import tflm_arena
from edgeproof.bench.gate import fmt_bytes
from edgeproof.bench.micro import analyze
from edgeproof.bench.micro_figures import MicroFigures
from edgeproof.embedded import read_embedded_manifest
from edgeproof.errors import EdgeproofError, RuntimeFailure, first_line
from edgeproof.manifest import manifest_path, sha256_file

@dataclass
class MemoryEntry:
    """One artifact's line of ``edgeproof memory``: its figures, or why there are none.

    ``manifest`` / ``manifest_error``: where its measured arena was recorded, or why not.
    ``to_dict()`` is the JSON entry: ``artifact`` and the figures' keys side by side (an
    unreadable file: ``artifact`` and ``error``).

    Example:
        >>> e = MemoryEntry("x.tflite", error="Not a TFLite flatbuffer")
        >>> e.ok, e.to_dict()
        (False, {'artifact': 'x.tflite', 'error': 'Not a TFLite flatbuffer'})
    """

    artifact: str
    micro: MicroFigures | None = None
    error: str | None = None
    manifest: str | None = None
    manifest_error: str | None = None

    @property
    def ok(self) -> bool:
        return self.micro is not None

    def to_dict(self) -> dict:
        d = {"artifact": self.artifact, **(self.micro.to_dict() if self.micro else {})}
        for key in ("error", "manifest", "manifest_error"):
            if getattr(self, key) is not None:
                d[key] = getattr(self, key)
        return d


def memory_of(path: str | Path, measure: bool = True) -> MemoryEntry:
    """One artifact's memory figures (the ``micro`` of a row), or why it cannot be read.

    Args:
        path: a ``.tflite`` file.
        measure: run it on TFLM (a sandbox process) when tflite-micro is installed; False:
            computed figures only.

    Example:
        >>> memory_of("m-fp16.tflite").micro.arena_kind  # doctest: +SKIP
        'computed'
        >>> memory_of("no-such.tflite").error
        "[Errno 2] No such file or directory: 'no-such.tflite'"
    """
    p = Path(path)
    try:
        data = p.read_bytes()
        graph = analyze(data)
    except (OSError, EdgeproofError) as e:
        return MemoryEntry(str(p), error=first_line(e))
    if not measure or tflm_arena.version() is None:
        why = "not run on TFLM" if not measure else f"tflite-micro not installed ({tflm_arena.INSTALL})"
        return MemoryEntry(str(p), MicroFigures.computed(graph, why))
    try:
        return MemoryEntry(str(p), tflm_arena.measure(data, graph))
    except RuntimeFailure as e:
        return MemoryEntry(str(p), MicroFigures.computed(graph, first_line(e)))


def attach_memory(rows, report_dir: str | Path = ".") -> None:
    """Give each ``.tflite`` row without microcontroller figures its ``micro`` (measured
    where TFLM builds the file, else computed), so that budgets can judge it.

    Example:
        >>> attach_memory(rows, "runs/demo")  # doctest: +SKIP
    """
    for row in rows:
        art = row.artifact or ""
        if row.micro is None and art.endswith(".tflite"):
            row.micro = memory_of(Path(report_dir) / art).micro


def record_in_manifest(path: str | Path, micro: MicroFigures) -> Path:
    """Write a measured ``micro`` section into the artifact's sidecar manifest, atomically.

    Only the sidecar ``<artifact>.json`` changes: the artifact's bytes, its sha256 and the
    manifest embedded in it stay as exported. A file without a sidecar gets one, made
    from its embedded manifest with the file's sha256 and size.

    Raises:
        RuntimeFailure: the arena is not measured, the sidecar does not match the file,
            or there is no manifest to extend.

    Example:
        >>> record_in_manifest("m-int8.tflite", memory_of("m-int8.tflite").micro)  # doctest: +SKIP
        PosixPath('m-int8.tflite.json')
    """
    p, side = Path(path), manifest_path(path)
    if micro is None or not micro.measured:
        raise RuntimeFailure(f"{p.name}: only a measured arena goes into a manifest "
                             f"({(micro and micro.tflm_error) or 'not measured'}).")
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
    doc["micro"] = micro.to_manifest()
    return atomic_write_bytes(side, (json.dumps(doc, indent=2) + "\n").encode())


def firmware_line(entry: MemoryEntry) -> str:
    """The line a firmware author pastes, with what it assumes.

    Example:
        >>> firmware_line(MemoryEntry("m.tflite", MicroFigures(
        ...     arena_bytes=23840, arena_kind="measured", tflite_micro="0.dev1")))
        'm.tflite: constexpr int kTensorArenaSize = 23840;  // measured: tflite-micro 0.dev1, reference kernels; alignas(16)'
    """
    name, m = Path(entry.artifact).name, entry.micro
    if m is None or not m.measured:
        return (f"{name}: no measured arena ({(m and m.tflm_error) or entry.error}); "
                f"the computed {m and m.arena_bytes} B is a lower bound")
    return (f"{name}: constexpr int kTensorArenaSize = {m.arena_bytes};  // measured: "
            f"tflite-micro {m.tflite_micro}, reference kernels; alignas(16)")


def table_rows(entries: list[MemoryEntry]) -> tuple[list[str], list[list[str]]]:
    """(headers, text rows) of the memory table, one row per artifact.

    Example:
        >>> table_rows([MemoryEntry("x.tflite", error="Not a TFLite flatbuffer")])[1][0][-1]
        'error: Not a TFLite flatbuffer'
    """
    headers = ["artifact", "flash B", "of it manifest B", "arena B", "arena", "head + tail B",
               "MACs", "peak at op", "largest live tensors there", "ops TFLM lacks"]
    return headers, [_table_row(e) for e in entries]


def _table_row(e: MemoryEntry) -> list[str]:
    name, m = Path(e.artifact).name, e.micro
    if m is None:
        return [name, "-", "-", "-", "-", "-", "-", "-", "-", f"error: {e.error}"]
    peak = m.peak or {}
    largest = ", ".join(f"{t['name'].split('/')[-1]} {fmt_bytes(t['bytes'])}"
                        for t in peak.get("largest", [])[:2])
    head_tail = (f"{m.arena_head_bytes:,} + {m.arena_tail_bytes:,}"
                 if m.arena_head_bytes is not None else "-")
    return [name, f"{m.flash_bytes:,}", f"{m.manifest_bytes:,}", f"{m.arena_bytes:,}",
            m.arena_kind, head_tail, f"{m.macs:,}",
            f"{peak.get('op_index')} {peak.get('op')}" if peak else "-",
            largest or "-", ", ".join(m.missing_ops) or "none"]
