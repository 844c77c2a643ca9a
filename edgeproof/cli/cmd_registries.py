"""`edgeproof models`, `edgeproof formats` and `edgeproof runtimes`: the registries as tables."""

from __future__ import annotations


from edgeproof.bench.runtimes import RUNTIMES
from edgeproof.cli.common import print_rows
from edgeproof.export.formats import list_formats
from edgeproof.toolkit.models import list_models, model_spec


def register(sub) -> None:
    p = sub.add_parser("models", help="list the registered models",
                       description="List the model registry: name, default input, description.")
    p.set_defaults(func=models)
    p = sub.add_parser("formats", help="list the export formats and their options",
                       description="List the export formats: suffix, runtime, options, calibration.")
    p.set_defaults(func=formats)
    p = sub.add_parser("runtimes", help="list the runtimes and their options",
                       description="List the runtimes: suffixes, devices, library version and "
                       "the options --runtime-option takes.")
    p.set_defaults(func=runtimes)


def models(args) -> int:
    rows = []
    for n in list_models():
        spec = model_spec(n)
        rows.append((n, "x".join(map(str, spec.default_input_shape)), spec.family,
                     spec.description))
    print_rows("models", ["name", "default input", "family", "description"], rows)
    return 0


def formats(args) -> int:
    rows = []
    for f in list_formats():
        opts = "; ".join(o.describe(k) for k, o in f.options.items()) or "-"
        rows.append((f.name, f.suffix, f.runtime, opts, "yes" if f.needs_calibration else "no",
                     f.description))
    print_rows("formats", ["format", "suffix", "runtime", "options", "calibration", "description"], rows)
    return 0


def runtimes(args) -> int:
    rows = []
    for cls in RUNTIMES.rows():
        opts = "; ".join(o.describe(k) for k, o in cls.OPTIONS.items()) or "-"
        rows.append((cls.name, cls.label, cls.version() or "not installed",
                     ", ".join(cls.suffixes) + (", folder" if cls.folders else "")
                     + ", ".join(f"{x} (with --runtime {cls.name})" for x in cls.explicit_suffixes),
                     ", ".join(cls.devices), opts))
    print_rows("runtimes", ["runtime", "library", "version", "runs", "devices", "options"], rows)
    return 0
