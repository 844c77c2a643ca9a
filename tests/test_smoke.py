"""The tiny fixtures themselves: trained above chance, every spine format exported."""

from tests.conftest import TINY_FORMATS


def test_tiny_model_learns(tiny_reference, tiny_dataset):
    acc = (tiny_reference.argmax(1) == tiny_dataset.y_test).mean()
    assert acc > 0.5, acc


def test_tiny_exports_exist(tiny_exports):
    assert set(tiny_exports) == set(TINY_FORMATS)
    for path in tiny_exports.values():
        assert path.stat().st_size > 1000
        assert path.with_name(path.name + ".json").exists()
