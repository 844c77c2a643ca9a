"""A ``.tflite`` file's figures on a microcontroller, as typed records.

``GraphFigures`` is what the flatbuffer alone says (``bench.micro.analyze``): flash, the
embedded manifest's share of it, op counts, MACs, the arena a greedy plan over tensor
lifetimes needs and the op where the most bytes are live. ``MicroFigures`` is a row's
``micro``: those figures plus the tensor arena, **measured** on TFLM (``bench.tflm_arena``:
the smallest arena that works) or **computed** from tensor lifetimes (a lower bound, and
labelled so in ``arena_kind``, with ``tflm_error`` saying why TFLM did not measure it), and
each op with whether TFLM has a kernel for it.

Code passes the objects. ``to_dict()`` is the JSON contract (report.json's and
optimize.json's ``micro``, the keys README shows; a figure not had is left out) and
``from_dict`` reads one back (a report, a manifest's ``micro``, an older file: unknown keys
are ignored); ``to_manifest()`` is the part a sidecar manifest keeps.

Example:
    >>> m = MicroFigures(arena_bytes=23840, arena_kind="measured", flash_bytes=146072,
    ...                  ops={"CONV_2D": True})
    >>> m.to_dict()
    {'arena_bytes': 23840, 'arena_kind': 'measured', 'flash_bytes': 146072, 'ops': {'CONV_2D': True}}
    >>> MicroFigures.from_dict(m.to_dict()) == m, m.measured
    (True, True)
"""

from __future__ import annotations

from dataclasses import dataclass, fields

# What a sidecar manifest records of a measured arena (``bench.footprint.record_in_manifest``).
MANIFEST_KEYS = ("arena_bytes", "arena_recorded_bytes", "arena_head_bytes", "arena_tail_bytes",
                 "flash_bytes", "manifest_bytes", "ops", "macs", "kernels", "tflite_micro")


@dataclass(frozen=True)
class GraphFigures:
    """The flatbuffer's own figures (no interpreter).

    Attributes:
        flash_bytes: the file as it would be linked, embedded manifest included.
        manifest_bytes: of it, the embedded edgeproof manifest (a deployment may strip it).
        ops: ``{op name: count}``.
        macs: multiply-accumulates of the whole graph.
        computed_arena_bytes: the tensor buffers a greedy plan needs (a lower bound).
        peak: ``{op_index, op, live_bytes, largest: [{name, shape, dtype, bytes}]}`` where
            the most bytes are live (None: a graph without ops).
        subgraphs: how many subgraphs the file has.

    Example:
        >>> GraphFigures(1000, 0, {"SOFTMAX": 1}, 0, 32).computed_arena_bytes
        32
    """

    flash_bytes: int
    manifest_bytes: int
    ops: dict
    macs: int
    computed_arena_bytes: int
    peak: dict | None = None
    subgraphs: int = 1


