"""The tiny fixtures themselves: trained above chance, every spine format exported (slow)."""

import pytest

from edgeproof.export.formats import get_format
from edgeproof.manifest import find_manifest, sha256_file

pytestmark = pytest.mark.slow


def test_tiny_model_learns(tiny_reference, tiny_dataset):
    acc = (tiny_reference.argmax(1) == tiny_dataset.y_test).mean()
    assert acc > 0.5, acc


def test_tiny_exports_are_what_their_names_say(tiny_exports):
    for fmt, path in tiny_exports.items():
        manifest = find_manifest(path)
        assert manifest.format == fmt and path.suffix == get_format(fmt).suffix
        assert manifest.sha256 == sha256_file(path) and manifest.size_bytes > 1000
        assert manifest.producer == "edgeproof"
