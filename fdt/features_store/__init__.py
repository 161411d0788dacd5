"""Stage 1: the extractor registry and the HDF5 feature store.

Import-cheap by design: nothing here imports torch until an extractor runs, so
readers of the store (``fdt.pipelines``) never pay for it.
"""

from fdt.features_store.errors import (
    MissingFeaturesError,
    StoreError,
    StoreFormatError,
    StoreLockedError,
    UnknownExtractorError,
    UnknownSourceError,
    WeightsNotFoundError,
)
from fdt.features_store.featureset import ExtractorKey, FeatureSet
from fdt.features_store.registry import create_extractor, list_extractors, register_extractor
from fdt.features_store.store import FeatureStore

__all__ = [
    "ExtractorKey",
    "FeatureSet",
    "FeatureStore",
    "MissingFeaturesError",
    "StoreError",
    "StoreFormatError",
    "StoreLockedError",
    "UnknownExtractorError",
    "UnknownSourceError",
    "WeightsNotFoundError",
    "create_extractor",
    "list_extractors",
    "register_extractor",
]
