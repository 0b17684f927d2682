"""Integrations with other tools' training loops (``lsdb.integrations.hf``: the transformers Trainer)."""
