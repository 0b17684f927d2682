"""Listings built for speed: `lsdb checkpoints --format json` over 10^5 rows."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def checkpoints_json(rows: Sequence[tuple[Any, ...]]) -> str:
    """`Catalog.list_checkpoint_rows` as the JSON array `to_json` would write for the records' dicts,
    built from a template: a third of the time of encoding 10^5 dicts (meta is embedded as stored)."""
    from json.encoder import encode_basestring

    def text(value: Any) -> str:
        return "null" if value is None else encode_basestring(value)

    def number(value: Any) -> str:
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return "null"
        return repr(value)

    template = ('{"id": %d, "run_id": %d, "project": %s, "run": %s, "step": %s, "epoch": %s, "label": %s, '
                '"tensor_digest": %s, "schema_digest": %s, "n_params": %d, "n_tensors": %d, "blob_digest": %s, '
                '"source_path": %s, "produced_by": %s, "meta": %s, "created_at": %d, "nonfinite": %s}')
    items = [
        template % (r[0], r[1], text(r[2]), text(r[3]), number(r[4]), number(r[5]), text(r[6]), text(r[7]),
                    text(r[8]), r[9], r[10], text(r[11]), text(r[12]), number(r[13]), r[14], r[15],
                    "true" if r[16] else "false")
        for r in rows
    ]
    return "[" + ", ".join(items) + "]"


def format_spec(spec: str | dict[str, Any] | None) -> str:
    """A model or dataset spec (as stored) in the short form users type, ``mlp:widths=[64,64]``;
    ``""`` for none."""
    if not spec:
        return ""
    from lsdb.specs import parse_spec

    return str(parse_spec(spec))
