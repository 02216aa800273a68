"""Calls counted per action, caller and outcome, for tests and benchmarks to
measure (not guess) how many AWS calls the operator makes."""

import threading
from collections import Counter


class Counters:
    def __init__(self):
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str, str]] = Counter()

    def add(self, action: str, caller: str, outcome: str):
        with self._lock:
            self._counts[(action, caller, outcome)] += 1

    def reset(self):
        with self._lock:
            self._counts.clear()

    def snapshot(self) -> list[dict]:
        with self._lock:
            counts = sorted(self._counts.items())
        return [
            {"action": action, "caller": caller, "outcome": outcome, "count": count}
            for (action, caller, outcome), count in counts
        ]
