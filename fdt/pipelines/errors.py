"""Errors a user can fix in stages 2 and 3; each message is one actionable line.

They subclass :class:`ValueError` so scikit-learn code paths that expect input
errors still see them; the CLI maps :class:`PipelineError` to exit code 2.
"""

from fdt.errors import FdtError


class PipelineError(FdtError, ValueError):
    """Tuning, evaluation or prediction cannot proceed with what the user gave."""


class UnknownPipelineError(PipelineError):
    """A pipeline spec name that is neither built in nor in the user's spec file."""


class UnknownMetricError(PipelineError):
    """A metric name that :func:`fdt.pipelines.metrics.compute_metrics` does not compute."""


class SplitError(PipelineError):
    """The data cannot be split as asked: one class only, or fewer groups than folds."""


class ModelIntegrityError(PipelineError):
    """A model file does not match the sha256 recorded in its card."""
