"""Each fuzz harness runs briefly (2,000 executions or 10 s) and finds nothing; the inputs the
fuzzers found are kept as regression tests. Skipped without atheris (``pip install -e '.[dev]'``)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("target", ["where", "spec", "checkpoint"])
def test_fuzz_harness_finds_nothing(target: str) -> None:
    pytest.importorskip("atheris")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "tests.fuzz.harnesses", target, "-runs=2000", "-max_total_time=10",
                           "-print_final_stats=1"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-5000:]
    done = re.search(r"Done (\d+) runs", proc.stderr)
    assert done and int(done.group(1)) > 0, proc.stderr[-2000:]


def test_inputs_found_by_fuzzing_are_clean_errors(tmp_path: Path) -> None:
    import base64

    from lsdb.errors import BadInput, StoreError
    from lsdb.inspection import safetensors_header
    from lsdb.plugins import default_registries

    found = base64.b64decode(  # the checkpoint harness' first finding (its first byte selects the reader)
        "AqgAAAAAAAAAeyJfX21ldGFkYXRhX18iOnsic3RlcCI6IjMiLCJsb3NzIjoiMC41In0sIjAuYmlhcyI6eyJkdHlwZSI6IkYzMiIsInNo"
        "YXBlIjpbMl0sImRhdGFfb2Zmc2V0cyI6WzAsOF19LCIwLndlaWdodCI6eyJkdHlwZSI6IkYzMiIsInNoYXBlIjpbMiwzXSwiZGF0YV9v"
        "ZmZzZXRzLDo4IlszMl19fSAgICAgAAAAAAAAAAAAAAAAAACAPwAAAEAAAEBAAACAQAAAoEA=")[1:]
    for name, data in [("json", found), ("huge", b"\xff" * 8 + b"{}"), ("short", b"\x10" + b"\x00" * 7 + b"{}"),
                       ("list", b"\x02" + b"\x00" * 7 + b"[]"), ("utf8", b"\x02" + b"\x00" * 7 + b"\xff\xfe")]:
        path = tmp_path / f"{name}.safetensors"
        path.write_bytes(data)
        with pytest.raises(StoreError, match="lsdb doctor"):
            safetensors_header(str(path))
    models = default_registries().models
    for spec in ("1:cn", ":cn", ".x:f"):  # refused in one line (untrusted, or not an importable module)
        with pytest.raises(BadInput, match="cannot import module|not trusted on this machine") as err:
            models.validate(spec)
        assert "\n" not in str(err.value)
