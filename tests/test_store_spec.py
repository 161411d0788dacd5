"""Read a store with plain h5py by following docs/store-format.md alone.

fdt only writes the store (the fixture) and recomputes one spectrum to check a row
against the image it came from; every read of the store's files is plain h5py.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import h5py
import numpy as np
import pytest


@pytest.fixture
def store_root(tmp_path: Path, image_tree: Path) -> Path:
    from fdt.data import load_image_set
    from fdt.features_store.extraction import extract_records

    records = load_image_set(image_tree)
    root = tmp_path / "store"
    extract_records(records, "fft", {"size": 4}, "16", root, workers=0, progress=False, flush_rows=5)
    extract_records(records, "fft", {"size": 4}, "16", root, workers=0, progress=False)  # a no-op re-run
    return root


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def test_plain_h5py_reader_following_the_spec(store_root: Path, image_tree: Path):
    marker = json.loads((store_root / "fdt-store.json").read_text())
    assert (marker["encoding-type"], marker["encoding-version"]) == ("fdt.feature_store", "1")

    catalog = {}
    for path in sorted((store_root / "catalog").glob("*.h5")):
        with h5py.File(path, "r") as f:
            assert (f.attrs["encoding-type"], f.attrs["encoding-version"]) == ("fdt.catalog", "2")
            columns = [f["sha256"][()], f["source"].asstr()[()], f["label"][()], f["group"].asstr()[()], f["path"].asstr()[()]]
            digest = hashlib.sha256(columns[0].tobytes() + columns[2].astype("i1").tobytes())
            for strings in (columns[4], columns[1], columns[3]):
                digest.update(b"".join(s.encode() + b"\0" for s in strings))
            assert digest.hexdigest() == f.attrs["checksum"]
            for sha, source, label, group, image in zip(*columns):
                catalog[(sha.decode(), source)] = (int(label), group, image)

    (key_dir,) = (store_root / "features").iterdir()
    shards = {}
    for path in sorted(key_dir.glob("*.h5")):
        with h5py.File(path, "r") as f:
            assert (f.attrs["encoding-type"], f.attrs["encoding-version"]) == ("fdt.feature_shard", "1")
            key = json.loads(f.attrs["key"])
            key_id = hashlib.sha256(
                _canonical([key["extractor"], _canonical(key["params"]), key["weights"], key["resolution"]]).encode()
            ).hexdigest()[:16]
            assert key_id == f.attrs["key_id"] == key_dir.name
            sha, features = f["sha256"][()], f["features"][()]
            digest = hashlib.sha256(sha.tobytes() + features.astype("<f4").tobytes()).hexdigest()
            assert digest == f.attrs["checksum"]
            shards[path.name] = (json.loads(f.attrs["supersedes"]), sha, features, int(f.attrs["num_features"]))
    superseded = {name for s in shards.values() for name in s[0]}
    live = [s for name, s in sorted(shards.items()) if name not in superseded]
    sha = np.concatenate([s[1] for s in live])
    features = np.concatenate([s[2] for s in live])
    assert len(set(sha.tolist())) == len(sha) == 24
    assert features.shape == (24, live[0][3]) == (24, 16)

    # join with the catalog and check one row against the image it came from
    from fdt.data import load_rgb, apply_resolution
    from fdt.features_store.extractors.fft import SpectrumFeatures

    real_image = image_tree / "real" / "img0003.png"
    real_sha = hashlib.sha256(real_image.read_bytes()).hexdigest()
    assert catalog[(real_sha, "real")][0] == 0
    row = features[sha.tolist().index(real_sha.encode())]
    expected = SpectrumFeatures(4, False)(apply_resolution(load_rgb(real_image), "16"))
    np.testing.assert_array_equal(row, expected)
