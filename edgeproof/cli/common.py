"""Argument helpers and console output shared by the subcommands."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.table import Table

from edgeproof.bench.bounds import DEFAULT_CONFIDENCE
from edgeproof.bench.gate import (DEFAULT_MAX_ACCURACY_DROP, DEFAULT_MIN_AGREEMENT, MODES,
                                  UNITS_HELP, Gate, parse_bytes)
from edgeproof.bench.recommend import TARGETS
from edgeproof.bench.report import recommendation_lines
from edgeproof.bench.table import print_table
from edgeproof.bench.threads import Threads
from edgeproof.errors import UsageError


def int_at_least(low: int):
    """An argparse ``type`` accepting ints >= ``low``, with a message saying so."""

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an int >= {low}, got {text!r}") from None
        if v < low:
            raise argparse.ArgumentTypeError(f"must be an int >= {low}, got {v}")
        return v

    parse.__name__ = f"int>={low}"
    return parse


positive_int = int_at_least(1)


def threads_arg(text: str) -> Threads:
    """An argparse ``type`` for ``--threads``: ``auto``, ``default`` or an int >= 1.

    Example:
        >>> str(threads_arg("auto")), threads_arg("2").count
        ('auto', 2)
    """
    try:
        return Threads.parse(text)
    except UsageError:
        raise argparse.ArgumentTypeError(f"must be auto, default or an int >= 1, got {text!r}") \
            from None


nonneg_int = int_at_least(0)


def int_list(text: str) -> list[int]:
    """An argparse ``type`` for ``"1,8,32"``: positive ints, comma-separated.

    Example:
        >>> int_list("1, 8,32")
        [1, 8, 32]
    """
    parts = [t.strip() for t in text.split(",") if t.strip()]
    try:
        values = [int(t) for t in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be ints like 1,8,32, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"must be ints >= 1 like 1,8,32, got {text!r}")
    return values


def points(text: str) -> float:
    """An argparse ``type`` for accuracy in percentage points, returned as a fraction.

    Example:
        >>> points("0.5")
        0.005
    """
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be percentage points like 0.5, got {text!r}") \
            from None
    if not 0.0 <= v <= 100.0:
        raise argparse.ArgumentTypeError(f"must be percentage points in [0, 100], got {v}")
    return v / 100.0


def fraction(text: str) -> float:
    """An argparse ``type`` for a number in [0, 1] (agreement).

    Example:
        >>> fraction("0.99")
        0.99
    """
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1], got {text!r}") from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1], got {v}")
    return v


def parse_options(items: list[str] | None) -> dict:
    """``KEY=VALUE`` items -> a dict (digits become ints).

    Example:
        >>> parse_options(["io_type=uint8", "opset=13"])
        {'io_type': 'uint8', 'opset': 13}
    """
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"Option {item!r} must look like KEY=VALUE (e.g. io_type=uint8).")
        out[key.strip()] = int(value) if value.strip().lstrip("-").isdigit() else value.strip()
    return out


def add_dataset_args(p: argparse.ArgumentParser, required: bool = False, default=None) -> None:
    p.add_argument("--dataset", required=required, default=default, metavar="D",
                   help="digits | mnist | cifar10 | flowers | PATH (folder with one subfolder per "
                        "class, or .npz with x_train/y_train/x_test/y_test)")
    p.add_argument("--seed", type=nonneg_int, default=0,
                   help="seed of the split (and of training): same seed, same split (default 0)")


PREPROCESS_HELP = (
    "how pixels become the model's input; the fields named replace the default, which is the "
    "model's manifest, else what the model shows (a first Rescaling, a constant scale or mean "
    "first in its graph), else 1/255 for Keras models (a SavedModel, ONNX or PyTorch file "
    "that shows nothing needs it for accuracy; latency needs none). Keys: scale, offset "
    "(input = pixel * scale + offset; numbers or fractions, scale 1/255 by default); mean, "
    "std (one number per channel, the numbers after the key until the next KEY=: then "
    "(input - mean) / std, torchvision's Normalize); resize=N (the shorter side to N "
    "pixels, aspect kept) and crop=N (the centre N x N: the model's input size); "
    "colour=rgb|grayscale; order=RGB|BGR; interpolation=bilinear|nearest|bicubic|area|"
    "lanczos. E.g. mean=0.485,0.456,0.406,std=0.229,0.224,0.225,resize=256,crop=224")


def add_preprocess_option(p: argparse.ArgumentParser) -> None:
    """``--preprocess KEY=VALUE,...``, declared once for every command that feeds pixels to
    a model (parse it with ``edgeproof.manifest.parse_preprocess``).

    Example:
        >>> p = argparse.ArgumentParser()
        >>> add_preprocess_option(p)
        >>> p.parse_args(["--preprocess", "mean=0.5,0.5,0.5,std=0.2,0.2,0.2"]).preprocess
        'mean=0.5,0.5,0.5,std=0.2,0.2,0.2'
    """
    p.add_argument("--preprocess", default=None, metavar="KEY=VALUE,...", help=PREPROCESS_HELP)


def byte_size(text: str) -> int:
    """An argparse ``type`` for a memory budget: ``256KB``, ``1MiB``, ``4096`` (bytes).

    Example:
        >>> byte_size("256KB"), byte_size("1MB")
        (262144, 1048576)
    """
    try:
        return parse_bytes(text)
    except UsageError:
        raise argparse.ArgumentTypeError(f"must be a size like 256KB or 1MB ({UNITS_HELP}), "
                                         f"got {text!r}") from None


def add_target_args(p: argparse.ArgumentParser, what: str) -> None:
    """``--target``, ``--ram-budget`` and ``--flash-budget`` (``run``, ``optimize``)."""
    p.add_argument("--target", default="host", choices=TARGETS,
                   help=f"host (default): {what} ranked by latency here; mcu: a "
                        "microcontroller: .tflite files run on TensorFlow Lite Micro (the "
                        "tflm runtime, pip install -e \".[micro]\"), arena and flash measured, "
                        "ranked by MACs then arena + flash (host time on TFLM's reference "
                        "kernels is not microcontroller time)")
    p.add_argument("--ram-budget", type=byte_size, default=None, metavar="SIZE",
                   help="gate: the tensor arena must fit, e.g. 256KB (measured on TFLM; "
                        f"computed from tensor lifetimes where TFLM cannot run the file). "
                        f"Units: {UNITS_HELP}")
    p.add_argument("--flash-budget", type=byte_size, default=None, metavar="SIZE",
                   help="gate: the model file (embedded manifest included) must fit, e.g. 1MB")


def confidence_arg(text: str) -> float:
    """An argparse ``type`` for ``--confidence``: a number in (0.5, 1).

    Example:
        >>> confidence_arg("0.95")
        0.95
    """
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in (0.5, 1), got {text!r}") \
            from None
    if not 0.5 < v < 1:
        raise argparse.ArgumentTypeError(f"must be a number in (0.5, 1) such as 0.95, got {v}")
    return v


def add_gate_args(p: argparse.ArgumentParser, min_agreement: float | None = DEFAULT_MIN_AGREEMENT,
                  max_accuracy_drop: float | None = DEFAULT_MAX_ACCURACY_DROP,
                  note: str = "") -> None:
    """The gate's flags, declared once for every command that gates (bench, parity,
    export, optimize, run): ``--min-agreement``, ``--max-accuracy-drop``,
    ``--confidence`` and ``--gate``, with the command's defaults (None: not checked
    unless given) and a ``note`` on what the gate does in that command."""
    def default(v, fmt):
        return "not checked" if v is None else fmt(v)

    p.add_argument("--min-agreement", type=fraction, default=min_agreement,
                   help="gate: lowest top-1 agreement with the reference, a fraction "
                        f"(default {default(min_agreement, lambda v: f'{v:g}')}){note}")
    p.add_argument("--max-accuracy-drop", type=points, default=max_accuracy_drop,
                   help="gate: largest accuracy drop vs the reference, in percentage points "
                        "(0.5 = half a point; default "
                        f"{default(max_accuracy_drop, lambda v: f'{100 * v:g}')})")
    p.add_argument("--confidence", type=confidence_arg, default=DEFAULT_CONFIDENCE,
                   help="how sure the gate must be (default "
                        f"{DEFAULT_CONFIDENCE:g}): a pass or a fail is proven on one-sided "
                        "bounds at this confidence (Clopper-Pearson for agreement, Newcombe's "
                        "paired interval for the drop; Bonferroni over the candidates when "
                        "one is chosen among several)")
    p.add_argument("--gate", dest="gate_mode", choices=MODES, default="bound",
                   help="bound (default): pass when the bounds clear the limits, fail when "
                        "they exclude them, else undecided (exit 4); point: decide on the "
                        "measured figures, pass or fail")


def gate_of(args, default: bool = True, **budgets) -> Gate:
    """The ``Gate`` of a command's gate flags (``add_gate_args``) and ``budgets``
    (``ram_budget``, ``flash_budget``); ``default``: no parity limit given means the
    default limits (else none)."""
    return Gate.from_flags(args.min_agreement, args.max_accuracy_drop, default,
                           confidence=args.confidence, mode=args.gate_mode, **budgets)


def status_printer(quiet: bool = False):
    """A ``status(msg)`` callable printing progress lines on stderr."""
    if quiet:
        return lambda msg: None
    from rich.console import Console

    console = Console(stderr=True)
    return lambda msg: console.print(f"[dim]·[/dim] {msg}", highlight=False)


def out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def print_rows(title: str, columns: list[str], rows, max_width: int | None = None) -> None:
    """A plain rich table of strings (long cells fold; 160 columns when not a terminal, at
    most ``max_width`` when given).

    Example:
        >>> print_rows("models", ["name"], [["small_cnn"]])  # doctest: +SKIP
    """
    table = Table(title=title)
    for c in columns:
        table.add_column(c, overflow="fold")
    for r in rows:
        table.add_row(*r)
    width = None if sys.stdout.isatty() else 160
    if max_width:
        width = min(max_width, width or Console().width)
    Console(width=width).print(table)


def print_results(report: dict, title: str) -> None:
    """The results table (as wide as the terminal allows) and the recommendation."""
    print_table(report["results"], title=title, warnings=report.get("warnings") or ())
    for line in recommendation_lines(report):
        out(line.replace("**", ""))
