"""Stages 2 and 3: pipeline specs, Optuna tuning, grouped cross-validation, metrics and reports.

This package reads features from the store and never imports torch. Import the
pieces from their modules (``fdt.pipelines.specs``, ``.tuning``, ``.splits``,
``.metrics``, ``.evaluation``, ``.matrix``, ``.plots``, ``.cards``) so a script
pays only for what it uses.
"""
