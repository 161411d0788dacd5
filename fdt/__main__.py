"""``python -m fdt``: the same as the ``fdt`` command."""

from fdt.cli import main

main()
