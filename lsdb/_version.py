"""lsdb's version (its own module, so that lower layers need not import the package root)."""

__version__ = "0.1.0"
