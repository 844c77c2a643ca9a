"""`edgeproof memory`: flash and RAM of artifacts on a microcontroller, as a table and JSON.

Each ``.tflite`` file is analysed from its flatbuffer (flash, ops, MACs, tensor lifetimes)
and, where TFLM builds it, measured on TFLM in a sandbox process (the smallest arena that
works); elsewhere the arena is computed from tensor lifetimes and labelled so
(``bench.footprint``). ``write_manifest`` records a measured arena in each artifact's
sidecar manifest, leaving the artifact's bytes and sha256 as they are.

Example:
    >>> report = run_memory(MemoryConfig(["m-int8.tflite"], json="memory.json"))  # doctest: +SKIP
    >>> report.entries[0].micro.arena_kind  # doctest: +SKIP
    'measured'
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field

from edgeproof import __version__
from edgeproof.app.reporting import write_json
from edgeproof.bench import tflm_arena
from edgeproof.bench.footprint import MemoryEntry, memory_of, record_in_manifest
from edgeproof.errors import EdgeproofError, UsageError, first_line
from edgeproof.machine import cpu_info


@dataclass
class MemoryConfig:
    """The ``edgeproof memory`` flags as fields.

    Args:
        artifacts: ``.tflite`` paths.
        json: write the report here (None: no file).
        write_manifest: record a measured arena in each artifact's sidecar manifest.
        measure: run the files on TFLM (False: computed figures only).
        command: the command line, for the report.
    """

    artifacts: list[str]
    json: str | None = None
    write_manifest: bool = False
    measure: bool = True
    command: str | None = None


@dataclass
class MemoryReport:
    """What ``edgeproof memory`` found: one ``bench.footprint.MemoryEntry`` per artifact,
    and where it ran. ``to_dict()`` is memory.json: ``{edgeproof_version, created, command,
    tflite_micro, cpu, artifacts: [entry]}``.

    Example:
        >>> from edgeproof.bench.footprint import MemoryEntry
        >>> r = MemoryReport([MemoryEntry("x.tflite", error="Not a TFLite flatbuffer")])
        >>> r.failed, r.to_dict()["artifacts"][0]["error"]
        (True, 'Not a TFLite flatbuffer')
    """

    entries: list[MemoryEntry]
    command: str | None = None
    tflite_micro: str | None = None
    cpu: str | None = None
    created: str = field(default_factory=lambda: _dt.datetime.now().isoformat(timespec="seconds"))

    @property
    def failed(self) -> bool:
        """Whether an artifact could not be read."""
        return any(not e.ok for e in self.entries)

    def to_dict(self) -> dict:
        return {"edgeproof_version": __version__, "created": self.created,
                "command": self.command, "tflite_micro": self.tflite_micro, "cpu": self.cpu,
                "artifacts": [e.to_dict() for e in self.entries]}


def run_memory(cfg: MemoryConfig) -> MemoryReport:
    """Each artifact's memory entry; the report (also written to ``cfg.json``). An entry
    that could not be read has ``error``, a manifest that could not be written
    ``manifest_error``."""
    if not cfg.artifacts:
        raise UsageError("Name at least one .tflite artifact.")
    entries = []
    for path in cfg.artifacts:
        entry = memory_of(path, measure=cfg.measure)
        if cfg.write_manifest and entry.ok:
            try:
                entry.manifest = str(record_in_manifest(path, entry.micro))
            except EdgeproofError as e:
                entry.manifest_error = first_line(e)
        entries.append(entry)
    report = MemoryReport(entries, cfg.command, tflm_arena.version(), cpu_info()["cpu"])
    if cfg.json:
        write_json(cfg.json, report.to_dict())
    return report
