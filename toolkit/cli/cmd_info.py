"""`edgekit models` and `edgekit formats`: the registries as tables."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("models", help="list the registered models",
                       description="List the model registry: name, default input, description.")
    p.set_defaults(func=models)
    p = sub.add_parser("formats", help="list the export formats and their options",
                       description="List the export formats: suffix, runtime, options, calibration.")
    p.set_defaults(func=formats)


def _print(title, columns, rows) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title)
    for c in columns:
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*r)
    Console(width=160).print(t) if not _tty() else Console().print(t)


def _tty() -> bool:
    import sys

    return sys.stdout.isatty()


def models(args) -> int:
    from toolkit.models.registry import _REGISTRY, list_models

    rows = [(n, "x".join(map(str, _REGISTRY[n].default_input_shape)), _REGISTRY[n].family,
             _REGISTRY[n].description) for n in list_models()]
    _print("models", ["name", "default input", "family", "description"], rows)
    return 0


def formats(args) -> int:
    from export.formats import list_formats

    rows = []
    for f in list_formats():
        opts = ", ".join(f"{k}={v}" + (f" ({'|'.join(f.choices[k])})" if k in f.choices else "")
                         for k, v in f.options.items()) or "-"
        rows.append((f.name, f.suffix, f.runtime, opts, "yes" if f.needs_calibration else "no",
                     f.description))
    _print("formats", ["format", "suffix", "runtime", "options", "calibration", "description"], rows)
    return 0
