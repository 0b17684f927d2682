"""`lsdb workers start`: one `lsdb worker` process per device, restarted when it crashes.

Each worker is an ordinary ``lsdb worker`` command line (so what runs under the supervisor
is exactly what a user could start by hand). A worker that exits with status 0 (``--once``,
``--max-jobs``, ``--idle-exit``) is done; any other exit is a crash and the worker is started
again after a delay that doubles while it keeps crashing quickly (up to 30 s). SIGTERM or
SIGINT is forwarded to every worker, which finishes or releases its job; whatever is still
running after the grace period is killed.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from lsdb.config import Settings
from lsdb.errors import BadInput

log = logging.getLogger("lsdb.supervisor")
#: A worker that ran this long before crashing restarts without delay growth.
HEALTHY_AFTER_S = 60.0


def plan_devices(devices: str) -> list[str]:
    """``all``: one worker per visible GPU (one CPU worker without GPUs); ``cpu``: one CPU worker;
    ``N``: N CPU workers; ``0,2`` or ``cuda:0,cuda:2``: those GPUs."""
    text = devices.strip().lower()
    if text == "cpu":
        return ["cpu"]
    if text.isdigit():
        if int(text) < 1:
            raise BadInput("--devices N needs N >= 1")
        return ["cpu"] * int(text)
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if text == "all":
        if count == 0:
            log.warning("no GPU visible: starting one CPU worker")
            return ["cpu"]
        return [f"cuda:{i}" for i in range(count)]
    try:
        indices = [int(part.strip().removeprefix("cuda:")) for part in text.split(",")]
    except ValueError:
        raise BadInput(f"--devices {devices!r}: use all, cpu, a number of CPU workers or GPU indices (0,1)") from None
    missing = [i for i in indices if i >= count]
    if missing:
        raise BadInput(f"GPU {missing[0]} is not visible here ({count} GPU(s)); see nvidia-smi")
    return [f"cuda:{i}" for i in indices]


def worker_command(settings: Settings, device: str, worker_args: Sequence[str] = ()) -> list[str]:
    """The command line of one worker on `device`."""
    return [sys.executable, "-m", "lsdb.cli.app", "--db", settings.database_url, "--store", str(settings.store_root),
            "worker", "--device", device, *worker_args]


@dataclass
class _Slot:
    command: list[str]
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    delay: float = 1.0
    restart_at: float | None = None
    restarts: int = 0
    done: bool = False
    history: list[int] = field(default_factory=list)


class Supervisor:
    """Keeps one process per command line alive until each exits cleanly or the supervisor is stopped."""

    def __init__(self, commands: Sequence[list[str]], grace_s: float = 30.0, max_restarts: int | None = None,
                 handle_signals: bool = True) -> None:
        self.slots = [_Slot(list(cmd)) for cmd in commands]
        self.grace_s = grace_s
        self.max_restarts = max_restarts
        self.handle_signals = handle_signals
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> int:
        """Supervise until every worker has exited cleanly or a signal arrives; returns the restarts."""
        self._install_signals()
        for slot in self.slots:
            self._start(slot)
        try:
            while not self._stop.is_set() and not all(s.done for s in self.slots):
                for slot in self.slots:
                    self._check(slot)
                self._stop.wait(0.2)
        finally:
            self._shutdown()
        return sum(s.restarts for s in self.slots)

    def _start(self, slot: _Slot) -> None:
        slot.proc = subprocess.Popen(slot.command, start_new_session=True)  # a terminal's Ctrl-C: forwarded once
        slot.started = time.monotonic()
        slot.restart_at = None
        log.info("started worker pid %d: %s", slot.proc.pid, " ".join(slot.command[3:]))

    def _check(self, slot: _Slot) -> None:
        if slot.done:
            return
        now = time.monotonic()
        if slot.proc is None:
            if slot.restart_at is not None and now >= slot.restart_at:
                slot.restarts += 1
                self._start(slot)
            return
        code = slot.proc.poll()
        if code is None:
            return
        slot.history.append(code)
        slot.proc = None
        if code == 0:
            log.info("worker exited cleanly; not restarting")
            slot.done = True
            return
        if self.max_restarts is not None and slot.restarts >= self.max_restarts:
            log.error("worker exited with %s; %d restarts used, giving up", code, slot.restarts)
            slot.done = True
            return
        slot.delay = 1.0 if now - slot.started >= HEALTHY_AFTER_S else min(slot.delay * 2, 30.0)
        slot.restart_at = now + (0.5 if now - slot.started >= HEALTHY_AFTER_S else slot.delay)
        log.warning("worker exited with %s; restarting in %.1f s", code, slot.restart_at - now)

    def _shutdown(self) -> None:
        live = [s.proc for s in self.slots if s.proc is not None and s.proc.poll() is None]
        for proc in live:
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace_s
        for proc in live:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def _install_signals(self) -> None:
        if not self.handle_signals or threading.current_thread() is not threading.main_thread():
            return

        def handle(signum: int, _frame: object) -> None:
            log.info("signal %d: stopping the workers", signum)
            self._stop.set()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)


def supervise(settings: Settings, devices: str, worker_args: Sequence[str] = (), grace_s: float = 30.0,
              max_restarts: int | None = None) -> int:
    """Start and supervise one worker per planned device; returns the number of restarts."""
    commands = [worker_command(settings, device, worker_args) for device in plan_devices(devices)]
    return Supervisor(commands, grace_s=grace_s, max_restarts=max_restarts).run()
