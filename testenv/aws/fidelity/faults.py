"""Injected faults: the next N calls of an action fail the way AWS fails."""

import threading
from dataclasses import dataclass

from .awsrequest import AwsRequest
from .errors import internal_failure, service_unavailable, throttling

KINDS = ("throttle", "unavailable", "hang")
DEFAULT_HANG_SECONDS = 30.0
ANY_ACTION = "*"


@dataclass
class Fault:
    action: str  # "ssm:GetParameters", or "*" for every AWS action
    kind: str
    remaining: int
    seconds: float

    def to_json(self) -> dict:
        return {
            "action": self.action,
            "kind": self.kind,
            "count": self.remaining,
            "seconds": self.seconds,
        }


class Faults:
    def __init__(self):
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        # Set when the faults are cleared, to let hanging calls go at once.
        self._cleared = threading.Event()

    def add(self, action, kind, count=1, seconds=DEFAULT_HANG_SECONDS) -> Fault:
        if not isinstance(action, str) or not action:
            raise ValueError("action must be an action name such as ssm:GetParameters, or *")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ValueError("count must be a positive integer")
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0:
            raise ValueError("seconds must be a non-negative number")
        fault = Fault(action, kind, count, float(seconds))
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self):
        with self._lock:
            self._faults.clear()
            self._cleared.set()
            self._cleared = threading.Event()

    def pending(self) -> list[dict]:
        with self._lock:
            return [fault.to_json() for fault in self._faults]

    def apply(self, request: AwsRequest):
        """Raise the fault's error if one is pending for this call."""
        with self._lock:
            fault = self._take(request.operation)
            cleared = self._cleared
        if fault is None:
            return
        if fault.kind == "throttle":
            raise throttling(request)
        if fault.kind == "unavailable":
            raise service_unavailable()
        # A hang outlasts the client's timeout, then fails like a server-side timeout.
        cleared.wait(fault.seconds)
        raise internal_failure(request)

    def _take(self, operation: str) -> Fault | None:
        for fault in self._faults:
            # IAM action names are case-insensitive.
            if fault.action.lower() in (operation.lower(), ANY_ACTION):
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault
        return None
