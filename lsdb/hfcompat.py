"""The optional Hugging Face dependency: one place that imports transformers and says how to install it."""

from __future__ import annotations

import logging
from typing import Any

from lsdb.errors import BadInput

INSTALL = "pip install 'lsdb[hf]'  (transformers, tokenizers, safetensors)"


def require_transformers() -> Any:
    """The transformers module, or a one-line `BadInput` with the install command."""
    try:
        import transformers
    except ImportError:
        raise BadInput(f"Hugging Face models need transformers, which is not installed: {INSTALL}") from None
    logging.getLogger("transformers").setLevel(logging.ERROR)
    return transformers
