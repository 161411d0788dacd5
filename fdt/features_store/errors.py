"""Errors of the feature store and extractors: each message is one line a user can act on."""

from fdt.errors import FdtError


class StoreError(FdtError):
    """The feature store cannot do what was asked; the message says why."""


class StoreFormatError(StoreError):
    """A store file is of an unknown encoding or version, or is damaged."""


class StoreLockedError(StoreError):
    """Another process is writing to the store."""


class MissingFeaturesError(StoreError):
    """The features asked for are not in the store; the message gives the `fdt extract` command to run."""


class UnknownSourceError(StoreError):
    """A source name that no image set in the store has."""


class UnknownExtractorError(FdtError, KeyError):
    """An extractor name that is not registered; the message lists the valid ones."""

    def __str__(self) -> str:
        return str(self.args[0])


class WeightsNotFoundError(FdtError, FileNotFoundError):
    """Published weights are absent and cannot be fetched; the message names the file and where to put it."""


class ExtractorError(FdtError, ValueError):
    """An extractor cannot be built as asked: an unknown or invalid parameter, a device that is absent, weights that do not fit."""


class ShardSpecError(StoreError, ValueError):
    """A ``--shard I/N`` that is not two integers with ``0 <= I < N``, or an ``N`` other jobs of the store do not use."""
