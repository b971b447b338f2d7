"""The load test's sampler: memory (PSS) and CPU time of PostgreSQL and of the learners' processes."""

from __future__ import annotations

import threading
from collections.abc import Iterable

import psutil


def memory(proc: psutil.Process) -> int:
    """Return a process's proportional set size: shared pages (PostgreSQL's buffers) counted once."""
    try:
        return proc.memory_full_info().pss
    except (AttributeError, psutil.AccessDenied):
        return proc.memory_info().rss


class Sampler(threading.Thread):
    """Sample the memory (PSS) of PostgreSQL and of the learners' processes, and keep every process's CPU time.

    ``pg_pid`` is the postmaster: it and its children are PostgreSQL. The learners' processes
    are every process owned by one of the OS users in ``users`` (servers and kernels).
    """

    def __init__(self, pg_pid: int | None, users: set[str], every: float = 0.5):
        super().__init__(daemon=True)
        self.pg_pid, self.users, self.every = pg_pid, users, every
        self.peak_pg = self.peak_learners = self.peak_pg_processes = 0
        self.cpu: dict[tuple[str, int], float] = {}
        self.done = threading.Event()

    def _measure(self, kind: str, procs: Iterable[psutil.Process]) -> int:
        """Return the memory of ``procs`` summed, and record each one's CPU time under ``kind``."""
        total = 0
        for proc in procs:
            try:
                total += memory(proc)
                t = proc.cpu_times()
                self.cpu[(kind, proc.pid)] = t.user + t.system
            except psutil.Error:
                pass
        return total

    def sample(self) -> None:
        """Take one sample now and raise the peaks it beats."""
        pg_procs: list[psutil.Process] = []
        if self.pg_pid is not None:  # psutil.Process(None) would be this process
            try:
                pg = psutil.Process(self.pg_pid)
                pg_procs = [pg, *pg.children(recursive=True)]
            except psutil.Error:  # the server is gone
                pass
        pg_pss = self._measure("postgres", pg_procs)
        learners_pss = self._measure("learners", [
            proc for proc in psutil.process_iter(["username"])
            if proc.info["username"] in self.users])
        self.peak_pg = max(self.peak_pg, pg_pss)
        self.peak_pg_processes = max(self.peak_pg_processes, len(pg_procs))
        self.peak_learners = max(self.peak_learners, learners_pss)

    def run(self) -> None:
        while not self.done.is_set():
            self.sample()
            self.done.wait(self.every)

    def stop(self) -> None:
        """Stop sampling after the current sample."""
        self.done.set()

    def cpu_seconds(self, kind: str) -> float:
        """Return the CPU seconds of every process seen under ``kind`` ("postgres" or "learners")."""
        return sum(v for (k, _), v in self.cpu.items() if k == kind)
