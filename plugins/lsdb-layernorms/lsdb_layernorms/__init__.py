"""Example lsdb plugin: per-layer weight norms (see README.md)."""

__version__ = "0.1.0"
