"""Torch networks that fdt builds or trains (backbones and weight resolution, the autoencoder).

This package is imported by cheap commands, so it imports nothing itself: each
sub-module (``fdt.models.autoencoder``, ...) imports torch only when it is used.
"""
