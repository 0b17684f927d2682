"""atheris fuzz harnesses (issue #14, §5): the ``--where`` grammar, the spec grammar and the
checkpoint readers. Any exception other than lsdb's own clean errors (`lsdb.errors.LsdbError`)
is a bug, and makes the harness exit non-zero with the input that caused it.

    python -m tests.fuzz.harnesses where|spec|checkpoint [libFuzzer flags: -runs=N -max_total_time=S ...]

`tests/fuzz/test_fuzz.py` runs each briefly; `scripts/fuzz.py` runs them longer. A seed corpus
(valid examples of each input) is written to a temporary folder and handed to libFuzzer.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["lsdb"]):
    from lsdb.errors import LsdbError
    from lsdb.inspection import safetensors_header
    from lsdb.query.keys import check_known, parse_key
    from lsdb.query.where import names, parse_where
    from lsdb.specs import parse_spec, parse_value

KNOWN = {"param": {"lr", "arch", "wd"}, "tag": {"seed"}, "metric": {"loss", "test_acc"}, "scalar": {"sharpness"},
         "rparam": {"xnum"}}
WHERE_SEEDS = ["lr > 0.05", "param.lr = 1e-3 AND NOT (arch IN ('resnet', vgg) OR tag.seed IS NOT NULL)",
               "metric.test_acc.max >= .5 OR run LIKE 'a%'", "opt = 'x'' OR ''1''=''1'", "name CONTAINS \"b\\\"\""]
SPEC_SEEDS = ["mlp:widths=[16, 8]:activation=relu", "digits:image=true:test_fraction=0.25", "cnn",
              "mlp:widths=[1e3]:dropout=0.5", "resnet:depth=20:width={\"a\": [1, 2]}"]


def _text(data: bytes) -> str:
    return atheris.FuzzedDataProvider(data).ConsumeUnicodeNoSurrogates(len(data))


def fuzz_where(data: bytes) -> None:
    text = _text(data)
    try:
        node = parse_where(text)
        for name in names(node) if node is not None else []:
            check_known(parse_key(name, KNOWN, with_results=True), name, KNOWN)
    except LsdbError:
        pass


_REGISTRIES: list[object] = []


def fuzz_spec(data: bytes) -> None:
    if not _REGISTRIES:
        from lsdb.plugins import load_registries

        _REGISTRIES.append(load_registries())
    registries = _REGISTRIES[0]
    text = _text(data)
    calls: list[Callable[[], object]] = [lambda: parse_value(text), lambda: parse_spec(text, "model")]
    module = text.split(":", 1)[0].strip()
    if ":" not in text or not module or module in sys.modules:  # never import a module the fuzzer made up
        calls += [lambda: registries.models.validate(text),  # type: ignore[attr-defined]
                  lambda: registries.datasets.validate(text)]  # type: ignore[attr-defined]
    for call in calls:
        try:
            call()
        except LsdbError:
            pass


_TMP = Path(tempfile.mkdtemp(prefix="lsdb-fuzz-"))


def fuzz_checkpoint(data: bytes) -> None:
    from lsdb.checkpoints import read_checkpoint

    if not data:
        return
    kind, body = data[0] % 3, data[1:]
    path = _TMP / ("c.pt" if kind == 0 else "c.safetensors")
    path.write_bytes(body)
    try:
        if kind == 2:
            safetensors_header(str(path))
        else:
            read_checkpoint(path)
    except LsdbError:
        pass


def _checkpoint_seeds() -> list[bytes]:
    import torch
    from safetensors.torch import save as save_safetensors

    state = {"0.weight": torch.arange(6.0).reshape(2, 3), "0.bias": torch.zeros(2)}
    buf = io.BytesIO()
    torch.save(state, buf)
    st = save_safetensors(state, metadata={"step": "3", "loss": "0.5"})
    return [b"\x00" + buf.getvalue(), b"\x01" + st, b"\x02" + st]


TARGETS: dict[str, tuple[Callable[[bytes], None], Callable[[], list[bytes]]]] = {
    "where": (fuzz_where, lambda: [s.encode() for s in WHERE_SEEDS]),
    "spec": (fuzz_spec, lambda: [s.encode() for s in SPEC_SEEDS]),
    "checkpoint": (fuzz_checkpoint, _checkpoint_seeds),
}


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[1] not in TARGETS:
        sys.exit(f"usage: python -m tests.fuzz.harnesses {'|'.join(TARGETS)} [libFuzzer flags]")
    target, seeds = TARGETS[argv[1]]
    corpus = Path(tempfile.mkdtemp(prefix=f"lsdb-fuzz-{argv[1]}-"))
    for i, seed in enumerate(seeds()):
        (corpus / f"seed{i}").write_bytes(seed)
    flags = [a for a in argv[2:] if a.startswith("-")]
    if not any(f.startswith("-artifact_prefix=") for f in flags):  # crash inputs beside the corpus, not in cwd
        flags.append(f"-artifact_prefix={corpus}/")
    folders = [a for a in argv[2:] if not a.startswith("-")] or [str(corpus)]
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    atheris.Setup([argv[0], *flags, *folders], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
