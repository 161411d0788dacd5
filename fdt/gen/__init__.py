"""Generators of fake images: DCGAN, Stable Diffusion text-to-image and inpainting, a small DDPM.

Every generator writes images plus a CSV manifest (see :mod:`fdt.gen.output`) that
``fdt extract`` reads directly. Importing this package is cheap on purpose: torch
and diffusers are imported by the modules that run a network
(:mod:`fdt.gen.dcgan`, :mod:`fdt.gen.ddpm`, :mod:`fdt.gen.sd`, :mod:`fdt.gen.inpaint`).
"""
