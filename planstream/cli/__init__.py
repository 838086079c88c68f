"""The ``planstream`` command: one module per command family, the parser in ``main``."""

from planstream.cli.main import main

__all__ = ["main"]
