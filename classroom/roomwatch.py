"""Watch the room's progress page while the load test runs, as an instructor's browser would.

Every few seconds a thread fetches ``/services/classroom-progress/progress.csv`` through the
hub and its proxy, with the load test's service token, and keeps each learner's row with the
time the request began and ended (seconds since the room started). ``tests/test_hub.py``
compares those rows with the notebooks each learner was running at that moment.
"""

from __future__ import annotations

import csv
import io
import threading
import time
import urllib.request

PAGE = "/services/classroom-progress/progress.csv"
KEEP = ("learner", "status", "phase", "revision", "busy", "connections", "exercises_solved", "exercises_tried")


class RoomWatch:
    """Poll the progress CSV in a thread; ``stop()`` takes a last reading and returns them all."""

    def __init__(self, hub_url: str, token: str, t0: float, every: float = 2.0):
        self.url, self.token, self.t0, self.every = hub_url.rstrip("/") + PAGE, token, t0, every
        self.readings: list[dict] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="roomwatch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def read(self) -> None:
        """Fetch the CSV once and keep one reading per learner."""
        begun = time.monotonic() - self.t0
        request = urllib.request.Request(self.url, headers={"Authorization": f"token {self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                text = response.read().decode()
        except OSError as exc:
            self.failures.append(f"{begun:.1f}s: {exc}"[:300])
            return
        ended = time.monotonic() - self.t0
        for row in csv.DictReader(io.StringIO(text)):
            self.readings.append({"begun": round(begun, 2), "ended": round(ended, 2),
                                  **{k: row[k] for k in KEEP}})

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.read()

    def stop(self) -> dict:
        """Stop polling, read once more (the room's final state), and return readings and failures."""
        self._stop.set()
        self._thread.join(timeout=60)
        self.read()
        return {"readings": self.readings, "failures": self.failures}
