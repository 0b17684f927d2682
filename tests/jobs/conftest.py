"""Fixtures for the queue tests: the probe plugin, and real worker processes.

Workers are real `lsdb worker` processes (``python -m lsdb.cli.app``) with the test plugin
loaded through ``LSDB_EXTRA_PLUGINS``; their logs go to files under the test's tmp_path and
are printed when a test fails. Every process a test starts is killed at teardown.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
PLUGIN = "tests.jobs.plugin_jobs"


@pytest.fixture(autouse=True)
def probe_plugin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The test analyses (`probe`, `grid`) in this process and in every worker it starts."""
    from lsdb.plugins import reset_plugins

    monkeypatch.setenv("LSDB_EXTRA_PLUGINS", PLUGIN)
    reset_plugins()
    yield
    reset_plugins()


def worker_env() -> dict[str, str]:
    env = dict(os.environ)
    env["LSDB_EXTRA_PLUGINS"] = PLUGIN
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env["OMP_NUM_THREADS"] = "1"
    return env


class Workers:
    """Starts `lsdb worker` processes against one catalog; kills them all at teardown."""

    def __init__(self, store: Path, logs: Path) -> None:
        self.store, self.logs = store, logs
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, db_url: str, *args: str, noun: str = "worker") -> subprocess.Popen[bytes]:
        """``lsdb --db URL --store STORE <noun> ARGS...`` with its output in logs/<noun>-<n>.log."""
        self.logs.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "lsdb.cli.app", "--db", db_url, "--store", str(self.store), noun, *args]
        log = open(self.logs / f"{noun}-{len(self.procs)}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=worker_env(), cwd=REPO)
        self.procs.append(proc)
        return proc

    def stop_all(self, sig: int = signal.SIGTERM, timeout: float = 30) -> list[int | None]:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(sig)
        return [_wait(p, timeout) for p in self.procs]

    def tails(self, chars: int = 3000) -> str:
        out = []
        for f in sorted(self.logs.glob("*.log")) if self.logs.exists() else []:
            out.append(f"--- {f.name}\n{f.read_text(errors='replace')[-chars:]}")
        return "\n".join(out)


def _wait(proc: subprocess.Popen[bytes], timeout: float) -> int | None:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None


@pytest.fixture
def workers(store_root: Path, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Workers]:
    w = Workers(store_root, tmp_path / "logs")
    yield w
    for p in w.procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        print(w.tails())


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


def wait_until(predicate: Callable[[], Any], timeout: float = 60.0, interval: float = 0.1, what: str = "") -> Any:
    """Poll `predicate` until it returns something truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(interval)


def probe(token: str, log: Path | str = "", **params: Any) -> Any:
    """A request for the `probe` analysis."""
    from lsdb.analyses.runner import AnalysisRequest

    return AnalysisRequest("probe", params={"token": token, "log": str(log), **params})
