"""Per-image reconstruction-error features, shared by ``autoencoder output=error`` and ``vae``.

Reconstruction-error detectors (AEROBLADE, Ricker et al. 2024) rest on one
observation: an autoencoder reconstructs images made through its own latent
space better than any other image. The score is a distance between an image and
its reconstruction. A single mean hides where the error sits, so fdt keeps a few
statistics of the per-pixel distance map and how the residual's energy splits
over spatial frequencies (a generator's decoder leaves its traces at the high end).
"""

from __future__ import annotations

import torch

ERROR_FEATURES = ("mean", "std", "p50", "p90", "p99", "max", "energy_low", "energy_mid", "energy_high")
_QUANTILES = (0.5, 0.9, 0.99)
_BAND_EDGES = (1 / 3, 2 / 3)  # of the normalised radius (0 = DC, 1 = the spectrum's corner)
_LUMA = (0.299, 0.587, 0.114)


def l2_map(images: torch.Tensor, reconstructions: torch.Tensor) -> torch.Tensor:
    """Squared difference averaged over channels: ``(n, c, h, w)`` pairs -> ``(n, h, w)``."""
    return (images.float() - reconstructions.float()).pow(2).mean(dim=1)


def error_features(images: torch.Tensor, reconstructions: torch.Tensor, distance: torch.Tensor) -> torch.Tensor:
    """``(n, len(ERROR_FEATURES))`` float32: statistics of ``distance`` ``(n, h, w)`` and the residual's band energies.

    The band energies are the fractions of the grayscale residual's power
    spectrum (DC excluded) in three rings of equal normalised radius, so they
    sum to one and do not depend on the image's size.
    """
    flat = distance.float().flatten(1)
    quantiles = torch.quantile(flat, torch.tensor(_QUANTILES, device=flat.device), dim=1).T
    stats = torch.cat([flat.mean(1, keepdim=True), flat.std(1, keepdim=True, correction=0), quantiles, flat.amax(1, keepdim=True)], dim=1)
    return torch.cat([stats, band_energies(images.float() - reconstructions.float())], dim=1).float()


def band_energies(residual: torch.Tensor) -> torch.Tensor:
    """Fractions of the grayscale residual's power (DC excluded) in low, mid and high frequency rings."""
    luma = torch.tensor(_LUMA, dtype=residual.dtype, device=residual.device)
    gray = (residual * luma[: residual.shape[1], None, None]).sum(1) if residual.shape[1] == 3 else residual.mean(1)
    power = torch.fft.fftshift(torch.fft.fft2(gray.double()), dim=(-2, -1)).abs().pow(2)
    height, width = gray.shape[-2:]
    y, x = torch.meshgrid(
        torch.arange(height, device=gray.device, dtype=torch.float64), torch.arange(width, device=gray.device, dtype=torch.float64), indexing="ij"
    )
    radius = torch.hypot(y - height // 2, x - width // 2)
    radius = radius / radius.max().clamp(min=1.0)
    power[:, height // 2, width // 2] = 0.0
    total = power.sum((-2, -1)).clamp(min=1e-30)
    low, mid = _BAND_EDGES
    bands = [(radius <= low), (radius > low) & (radius <= mid), (radius > mid)]
    return torch.stack([(power * band).sum((-2, -1)) / total for band in bands], dim=1)
