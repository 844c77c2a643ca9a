"""`edgeproof memory`: flash and RAM of artifacts on a microcontroller, as a table and JSON.

Each ``.tflite`` file is analysed from its flatbuffer (flash, ops, MACs, tensor lifetimes)
and, where TFLM builds it, measured on TFLM in a sandbox process (the smallest arena that
works); elsewhere the arena is computed from tensor lifetimes and labelled so
(``bench.footprint``). ``write_manifest`` records a measured arena in each artifact's
sidecar manifest, leaving the artifact's bytes and sha256 as they are.

Example:
    >>> report = run_memory(MemoryConfig(["m-int8.tflite"], json="memory.json"))  # doctest: +SKIP
    >>> report["artifacts"][0]["arena_kind"]  # doctest: +SKIP
    'measured'
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

from edgeproof import __version__
from edgeproof.app.reporting import write_json
from edgeproof.bench import tflm_arena
from edgeproof.bench.footprint import memory_of, record_in_manifest
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


def run_memory(cfg: MemoryConfig) -> dict:
    """Each artifact's memory entry; the report (also written to ``cfg.json``).

    Returns ``{edgeproof_version, created, command, tflite_micro, cpu, artifacts: [entry]}``;
    an entry that could not be read has ``error``, a manifest that could not be written
    ``manifest_error``.
    """
    if not cfg.artifacts:
        raise UsageError("Name at least one .tflite artifact.")
    entries = []
    for path in cfg.artifacts:
        entry = memory_of(path, measure=cfg.measure)
        if cfg.write_manifest and "error" not in entry:
            try:
                entry["manifest"] = str(record_in_manifest(path, entry))
            except EdgeproofError as e:
                entry["manifest_error"] = first_line(e)
        entries.append(entry)
    report = {"edgeproof_version": __version__,
              "created": _dt.datetime.now().isoformat(timespec="seconds"),
              "command": cfg.command, "tflite_micro": tflm_arena.version(),
              "cpu": cpu_info()["cpu"], "artifacts": entries}
    if cfg.json:
        write_json(cfg.json, report)
    return report
