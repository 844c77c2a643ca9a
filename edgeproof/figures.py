"""One matplotlib set-up for every figure edgeproof writes: headless, one style, saved
atomically.

Figures are drawn with the Agg backend (no display needed, on a server or in CI), in one
style (``STYLE``), and saved through ``save`` as PNG bytes written with the atomic writer,
so a crash never leaves half an image beside a report.

Example:
    >>> plt = pyplot()
    >>> fig, ax = plt.subplots()
    >>> _ = ax.plot([0, 1], [1, 0])
    >>> save(fig, "/tmp/edgeproof-doctest.png").name
    'edgeproof-doctest.png'
"""

from __future__ import annotations

import io
from pathlib import Path

from edgeproof.atomic import atomic_write_bytes

STYLE = {"figure.dpi": 100, "savefig.dpi": 110, "font.size": 9, "axes.titlesize": 10,
         "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False,
         "axes.spines.right": False, "legend.fontsize": 8}


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend with the house style applied."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(STYLE)
    return plt


def png_bytes(fig, dpi: int | None = None) -> bytes:
    """``fig`` as PNG bytes (the figure is closed)."""
    plt = pyplot()
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()


def save(fig, path: str | Path, dpi: int | None = None) -> Path:
    """Write ``fig`` to ``path`` as PNG, atomically; returns the path."""
    return atomic_write_bytes(Path(path), png_bytes(fig, dpi))
