"""Image sets, the one way images decode to RGB, and resolutions."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fdt.data import (
    DataError,
    ImageDecodeError,
    apply_resolution,
    from_folder,
    from_manifest,
    load_image_set,
    load_rgb,
    parse_resolution,
    write_manifest,
)
from tests.conftest import write_images


def _save(image: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def test_grayscale_is_replicated_to_three_channels():
    rgb = load_rgb(_save(Image.new("L", (4, 4), 77)))
    assert rgb.mode == "RGB" and np.asarray(rgb)[0, 0].tolist() == [77, 77, 77]


def test_rgba_is_composited_over_white():
    image = Image.new("RGBA", (2, 2), (200, 0, 0, 0))  # fully transparent red
    image.putpixel((0, 0), (200, 0, 0, 255))
    pixels = np.asarray(load_rgb(_save(image)))
    assert pixels[0, 0].tolist() == [200, 0, 0]
    assert pixels[1, 1].tolist() == [255, 255, 255]


def test_palette_with_transparency_is_composited():
    image = Image.new("P", (2, 1))
    image.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    image.putpixel((1, 0), 1)
    pixels = np.asarray(load_rgb(_save(image, transparency=0)))
    assert pixels[0, 0].tolist() == [255, 255, 255] and pixels[0, 1].tolist() == [10, 20, 30]


def test_cmyk_converts():
    image = Image.new("CMYK", (3, 3), (0, 255, 255, 0))  # red in CMYK
    assert np.asarray(load_rgb(_save(image, "JPEG", quality=100)))[1, 1, 0] > 200


@pytest.mark.parametrize("value, expected", [(0, 0), (65535, 255), (32896, 128)])
def test_16_bit_scales_by_its_range(value, expected):
    image = Image.fromarray(np.full((2, 2), value, dtype=np.uint16))
    assert np.asarray(load_rgb(_save(image)))[0, 0].tolist() == [expected] * 3


def test_float_image_clips_to_unit_range():
    image = Image.fromarray(np.array([[-1.0, 0.5, 2.0]], dtype=np.float32), mode="F")
    assert np.asarray(load_rgb(_save(image, "TIFF")))[0, :, 0].tolist() == [0, 128, 255]


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (4, 2), (0, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    assert load_rgb(_save(image, "JPEG", exif=exif.tobytes())).size == (2, 4)


def test_huge_header_is_refused_before_decoding():
    data = _save(Image.new("L", (10, 10)))
    with pytest.raises(ImageDecodeError, match="above the limit"):
        load_rgb(data, max_pixels=99)


@pytest.mark.parametrize("data, reason", [(b"", "known format"), (b"not an image", "known format")])
def test_unreadable_bytes_raise_one_line_reason(data, reason):
    with pytest.raises(ImageDecodeError, match=reason) as caught:
        load_rgb(data)
    assert "\n" not in str(caught.value)


def test_truncated_jpeg_raises():
    data = _save(Image.effect_noise((64, 64), 50).convert("RGB"), "JPEG")
    with pytest.raises(ImageDecodeError, match="truncated|cannot decode"):
        load_rgb(data[: len(data) // 2])


@pytest.mark.parametrize("text, expected", [("native", "native"), ("64", "64"), (" 256 ", "256"), (32, "32")])
def test_parse_resolution(text, expected):
    assert parse_resolution(text) == expected


@pytest.mark.parametrize("text", ["0", "-3", "big", "6.5"])
def test_parse_resolution_rejects(text):
    with pytest.raises(DataError, match="resolution"):
        parse_resolution(text)


def test_apply_resolution_resizes_and_keeps_native():
    image = Image.new("RGB", (100, 50))
    assert apply_resolution(image, "64").size == (64, 64)
    assert apply_resolution(image, "native") is image


def test_folder_with_sources(tmp_path: Path):
    write_images(tmp_path / "coco", 3, seed=1)
    write_images(tmp_path / "dcgan", 2, seed=2)
    (tmp_path / "coco" / "notes.txt").write_text("not an image")
    records = from_folder(tmp_path, real_sources=["coco"])
    assert [(r.source, r.label) for r in records] == [("coco", 0)] * 3 + [("dcgan", 1)] * 2


def test_flat_folder_is_one_source_with_given_label(tmp_path: Path):
    write_images(tmp_path / "photos", 2)
    records = from_folder(tmp_path / "photos", label=1)
    assert {(r.source, r.label) for r in records} == {("photos", 1)}


def test_empty_folder_is_an_error(tmp_path: Path):
    with pytest.raises(DataError, match="no images"):
        from_folder(tmp_path)


def test_manifest_relative_paths_labels_groups_and_extras(tmp_path: Path):
    write_images(tmp_path / "imgs", 2)
    write_manifest(
        tmp_path / "m.csv",
        [
            {"path": "imgs/img0000.png", "source": "sd", "label": "fake", "group": "cap1", "seed": 7},
            {"path": "imgs/img0001.png", "source": "coco", "label": "0", "group": "", "seed": 8},
        ],
        ["path", "source", "label", "group", "seed"],
    )
    records = load_image_set(tmp_path / "m.csv")
    assert records[0].path == str(tmp_path / "imgs" / "img0000.png")
    assert [(r.source, r.label, r.group) for r in records] == [("sd", 1, "cap1"), ("coco", 0, "")]
    assert records[0].extra == {"seed": "7"}


def test_manifest_bad_label_names_the_line(tmp_path: Path):
    (tmp_path / "m.csv").write_text("path,source,label,group\na.png,x,maybe,\n")
    with pytest.raises(DataError, match=r"m.csv:2: label"):
        from_manifest(tmp_path / "m.csv")


def test_manifest_missing_columns(tmp_path: Path):
    (tmp_path / "m.csv").write_text("file,kind\na.png,x\n")
    with pytest.raises(DataError, match="lacks column"):
        from_manifest(tmp_path / "m.csv")


def test_a_coco_photo_and_the_fakes_of_its_captions_share_a_group(tmp_path):
    import json

    from fdt.gen.prompts import read_prompts

    (tmp_path / "coco").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "coco" / "000000179765.jpg")
    Image.new("RGB", (8, 8)).save(tmp_path / "coco" / "holiday.jpg")
    captions = tmp_path / "captions_val2017.json"
    captions.write_text(json.dumps({"annotations": [{"image_id": 179765, "id": 1, "caption": "a motorcycle"}]}))
    groups = {Path(r.path).name: r.group for r in from_folder(tmp_path, real_sources=["coco"])}
    assert groups == {"000000179765.jpg": "coco:179765", "holiday.jpg": ""}
    assert read_prompts(captions)[0].group == "coco:179765"
