"""Dataset layout readers, each on a tiny tree shaped like the dataset's download."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fdt.data import load_image_set
from fdt.layouts import LayoutError, convert_fer2013, detect_layout, read_layout, split_note


def touch(path: Path, size: int = 8, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed + len(str(path)))
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)
    return path


def summary(records):
    return Counter((r.source, r.label, r.extra.get("split", "")) for r in records)


def test_cnndetection(tmp_path):
    root = tmp_path / "ForenSynths"
    for klass in ("airplane", "cat"):
        touch(root / "progan_train" / klass / "0_real" / "a.png")
        touch(root / "progan_train" / klass / "1_fake" / "a.png")
        touch(root / "CNN_synth_testset" / "progan" / klass / "0_real" / "b.png")
        touch(root / "CNN_synth_testset" / "progan" / klass / "1_fake" / "b.png")
    touch(root / "CNN_synth_testset" / "biggan" / "0_real" / "c.png")
    touch(root / "CNN_synth_testset" / "biggan" / "1_fake" / "c.png")
    assert detect_layout(root) == "cnndetection"
    records = read_layout(root)
    assert summary(records) == Counter({
        ("progan-real", 0, "train"): 2, ("progan", 1, "train"): 2,
        ("progan-real", 0, "test"): 2, ("progan", 1, "test"): 2,
        ("biggan-real", 0, "test"): 1, ("biggan", 1, "test"): 1,
    })
    assert {r.extra.get("class", "") for r in records if r.source == "progan"} == {"airplane", "cat"}
    assert all(r.group == "" for r in records)


def test_universal_fake_detect_diffusion_folders(tmp_path):
    root = tmp_path / "diffusion_datasets"
    touch(root / "laion" / "0_real" / "a.png")
    touch(root / "imagenet" / "0_real" / "a.png")
    for name in ("guided", "ldm_200", "dalle"):
        touch(root / name / "1_fake" / "a.png")
    assert detect_layout(root) == "ufd"
    assert summary(read_layout(root)) == Counter({
        ("laion", 0, ""): 1, ("imagenet", 0, ""): 1, ("guided", 1, ""): 1, ("ldm_200", 1, ""): 1, ("dalle", 1, ""): 1,
    })


def test_genimage(tmp_path):
    root = tmp_path / "GenImage"
    for generator in ("stable_diffusion_v_1_4", "BigGAN"):
        for split in ("train", "val"):
            touch(root / generator / "imagenet_ai" / split / "ai" / "001_sdv4_00001.png")
            touch(root / generator / "imagenet_ai" / split / "nature" / "n01440764_1.JPEG")
    assert detect_layout(root) == "genimage"
    records = read_layout(root)
    assert summary(records) == Counter({
        (g, label, split): 1
        for g0 in ("stable_diffusion_v_1_4", "BigGAN")
        for split in ("train", "val")
        for g, label in ((g0, 1), (f"{g0}-nature", 0))
    })
    assert {r.extra["class"] for r in records} == {"001", "n01440764"}
    assert "train 4, val 4" in split_note(records)


def test_deepfakeface_groups_fakes_with_their_wiki_photo(tmp_path):
    root = tmp_path / "DeepFakeFace"
    for name in ("wiki", "inpainting", "text2img", "insight"):
        touch(root / name / "00" / "10049200_1891-09-16_1958.jpg")
        touch(root / name / "01" / "2222_1970.jpg")
    assert detect_layout(root) == "deepfakeface"
    records = read_layout(root)
    assert Counter((r.source, r.label) for r in records) == Counter({("wiki", 0): 2, ("inpainting", 1): 2, ("text2img", 1): 2, ("insight", 1): 2})
    groups = Counter(r.group for r in records)
    assert groups == Counter({"dff:00/10049200_1891-09-16_1958": 4, "dff:01/2222_1970": 4})


@pytest.mark.parametrize("with_csv", [True, False])
def test_faces140k(tmp_path, with_csv):
    root = tmp_path / "140k"
    base = root / "real_vs_fake" / "real-vs-fake"
    rows = {}
    for split in ("train", "valid", "test"):
        for kind in ("real", "fake"):
            touch(base / split / kind / f"{kind}1.jpg")
            rows.setdefault(split, []).append({"": "0", "original_path": "x", "id": "1", "label": "1" if kind == "real" else "0", "label_str": kind, "path": f"{split}/{kind}/{kind}1.jpg"})
    if with_csv:
        for split, table in rows.items():
            with open(root / f"{split}.csv", "w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=list(table[0]))
                writer.writeheader()
                writer.writerows(table)
    assert detect_layout(root) == "faces140k"
    records = read_layout(root)
    assert summary(records) == Counter({(s, l, split): 1 for split in ("train", "val", "test") for s, l in (("ffhq", 0), ("stylegan", 1))})
    assert all(Path(r.path).is_file() for r in records)


def test_coco_groups_are_image_ids_and_captions_kept(tmp_path):
    root = tmp_path / "coco"
    touch(root / "val2017" / "000000000139.jpg")
    touch(root / "val2017" / "000000000285.jpg")
    touch(root / "train2017" / "000000000009.jpg")
    touch(root / "val2017" / "not_listed.jpg")
    (root / "annotations").mkdir()
    for split, images in (("val2017", [139, 285]), ("train2017", [9])):
        data = {
            "images": [{"id": i, "file_name": f"{i:012d}.jpg"} for i in images],
            "annotations": [{"image_id": i, "id": k, "caption": f"caption {i} {k}"} for i in images for k in range(2)],
        }
        (root / "annotations" / f"captions_{split}.json").write_text(json.dumps(data))
    assert detect_layout(root) == "coco"
    records = read_layout(root)
    assert sorted((r.group, r.extra["split"], r.extra["caption"]) for r in records) == [
        ("coco:139", "val", "caption 139 0"), ("coco:285", "val", "caption 285 0"), ("coco:9", "train", "caption 9 0")
    ]
    assert {(r.source, r.label) for r in records} == {("coco", 0)}


def test_fer2013_csv_converts_to_the_image_folder_layout(tmp_path):
    table = tmp_path / "fer2013.csv"
    rng = np.random.default_rng(0)
    with open(table, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["emotion", "pixels", "Usage"])
        for emotion, usage in ((3, "Training"), (0, "PublicTest"), (6, "PrivateTest"), (3, "Training")):
            writer.writerow([emotion, " ".join(map(str, rng.integers(0, 256, 48 * 48))), usage])
    assert detect_layout(table) == "fer2013"
    with pytest.raises(LayoutError, match="convert it once"):
        load_image_set(table, layout="auto")
    manifest = convert_fer2013(table, tmp_path / "fer")
    assert detect_layout(tmp_path / "fer") == "fer2013"
    records = read_layout(tmp_path / "fer")
    assert Counter((r.source, r.label, r.extra["split"], r.extra["emotion"]) for r in records) == Counter({
        ("fer2013", 0, "train", "happy"): 2, ("fer2013", 0, "val", "angry"): 1, ("fer2013", 0, "test", "neutral"): 1
    })
    assert Image.open(records[0].path).size == (48, 48)
    assert len(load_image_set(manifest)) == 4
    with pytest.raises(LayoutError, match="not empty"):
        convert_fer2013(table, tmp_path / "fer")
    from click.testing import CliRunner

    from fdt.cli import cli

    assert CliRunner().invoke(cli, ["layouts", "fer2013", str(table), "--out", str(tmp_path / "fer2")]).exit_code == 0
    assert CliRunner().invoke(cli, ["layouts", "ls", str(tmp_path / "fer2")]).output.strip() == "fer2013"
    refused = CliRunner().invoke(cli, ["layouts", "fer2013", str(table), "--out", str(tmp_path / "fer2")])
    assert refused.exit_code == 2 and "not empty" in refused.output


def test_deepfakeart_inpainting_records(tmp_path):
    root = tmp_path / "archive"
    for record in ("0", "1"):
        folder = root / "similar" / "inpainting" / record
        touch(folder / "source.png")
        touch(folder / "inpainting.png")
        touch(folder / "mask.png")
        touch(folder / "group.png")
    assert detect_layout(root) == "deepfakeart"
    records = read_layout(root)
    assert sorted((r.source, r.label, r.group) for r in records) == [
        ("deepfakeart-inpainting", 1, "deepfakeart:0"), ("deepfakeart-inpainting", 1, "deepfakeart:1"),
        ("deepfakeart-source", 0, "deepfakeart:0"), ("deepfakeart-source", 0, "deepfakeart:1"),
    ]
    assert all(r.extra["mask_path"].endswith("mask.png") for r in records if r.label == 1)
    assert not any("group" in Path(r.path).name for r in records)


def test_plain_folders_are_not_mistaken_for_a_layout(image_tree):
    assert detect_layout(image_tree) is None
    assert {r.source for r in load_image_set(image_tree, layout="auto")} == {"real", "fake"}


def test_a_forced_layout_that_does_not_fit_is_one_clear_error(image_tree):
    with pytest.raises(LayoutError, match="no images in the genimage layout"):
        load_image_set(image_tree, layout="genimage")
    with pytest.raises(LayoutError, match="unknown layout 'imagenet'"):
        load_image_set(image_tree, layout="imagenet")


def test_fdt_extract_reads_a_layout_with_no_manifest(tmp_path):
    from click.testing import CliRunner

    from fdt.cli import cli
    from fdt.features_store.store import FeatureStore

    root = tmp_path / "GenImage"
    for index in range(2):
        touch(root / "sdv4" / "train" / "ai" / f"{index}_sdv4.png", size=16, seed=index)
        touch(root / "sdv4" / "val" / "nature" / f"n0{index}_1.JPEG", size=16, seed=10 + index)
    result = CliRunner().invoke(cli, ["extract", str(root), "-e", "fft", "-p", "size=8", "--workers", "0", "-q", "--store", str(tmp_path / "store")])
    assert result.exit_code == 0, result.output
    assert "2 new rows" not in result.output and "4 new rows" in result.output
    assert "dataset splits kept" in result.output
    listed = CliRunner().invoke(cli, ["layouts", "manifest", str(root), "--out", str(tmp_path / "m.csv")])
    assert listed.exit_code == 0, listed.output
    rows = load_image_set(tmp_path / "m.csv")
    assert sorted((r.source, r.extra["split"]) for r in rows) == [("sdv4", "train"), ("sdv4", "train"), ("sdv4-nature", "val"), ("sdv4-nature", "val")]
    assert FeatureStore(tmp_path / "store").sources() == {"sdv4": 1, "sdv4-nature": 0}
    bad = CliRunner().invoke(cli, ["extract", str(root), "-e", "fft", "--layout", "coco", "--store", str(tmp_path / "store2")])
    assert bad.exit_code == 2 and "annotations/captions" in bad.output
    assert not (tmp_path / "store2").exists()
