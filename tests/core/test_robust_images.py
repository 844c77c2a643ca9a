"""Whatever image files users have, decoding converts them or says clearly why not."""

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from edgeproof.preprocess import decode_image
from edgeproof.manifest import Preprocessing
from tests.helpers import ROOT
from edgeproof.datasets import load_folder
from edgeproof.errors import DataError

RGB = Preprocessing(size=[16, 16], color="rgb")
GRAY = Preprocessing(size=[16, 16], color="grayscale")


def _save(tmp_path, name, img, **kw):
    p = tmp_path / name
    img.save(p, **kw)
    return p


@pytest.mark.parametrize("mode,color", [("L", (90,)), ("RGB", (10, 200, 30)), ("RGBA", (10, 200, 30, 255)),
                                        ("P", None), ("CMYK", (0, 255, 0, 0)), ("LA", (90, 255))])
def test_modes_convert_to_rgb_and_gray(tmp_path, mode, color):
    img = Image.new(mode, (40, 30), color) if color else Image.new("RGB", (40, 30), (5, 6, 7)).convert("P")
    p = _save(tmp_path, f"x_{mode}.{'jpg' if mode == 'CMYK' else 'png'}", img)
    rgb, gray = decode_image(p, RGB), decode_image(p, GRAY)
    assert rgb.shape == (16, 16, 3) and rgb.dtype == np.uint8
    assert gray.shape == (16, 16, 1)


def test_sixteen_bit_png_is_rescaled_not_clipped(tmp_path):
    arr = np.full((20, 20), 65535, np.uint16)
    arr[:10] = 32768
    p = tmp_path / "deep.png"
    Image.fromarray(arr).save(p)
    out = decode_image(p, Preprocessing(size=[20, 20], color="grayscale"))[..., 0]
    assert out[15, 5] == 255 and 126 <= out[5, 5] <= 129


def test_transparent_pixels_become_white(tmp_path):
    p = _save(tmp_path, "clear.png", Image.new("RGBA", (8, 8), (0, 0, 0, 0)))
    assert (decode_image(p, RGB) == 255).all()


@pytest.mark.parametrize("content,needle", [(b"", "cannot read"), (b"hello, not a jpeg", "cannot read")])
def test_empty_and_fake_files_are_data_errors(tmp_path, content, needle):
    p = tmp_path / "photo.jpg"
    p.write_bytes(content)
    with pytest.raises(DataError, match="(?i)" + needle):
        decode_image(p, RGB)


def test_truncated_jpeg_is_a_data_error(tmp_path):
    p = _save(tmp_path, "full.jpg", Image.effect_noise((64, 64), 50).convert("RGB"))
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    with pytest.raises(DataError, match=str(cut.name)):
        decode_image(cut, RGB)


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="not found"):
        decode_image(tmp_path / "nope.png", RGB)


def test_unicode_and_spaces_in_paths(tmp_path):
    d = tmp_path / "fleurs d'été" / "été 2024"
    d.mkdir(parents=True)
    p = _save(d, "pâquerette 1.png", Image.new("RGB", (10, 10), (1, 2, 3)))
    assert decode_image(p, RGB).shape == (16, 16, 3)


def test_huge_jpeg_decodes_in_bounded_memory(tmp_path):
    """12000x12000 (144 Mpx): decoded reduced (JPEG draft), not at full size."""
    p = tmp_path / "huge.jpg"
    Image.new("L", (12000, 12000), 128).save(p, quality=50)
    # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across execve, so a child of a big
    # pytest process would report the parent's peak.
    code = ("import sys; from edgeproof.preprocess import decode_image; "
            "from edgeproof.manifest import Preprocessing; "
            "a = decode_image(sys.argv[1], Preprocessing(size=[64, 64], color='rgb')); "
            "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]; "
            "print(a.shape, hwm.split()[1])")
    out = subprocess.run([sys.executable, "-c", code, str(p)], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    shape, rss_kb = out.stdout.rsplit(" ", 1)
    assert shape == "(64, 64, 3)"
    assert int(rss_kb) < 400_000, f"peak RSS {int(rss_kb) // 1024} MB"  # full decode is 432 MB


def _folder(tmp_path, per_class: dict):
    root = tmp_path / "ds"
    for cls, n in per_class.items():
        (root / cls).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (12, 12), (i * 20 % 256, ord(cls[0]), 7)).save(root / cls / f"{i}.png")
    return root


def test_folder_skips_bad_files_and_names_them(tmp_path, caplog):
    root = _folder(tmp_path, {"a": 4, "b": 4})
    (root / "a" / "broken.jpg").write_bytes(b"not an image")
    (root / "b" / "empty.png").write_bytes(b"")
    (root / "b" / "notes.txt").write_text("ignored: not an image suffix")
    ds = load_folder(root, image_size=8)
    assert sum(ds.split_sizes.values()) == 8
    assert {p.rsplit("/", 1)[1] for p in ds.provenance["unreadable_skipped"]} == {"broken.jpg", "empty.png"}
    assert "broken.jpg" in caplog.text


def test_folder_dedupes_by_content(tmp_path):
    root = _folder(tmp_path, {"a": 4, "b": 4})
    (root / "b" / "copy.png").write_bytes((root / "a" / "0.png").read_bytes())
    ds = load_folder(root, image_size=8)
    assert ds.provenance["duplicates_removed"] == 1 and sum(ds.split_sizes.values()) == 8


def test_symlink_loops_do_not_hang(tmp_path):
    root = _folder(tmp_path, {"a": 4, "b": 4})
    (root / "a" / "loop").symlink_to(root / "a", target_is_directory=True)
    (root / "b" / "x.png").symlink_to(root / "b" / "y.png")
    (root / "b" / "y.png").symlink_to(root / "b" / "x.png")
    ds = load_folder(root, image_size=8)
    assert sum(ds.split_sizes.values()) == 8


@pytest.mark.parametrize("layout,needle", [({}, "no class subfolders"), ({"a": 0, "b": 0}, "no images"),
                                           ({"a": 5, "b": 2}, "at least 3")])
def test_unusable_folders_say_why(tmp_path, layout, needle):
    root = _folder(tmp_path, layout) if layout else tmp_path / "empty"
    root.mkdir(exist_ok=True)
    if not layout:
        (root / "stray.png").write_bytes(b"")
    with pytest.raises(DataError, match=needle):
        load_folder(root, image_size=8)