@dataclass(frozen=True)
class MicroFigures:
    """A row's microcontroller memory (every field optional: a report may hold a part).

    Attributes:
        arena_bytes: the tensor arena, ``arena_kind`` "measured" (TFLM's smallest that
            works) or "computed" (from tensor lifetimes: a lower bound).
        arena_recorded_bytes: TFLM's recording allocator total, = head + tail.
        arena_search: how the smallest arena was bracketed ``{probes, one_byte_less_fails,
            outputs_match_large_arena}``.
        ops: ``{op: whether TFLM has a kernel}`` (None: TFLM was not asked).
        kernels, tflite_micro: which TFLM kernels and version measured it.
        tflm_error: why the arena is computed, not measured.
        (flash_bytes, manifest_bytes, macs, computed_arena_bytes, peak: as ``GraphFigures``.)
    """

    arena_bytes: int | None = None
    arena_kind: str | None = None
    arena_recorded_bytes: int | None = None
    arena_head_bytes: int | None = None
    arena_tail_bytes: int | None = None
    arena_search: dict | None = None
    flash_bytes: int | None = None
    manifest_bytes: int | None = None
    ops: dict | None = None
    macs: int | None = None
    computed_arena_bytes: int | None = None
    peak: dict | None = None
    kernels: str | None = None
    tflite_micro: str | None = None
    tflm_error: str | None = None

    @property
    def measured(self) -> bool:
        """Whether TFLM measured the arena (only such an arena goes into a manifest)."""
        return self.arena_kind == "measured"

    @property
    def missing_ops(self) -> list[str]:
        """The ops TFLM said it has no kernel for.

        Example:
            >>> MicroFigures(ops={"CONV_2D": True, "GELU": False, "PAD": None}).missing_ops
            ['GELU']
        """
        return [op for op, ok in (self.ops or {}).items() if ok is False]

    @classmethod
    def computed(cls, graph: GraphFigures, why: str, support: dict | None = None) -> MicroFigures:
        """The figures of a file TFLM did not measure: the computed arena, labelled so,
        and ``why``; ``support``: what TFLM said of the ops it was asked about.

        Example:
            >>> g = GraphFigures(1000, 0, {"RESHAPE": 1, "GELU": 1}, 160, 32)
            >>> m = MicroFigures.computed(g, "TFLM has no kernel for GELU", {"GELU": False})
            >>> m.arena_bytes, m.arena_kind, m.ops
            (32, 'computed', {'RESHAPE': None, 'GELU': False})
        """
        return cls(arena_bytes=graph.computed_arena_bytes, arena_kind="computed",
                   ops={**{op: None for op in graph.ops}, **(support or {})},
                   tflm_error=why, **_graph_part(graph))

    @classmethod
    def measured_on_tflm(cls, graph: GraphFigures, got: dict, kernels: str,
                         version: str | None) -> MicroFigures:
        """The figures of a file TFLM built: ``got`` is ``tflm_arena.measure_here``'s answer
        (``ops``, ``arena_bytes``, the recorded parts and ``arena_search``).

        Example:
            >>> g = GraphFigures(1000, 0, {"SOFTMAX": 1}, 0, 32)
            >>> MicroFigures.measured_on_tflm(g, {"ok": True, "arena_bytes": 1848,
            ...     "ops": {"SOFTMAX": True}}, "TFLM", "0.dev1").arena_kind
            'measured'
        """
        own = {k: got[k] for k in ("ops", "arena_bytes", "arena_recorded_bytes",
                                   "arena_head_bytes", "arena_tail_bytes", "arena_search")
               if k in got}
        return cls(arena_kind="measured", kernels=kernels, tflite_micro=version,
                   **_graph_part(graph), **own)

    def to_dict(self) -> dict:
        """The JSON ``micro``: the fields had, in README's order."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) is not None}

    def to_manifest(self) -> dict:
        """What a sidecar manifest's ``micro`` keeps (``MANIFEST_KEYS``).

        Example:
            >>> MicroFigures(arena_bytes=1848, arena_kind="measured", peak={"op": "X"}).to_manifest()
            {'arena_bytes': 1848}
        """
        d = self.to_dict()
        return {k: d[k] for k in MANIFEST_KEYS if k in d}

    @classmethod
    def from_dict(cls, d: dict) -> MicroFigures:
        """The record of a JSON ``micro`` (unknown keys ignored: older or newer writers).

        Example:
            >>> MicroFigures.from_dict({"arena_bytes": 1200, "note": "x"}).arena_bytes
            1200
        """
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def _graph_part(graph: GraphFigures) -> dict:
    return {"flash_bytes": graph.flash_bytes, "manifest_bytes": graph.manifest_bytes,
            "macs": graph.macs, "computed_arena_bytes": graph.computed_arena_bytes,
            "peak": graph.peak}


def as_micro(value) -> MicroFigures | None:
    """``value`` as a MicroFigures: a record stays, a JSON dict is read, None stays None.

    Example:
        >>> as_micro({"arena_bytes": 1200}).arena_bytes, as_micro(None)
        (1200, None)
    """
    if value is None or isinstance(value, MicroFigures):
        return value
    return MicroFigures.from_dict(value)


def micro_of(row) -> MicroFigures | None:
    """A row's ``micro``, whether the row is an object (a BenchRow) or a report's dict.

    Example:
        >>> micro_of({"micro": {"flash_bytes": 1000}}).flash_bytes, micro_of({})
        (1000, None)
    """
    return as_micro(row.get("micro") if isinstance(row, dict) else getattr(row, "micro", None))
