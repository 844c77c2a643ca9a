"""report.html in a real browser (Debian's headless Chromium, driven by Playwright): what a
person sees, offline, at desktop and phone width; user data shows as text, never markup.
Every page here comes from a real run: slow."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import ROOT, run_cli

pytestmark = pytest.mark.slow

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SCREENSHOT = ROOT / "docs" / "report-screenshot.png"


@pytest.fixture(scope="module")
def browser():
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("no Chromium: `apt-get install -y chromium` (.ci/run does it where it can)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _open(browser, html: Path, width: int = 1200, height: int = 1400):
    """The page at ``html`` plus what it did: requests other than the file, console errors."""
    page = browser.new_page(viewport={"width": width, "height": height})
    seen = {"requests": [], "errors": [], "dialogs": []}
    page.on("request", lambda r: seen["requests"].append(r.url)
            if not r.url.startswith(("file://", "data:")) else None)
    page.on("console", lambda m: seen["errors"].append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
    page.goto(html.as_uri())
    page.wait_for_load_state("load")
    return page, seen


def test_default_run_page_opens_offline_with_every_image_and_format(browser, default_run, tmp_path):
    out, report, _ = default_run
    page, seen = _open(browser, out / "report.html")
    table = page.inner_text("#results")
    for row in report["results"]:
        assert row["format"] in table
    loaded = page.evaluate("Array.from(document.images).map(i => i.naturalWidth)")
    assert len(loaded) >= 8 and all(w > 0 for w in loaded), loaded  # plots, eval, Grad-CAM
    assert seen["requests"] == [] and seen["errors"] == [], seen
    rec = report["recommendation"]
    if rec:
        assert rec["format"] in page.inner_text("#recommendation")
    else:  # the default gate could not prove any export on this run's test images: said why
        note = report["recommendation_note"]
        assert note.startswith("No export passes the gate") and "closest:" in note, note
        assert note in page.inner_text("body")
    # Sorting by p50 puts the fastest row first (the column found from the one table spec).
    from edgeproof.bench.table import COLUMNS, RESULTS, cell, view

    nth = [c.key for c in view(RESULTS, report["results"])].index("p50") + 1
    header = page.locator("#results th").nth(nth - 1)
    assert header.inner_text().strip().startswith(COLUMNS["p50"].label)
    header.click()
    first = page.inner_text(f"#results tbody tr:first-child td:nth-child({nth})")
    fastest = min((r for r in report["results"] if r["latency_ms"]),
                  key=lambda r: r["latency_ms"]["p50"])
    assert first.strip() == cell(fastest, COLUMNS["p50"])
    shot = tmp_path / "report.png"
    page.set_viewport_size({"width": 1000, "height": 900})
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
    if os.environ.get("EDGEPROOF_UPDATE_SCREENSHOT"):  # README's picture comes from here
        from PIL import Image

        # 256 colours: a page of flat colours loses nothing visible, and the PNG that
        # goes into the repository shrinks to a fraction.
        Image.open(shot).convert("RGB").quantize(256).save(SCREENSHOT, optimize=True)
    page.close()


def test_page_fits_a_phone_width(browser, default_run):
    out, _, _ = default_run
    page, seen = _open(browser, out / "report.html", width=390, height=844)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, overflow  # wide tables scroll inside their own box
    assert seen["errors"] == []
    page.close()


def test_markup_in_a_class_name_shows_as_text(browser, tmp_path):
    hostile = "<img src=x onerror=alert(1)>"
    root = tmp_path / "data"
    rng = np.random.default_rng(0)
    for cls, bright in ((hostile, 200), ("plain", 40)):
        (root / cls).mkdir(parents=True)
        for i in range(8):
            pixels = np.clip(rng.normal(bright, 20, (16, 16, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / cls / f"{i}.png")
    out = tmp_path / "out"
    r = run_cli("run", "--dataset", root, "--image-size", "16", "--epochs", "2",
                "--formats", "keras,tflite-fp32", "--calib-size", "4", "--out", out, "--quiet")
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads((out / "report.json").read_text())["dataset"]["class_names"][0] == hostile
    page, seen = _open(browser, out / "report.html")
    assert hostile in page.inner_text("body")  # shown as text ...
    assert page.evaluate("document.querySelectorAll('img[src=\"x\"]').length") == 0  # ... not run
    assert seen["dialogs"] == [] and seen["requests"] == [], seen
    page.close()
