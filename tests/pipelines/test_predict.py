"""``fdt predict`` round trip on real image files through the weight-free ``fft`` extractor; tampering refused."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from fdt.cli import cli
from fdt.pipelines.cards import load_model
from fdt.pipelines.errors import ModelIntegrityError


def smooth(rng):
    """A real-looking image: low-frequency content only."""
    small = rng.integers(0, 255, (4, 4, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((32, 32), Image.Resampling.BICUBIC)


def checkered(rng):
    """A fake-looking image: the same, plus a period-2 grid artefact (the GAN upsampling signature)."""
    pixels = np.asarray(smooth(rng), dtype=np.int16)
    pixels[::2, ::2] += 60
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A store with 16 real and 16 fake 32-px images and a logreg model tuned on their FFT features."""
    from fdt.data import load_image_set
    from fdt.features_store.extraction import extract_records

    root = tmp_path_factory.mktemp("predict")
    rng = np.random.default_rng(0)
    for source, make in (("real", smooth), ("gan", checkered)):
        (root / "images" / source).mkdir(parents=True)
        for i in range(16):
            make(rng).save(root / "images" / source / f"{i}.png")
    extract_records(load_image_set(root / "images"), "fft", {"size": 8}, "native", root / "features_store", workers=0, progress=False)
    result = CliRunner().invoke(cli, ["tune", "--extractor", "fft", "--real", "real", "--fake", "gan", "--pipeline", "logreg",
                                      "--trials", "2", "--cv", "2", "--split", "50/0/50", "--no-progress",
                                      "--store", str(root / "features_store"), "--models", str(root / "models"), "--name", "m"])
    assert result.exit_code == 0, result.output
    new = root / "new"
    new.mkdir()
    smooth(np.random.default_rng(1)).save(new / "a_real.png")
    checkered(np.random.default_rng(2)).save(new / "b_fake.png")
    (new / "c_broken.png").write_bytes(b"not an image")
    return root


def test_predict_round_trip(trained):
    result = CliRunner().invoke(cli, ["predict", str(trained / "models" / "m.skops"), str(trained / "new"), "--json",
                                      "--store", str(trained / "features_store")])
    assert result.exit_code == 0, result.output
    rows = {json.loads(line)["path"].rsplit("/", 1)[1]: json.loads(line) for line in result.stdout.splitlines()}
    assert rows["a_real.png"]["label"] == "real" and rows["b_fake.png"]["label"] == "fake"
    assert rows["b_fake.png"]["fake_probability"] > rows["a_real.png"]["fake_probability"]
    assert rows["c_broken.png"]["label"] is None and rows["c_broken.png"]["error"]


def test_predict_table_output(trained):
    result = CliRunner().invoke(cli, ["predict", str(trained / "models" / "m.skops"), str(trained / "new" / "b_fake.png"),
                                      "--store", str(trained / "features_store")])
    assert result.exit_code == 0, result.output
    path, probability, label = result.stdout.strip().split("\t")
    assert path.endswith("b_fake.png") and 0.5 <= float(probability) <= 1 and label == "fake"


def test_tampered_model_file_is_refused(trained, tmp_path):
    model, card = tmp_path / "m.skops", tmp_path / "m.json"
    model.write_bytes((trained / "models" / "m.skops").read_bytes() + b"\0")
    card.write_text((trained / "models" / "m.json").read_text())
    with pytest.raises(ModelIntegrityError, match="does not match its card"):
        load_model(model)
    result = CliRunner().invoke(cli, ["predict", str(model), str(trained / "new"), "--store", str(trained / "features_store")])
    assert result.exit_code == 2 and "does not match its card" in result.output and "refusing" in result.output


def test_model_without_card_is_refused(trained, tmp_path):
    (tmp_path / "m.skops").write_bytes((trained / "models" / "m.skops").read_bytes())
    result = CliRunner().invoke(cli, ["predict", str(tmp_path / "m.skops"), str(trained / "new")])
    assert result.exit_code == 2 and "model card" in result.output and "not found" in result.output


def test_predict_never_trusts_a_remembered_hash(trained, monkeypatch):
    """Which features score an image follows its bytes now (issue 10 #4): the hash cache is not consulted."""
    from fdt.features_store import hashcache

    def stale(*args, **kwargs):
        raise AssertionError("predict looked up a remembered hash")

    monkeypatch.setattr(hashcache, "lookup", stale)
    result = CliRunner().invoke(cli, ["predict", str(trained / "models" / "m.skops"), str(trained / "new" / "b_fake.png"),
                                      "--store", str(trained / "features_store")])
    assert result.exit_code == 0, result.output
