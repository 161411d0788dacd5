"""Prompts from a hand-written COCO captions file and from a text file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fdt.gen.errors import GenError
from fdt.gen.prompts import Prompt, read_prompts

COCO = {
    "info": {"description": "a hand-written slice of captions_val2017.json"},
    "images": [{"id": 179765, "file_name": "000000179765.jpg"}, {"id": 190236, "file_name": "000000190236.jpg"}],
    "annotations": [
        {"image_id": 179765, "id": 38, "caption": "A black Honda motorcycle parked in front of a garage."},
        {"image_id": 190236, "id": 88, "caption": "An office cubicle with four different types of computers.\n"},
        {"image_id": 179765, "id": 182, "caption": "  A Honda   motorcycle parked in a grass driveway"},
    ],
}


def test_coco_captions(tmp_path: Path) -> None:
    path = tmp_path / "captions_val2017.json"
    path.write_text(json.dumps(COCO))
    assert read_prompts(path) == [
        Prompt("A black Honda motorcycle parked in front of a garage.", "coco:179765", photo=True),
        Prompt("An office cubicle with four different types of computers.", "coco:190236", photo=True),
        Prompt("A Honda motorcycle parked in a grass driveway", "coco:179765", photo=True),
    ]
    assert [p.group for p in read_prompts(path, max_captions=2)] == ["coco:179765", "coco:190236"]


def test_text_file_prompts_group_by_text(tmp_path: Path) -> None:
    path = tmp_path / "faces.txt"
    path.write_text("a portrait of a woman\n\n  a portrait of a man  \n")
    assert read_prompts(path) == [Prompt("a portrait of a woman", "a portrait of a woman"), Prompt("a portrait of a man", "a portrait of a man")]


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json", "not valid JSON"), ('{"images": []}', "no 'annotations' list"), ('{"annotations": [{"id": 1}]}', "annotation 0 lacks")],
)
def test_bad_coco_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "captions.json"
    path.write_text(content)
    with pytest.raises(GenError, match=message):
        read_prompts(path)
