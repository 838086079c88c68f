"""planstream: event-driven stream processors for the floor-plan pipeline."""

__all__ = ["__version__"]

__version__ = "0.1.0"
