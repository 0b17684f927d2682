"""`lsdb.allocator`: glibc's thresholds raised in lsdb's own processes, off on request."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lsdb import allocator


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_thresholds_are_set_in_a_process_and_can_be_turned_off(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    code = "from lsdb.allocator import keep_freed_memory; print(keep_freed_memory())"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "True"
    off = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"LSDB_KEEP_FREED_MEMORY": "0", "PATH": ""})
    assert off.stdout.strip() == "False"
    monkeypatch.setenv("LSDB_KEEP_FREED_MEMORY", "0")
    assert allocator.child_env({"A": "1"}) == {"A": "1"}
    monkeypatch.delenv("LSDB_KEEP_FREED_MEMORY")
    env = allocator.child_env({"A": "1", "MALLOC_TRIM_THRESHOLD_": "5"})
    assert env["MALLOC_MMAP_THRESHOLD_"] == str(allocator.THRESHOLD) and env["MALLOC_TRIM_THRESHOLD_"] == "5"
