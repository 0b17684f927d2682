"""Keys: the names `lsdb compare` understands in ``--columns``, ``--where``, ``--sort`` and ``--group-by``.

A key names one value of a run or a result:

==========================  ===================================================================
``run`` (alias ``name``),   fixed fields of the run (``model``/``dataset`` display the spec,
``project``, ``run_id``,    and compare by the spec's name), and of the result with
``status``, ``model``,      ``--analysis`` (``result_id``, ``analysis``)
``dataset``
``param.K``                 run parameter K (numbers and strings kept apart, see below)
``tag.K``                   run tag K (always a string)
``metric.K``                last logged value of metric K; ``metric.K.min``, ``.max``, ``.last``,
                            ``.count`` for the other summaries
``scalar.K``                result scalar K (``--analysis`` only)
``rparam.K``                result parameter K (``--analysis`` only)
``K`` (bare)                a fixed field, else whichever of param/tag/metric/scalar/rparam holds
                            K; when several do, the key is ambiguous and must be qualified
==========================  ===================================================================

This module only names things; the catalog's `CompareRepository` turns keys into SQL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from lsdb.errors import BadInput

FIXED = ("run", "project", "run_id", "result_id", "analysis", "status", "model", "dataset")
"""Fixed fields, in display order."""
ALIASES = {"name": "run"}
RESULT_FIELDS = ("result_id", "analysis")
NAMESPACES = ("param", "tag", "metric", "scalar", "rparam")
"""Key namespaces, in the order a bare name's candidates are listed."""
RESULT_NAMESPACES = ("scalar", "rparam")
METRIC_STATS = ("last", "min", "max", "count")


@dataclass(frozen=True)
class Key:
    """A resolved key: a namespace (``fixed`` or one of `NAMESPACES`), a name and, for metrics, a summary."""

    namespace: str
    name: str
    stat: str = "last"

    @property
    def qualified(self) -> str:
        """The unambiguous spelling, e.g. ``param.lr``, ``metric.acc.max``, ``run``."""
        if self.namespace == "fixed":
            return self.name
        if self.namespace == "metric" and self.stat != "last":
            return f"metric.{self.name}.{self.stat}"
        return f"{self.namespace}.{self.name}"

    @property
    def numeric_only(self) -> bool:
        """Whether every value of this key is a number (a string literal cannot match it)."""
        if self.namespace == "fixed":
            return self.name in ("run_id", "result_id")
        return self.namespace in ("metric", "scalar")

    @property
    def is_result_key(self) -> bool:
        return self.namespace in RESULT_NAMESPACES or (self.namespace == "fixed" and self.name in RESULT_FIELDS)


def parse_key(text: str, known: Mapping[str, set[str]], with_results: bool) -> Key:
    """Resolve `text` to a Key.

    `known` maps each namespace to the key names that exist in the catalog (used only for bare
    names). `with_results` says whether rows are results (``--analysis``); result keys without
    it are a BadInput, since no row could have them.
    """
    text = text.strip()
    if not text:
        raise BadInput("empty key name")
    key = _parse(text, known)
    if key.is_result_key and not with_results:
        raise BadInput(f"'{text}' is a result key; pass --analysis to compare results")
    return key


def _parse(text: str, known: Mapping[str, set[str]]) -> Key:
    lowered = text.lower()
    if lowered in FIXED or lowered in ALIASES:
        return Key("fixed", ALIASES.get(lowered, lowered))
    head, dot, rest = text.partition(".")
    if dot and head.lower() in NAMESPACES and rest:
        namespace = head.lower()
        if namespace == "metric":
            base, dot2, stat = rest.rpartition(".")
            if dot2 and stat.lower() in METRIC_STATS and base:
                return Key("metric", base, stat.lower())
        return Key(namespace, rest)
    holders = [ns for ns in NAMESPACES if text in known.get(ns, ())]
    if len(holders) > 1:
        options = ", ".join(f"{ns}.{text}" for ns in holders)
        raise BadInput(f"key '{text}' is ambiguous ({options}); use the qualified name")
    if holders:
        return Key(holders[0], text)
    if dot:  # e.g. test_acc.max: a bare metric with a summary
        base, _, stat = text.rpartition(".")
        if stat.lower() in METRIC_STATS and base in known.get("metric", ()):
            return Key("metric", base, stat.lower())
    return Key("param", text)  # unknown: a parameter no run has (`check_known` rejects it in --where)


def check_known(key: Key, text: str, known: Mapping[str, set[str]]) -> None:
    """A one-line `BadInput` when no row could have `key` (a typo in ``--where``), naming the known keys.

    `known` holds every key name that some row in scope has, so a key outside it matches no row:
    ``nosuchkey = 1`` or ``param.nosuch = 1`` is an error, not an empty table.
    """
    if key.namespace == "fixed" or key.name in known.get(key.namespace, ()):
        return
    listed = [*FIXED, *(f"{ns}.{name}" for ns in NAMESPACES for name in sorted(known.get(ns, ())))]
    shown = ", ".join(listed[:40]) + (f" (+{len(listed) - 40} more)" if len(listed) > 40 else "")
    raise BadInput(f"--where: unknown key '{text}': no run or result in scope has it; known keys: {shown}")


def label(key: Key, known: Mapping[str, set[str]]) -> str:
    """The column header for `key`: the bare name when it resolves back to `key`, else the qualified one."""
    if key.namespace == "fixed" or (key.namespace == "metric" and key.stat != "last"):
        bare = key.qualified if key.namespace == "fixed" else f"{key.name}.{key.stat}"
    else:
        bare = key.name
    try:
        if _parse(bare, known) == key:
            return bare
    except BadInput:
        pass
    return key.qualified
