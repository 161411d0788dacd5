"""`fdt store verify`: check every file of a store against the format spec."""

from __future__ import annotations

from dataclasses import dataclass, field
import numpy as np

from fdt.features_store.errors import StoreFormatError
from fdt.features_store.catalog import read_catalog_file
from fdt.features_store.fileformat import store_symlinks
from fdt.features_store.shards import Shard, ShardVanishedError, consistent_read, shard_checksum
from fdt.features_store.store import FeatureStore


@dataclass
class VerifyReport:
    """What verification found: ``errors`` make a store unusable; ``notes`` are harmless leftovers."""

    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    shards: int = 0
    rows: int = 0
    failures: int = 0
    catalog_rows: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors


def verify_store(store: FeatureStore) -> VerifyReport:
    """Open every shard and catalog file, recompute checksums, and look for duplicate rows.

    Temporary files and superseded shards left by a killed writer are reported
    as notes, not errors: readers ignore them and the next writer removes them.
    A shard that a concurrent compaction deletes mid-check starts the check over,
    so a healthy store being compacted is never called damaged.
    """
    return consistent_read(lambda: _verify(store))


def _verify(store: FeatureStore) -> VerifyReport:
    report = VerifyReport()
    try:
        store.check_format()
    except StoreFormatError as error:
        report.errors.append(str(error))
        return report
    if not store.exists():
        report.errors.append(f"{store.root} is not an fdt feature store (no fdt-store.json)")
        return report

    for link in store_symlinks(store.root):
        report.errors.append(f"{link}: a symbolic link inside the store (writers refuse the store until it is removed)")
    tmp = store.root / ".tmp"
    if tmp.is_symlink():
        return report
    leftovers = list(tmp.iterdir()) if tmp.is_dir() else []
    if leftovers:
        report.notes.append(f"{len(leftovers)} temporary file(s) from an interrupted write; the next writer removes them")

    for path in sorted((store.root / "catalog").glob("*.h5")):
        try:
            report.catalog_rows += len(read_catalog_file(path)["sha256"])
        except StoreFormatError as error:
            report.errors.append(str(error))

    by_key: dict[str, list[Shard]] = {}
    for path in store.shard_paths():
        try:
            shard = Shard.open(path)
        except ShardVanishedError:
            raise
        except StoreFormatError as error:
            report.errors.append(str(error))
            continue
        if shard.key.id != path.parent.name:
            report.errors.append(f"{path}: key id {shard.key.id} does not match its folder {path.parent.name}")
        by_key.setdefault(path.parent.name, []).append(shard)

    for key_id, shards in sorted(by_key.items()):
        superseded = {name for shard in shards for name in shard.supersedes}
        live = [s for s in shards if s.path.name not in superseded]
        if len(live) < len(shards):
            report.notes.append(f"{len(shards) - len(live)} superseded shard(s) of key {key_id} await removal by the next writer")
        hashes = []
        for shard in live:
            hashes.append(_check_shard(shard, report))
        report.shards += len(live)
        if hashes:
            joined = np.concatenate(hashes)
            duplicates = len(joined) - len(np.unique(joined))
            if duplicates:
                report.errors.append(f"key {key_id}: {duplicates} image(s) have more than one feature row")
    return report


def _check_shard(shard: Shard, report: VerifyReport) -> np.ndarray:
    """Record the shard's problems in ``report``; return its row hashes."""
    try:
        sha, features, failed_sha, failed_path, failed_reason = shard.read(check=False)
    except OSError as error:
        report.errors.append(f"{shard.path}: cannot read ({error})")
        return np.array([], dtype="S64")
    problems = []
    if features.shape != (len(sha), shard.num_features):
        problems.append(f"features shape {features.shape} != ({len(sha)}, {shard.num_features})")
    if not (len(failed_sha) == len(failed_path) == len(failed_reason)):
        problems.append("failed/* datasets differ in length")
    if shard_checksum(sha, features) != shard.attrs.get("checksum"):
        problems.append("checksum mismatch: the file was modified or damaged")
    if not np.isfinite(features).all():
        problems.append("features contain NaN or infinity")
    for problem in problems:
        report.errors.append(f"{shard.path}: {problem}")
    report.rows += len(sha)
    report.failures += len(failed_sha)
    return sha


