"""A plugin that fails at import time."""

raise RuntimeError("this plugin is broken on purpose")
