"""`edgeproof evaluate` as a library call: a saved model's evaluation, and its page.

The toolkit writes the evaluation files (``toolkit.evaluate``); this use case adds
``report.html`` beside them, the same page ``run`` and ``bench`` write.

Example:
    >>> report = evaluate_to_folder("runs/train/model.keras", "digits")  # doctest: +SKIP
    >>> report["accuracy"]  # doctest: +SKIP
    0.97
"""

from __future__ import annotations

from pathlib import Path

from edgeproof.app.report_page import write_report_page
from edgeproof.machine import cpu_info
from edgeproof.manifest import library_versions
from edgeproof.toolkit.evaluate import evaluate_file, evaluation_summary


def evaluate_to_folder(model_path: str | Path, dataset: str, out_dir: str | Path | None = None,
                       **kw) -> dict:
    """``toolkit.evaluate.evaluate_file`` (same arguments), then ``report.html`` beside the
    files it wrote; returns its report (with ``model`` and ``dataset`` summaries)."""
    report = evaluate_file(model_path, dataset, out_dir, **kw)
    out = Path(report["files"]["classification_report"]).parent
    versions = library_versions()
    env = {**cpu_info(), "gpu": None, "python": versions.get("python"),
           "tensorflow": versions.get("tensorflow")}
    write_report_page({"title": f"edgeproof evaluation — {report['model']['name']} on "
                                f"{report['dataset']}",
                       "dataset": report["dataset_summary"], "model": report["model"],
                       "evaluation": evaluation_summary(report, out), "env": env}, out)
    return report
