"""``--target mcu`` and the memory budgets, as ``run`` and ``optimize`` apply them.

A microcontroller target changes four things, each a small hook here so that the use
cases stay as they are for every other target:

- which runtime measures a ``.tflite`` export: TFLM (``tflm``), whose rows carry the
  measured arena, flash, ops and MACs;
- which candidates ``optimize`` tries: full-integer TFLite rungs only (int8, int16x8
  activations, QAT int8), since TFLM has no hybrid (dynamic-range) kernels and float
  fallbacks cost a microcontroller most;
- how the recommendation ranks what passes the gate and fits: by MACs, then arena +
  flash (``bench.recommend``), never by host latency on TFLM's reference kernels;
- the measured arena is written into the run's own artifacts' sidecar manifests.

Budgets without ``--target mcu`` still gate: ``.tflite`` rows get the arena TFLM would
need (measured in a sandbox where TFLM builds the file, else computed and labelled so),
and rows without one fail the RAM budget saying why.

Example:
    >>> runtime_for_target("mcu", "models/m-tflite-int8.tflite")
    'tflm'
    >>> runtime_for_target("host", "models/m-tflite-int8.tflite") is None
    True
"""

from __future__ import annotations

from pathlib import Path

from edgeproof.bench.footprint import attach_memory, record_in_manifest
from edgeproof.bench.gate import Gate
from edgeproof.bench.recommend import TARGETS
from edgeproof.errors import EdgeproofError, UsageError

MCU_RUNTIME = "tflm"
MCU_FORMATS = ("keras", "tflite-int8")  # `run --target mcu`: the reference and the int8 file
MCU_RUNG_FORMATS = ("tflite-int8", "tflite-int16x8", "tflite-qat-int8")  # full integer


def check_target(target: str) -> str:
    """``target`` if it is one of ``TARGETS``, else a UsageError listing them.

    Example:
        >>> check_target("mcu")
        'mcu'
    """
    if target not in TARGETS:
        raise UsageError(f"Unknown target {target!r}; valid: {', '.join(TARGETS)}.")
    return target


def runtime_for_target(target: str, artifact) -> str | None:
    """The runtime that measures ``artifact`` for ``target`` (None: the suffix's default)."""
    return MCU_RUNTIME if target == "mcu" and str(artifact).endswith(".tflite") else None


def mcu_rung(rung) -> bool:
    """Whether an optimize rung gives a full-integer file TFLM runs (no layers kept float).

    Example:
        >>> from edgeproof.app.ladder import Rung
        >>> mcu_rung(Rung("tflite-int", "int8", "tflite-int8")), mcu_rung(Rung("float", "f", "tflite-fp32"))
        (True, False)
    """
    return rung.format in MCU_RUNG_FORMATS and not rung.keep_float


def rungs_for_target(ladders: dict, target: str) -> dict:
    """``{family: rungs}`` kept to what ``target`` runs (all of them for ``host``).

    Example:
        >>> from edgeproof.app.ladder import Rung
        >>> rungs_for_target({"float": [Rung("float", "f", "tflite-fp32")]}, "mcu")
        {}
    """
    if target != "mcu":
        return ladders
    kept = {family: [r for r in rungs if mcu_rung(r)] for family, rungs in ladders.items()}
    return {family: rungs for family, rungs in kept.items() if rungs}


def judge_fit(rows, gate: Gate, target: str, report_dir) -> None:
    """Give budget-gated ``.tflite`` rows their memory figures (TFLM rows have them).

    Example:
        >>> judge_fit(rows, Gate(ram_budget=262144), "host", "runs/demo")  # doctest: +SKIP
    """
    if gate.has_budgets and target != "mcu":
        attach_memory(rows, report_dir)


def record_measured(rows, report_dir) -> list[str]:
    """Write each row's measured arena into its artifact's sidecar manifest; returns what
    could not be written (one line each).

    Example:
        >>> record_measured(rows, "runs/demo")  # doctest: +SKIP
        []
    """
    problems = []
    for row in rows:
        if row.micro is not None and row.micro.measured and row.artifact:
            try:
                record_in_manifest(Path(report_dir) / row.artifact, row.micro)
            except EdgeproofError as e:
                problems.append(f"{row.artifact}: {e}")
    return problems
