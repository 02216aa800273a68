"""Injected faults: the next N calls of an action fail the way AWS fails.

A fault may be scoped to one caller (the role ARN the counters name), so that
tests running in parallel against one server do not hit each other's calls."""

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
    caller: str | None  # None: every caller

    def matches(self, operation: str, caller: str) -> bool:
        # IAM action names are case-insensitive.
        action_matches = self.action.lower() in (operation.lower(), ANY_ACTION)
        return action_matches and self.caller in (None, caller)

    def to_json(self) -> dict:
        return {
            "action": self.action,
            "kind": self.kind,
            "count": self.remaining,
            "seconds": self.seconds,
            "caller": self.caller,
        }


class Faults:
    def __init__(self):
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        # Per fault scope (a caller, or None for unscoped faults): set when
        # that scope's faults are cleared, to let its hanging calls go at once.
        self._releases: dict[str | None, threading.Event] = {}

    def add(self, action, kind, count=1, seconds=DEFAULT_HANG_SECONDS, caller=None) -> Fault:
        """Queue a fault; `caller` (already validated) scopes it to that caller."""
        if not isinstance(action, str) or not action:
            raise ValueError("action must be an action name such as ssm:GetParameters, or *")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ValueError("count must be a positive integer")
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0:
            raise ValueError("seconds must be a non-negative number")
        fault = Fault(action, kind, count, float(seconds), caller)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self, caller: str | None = None):
        """Drop pending faults and release hanging calls: all of them, or
        only those of faults scoped to `caller`."""
        with self._lock:
            if caller is None:
                self._faults.clear()
                scopes = list(self._releases)
            else:
                self._faults = [fault for fault in self._faults if fault.caller != caller]
                scopes = [caller]
            for scope in scopes:
                released = self._releases.pop(scope, None)
                if released is not None:
                    released.set()

    def pending(self) -> list[dict]:
        with self._lock:
            return [fault.to_json() for fault in self._faults]

    def apply(self, request: AwsRequest, caller: str):
        """Raise the fault's error if one is pending for this call by `caller`."""
        with self._lock:
            fault = self._take(request.operation, caller)
            if fault is None:
                return
            released = self._releases.setdefault(fault.caller, threading.Event())
        if fault.kind == "throttle":
            raise throttling(request)
        if fault.kind == "unavailable":
            raise service_unavailable()
        # A hang outlasts the client's timeout, then fails like a server-side timeout.
        released.wait(fault.seconds)
        raise internal_failure(request)

    def _take(self, operation: str, caller: str) -> Fault | None:
        for fault in self._faults:
            if fault.matches(operation, caller):
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault
        return None
