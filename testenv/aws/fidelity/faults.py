"""Injected faults: the next N calls of an action fail the way AWS fails, or
are answered the way a broken answer looks.

Two families:
- refusals, raised before moto answers: `throttle`, `unavailable`, `hang`,
  `expired_token`, `invalid_signature`, `idp_communication_error` (STS web
  identity), `kms_throttle` and `kms_internal` (KMS failing the Decrypt SSM
  makes for a read with decryption; only such reads take them);
- answers, moto's answer changed afterwards (see answers.py): `partial` and
  `empty` (GetParameters), `empty`, `cut_page`, `end_early` and `bad_token`
  (GetParametersByPath), `short_lived` (STS or EKS Pod Identity credentials
  that expire after `seconds`).

A fault may be scoped to one caller (the role ARN the counters name), so that
tests running in parallel against one server do not hit each other's calls."""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .awsrequest import AwsRequest
from .errors import (
    AwsError,
    expired_session,
    idp_communication_error,
    internal_failure,
    invalid_signature,
    kms_internal,
    kms_throttled,
    service_unavailable,
    throttling,
)

REFUSALS = (
    "throttle",
    "unavailable",
    "hang",
    "expired_token",
    "invalid_signature",
    "idp_communication_error",
    "kms_throttle",
    "kms_internal",
)
ANSWERS = ("partial", "empty", "cut_page", "end_early", "bad_token", "short_lived")
KINDS = REFUSALS + ANSWERS
# Kinds that only some actions can show; the others apply to any action.
WHERE = {
    "idp_communication_error": {"sts:AssumeRoleWithWebIdentity"},
    "kms_throttle": {"ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"},
    "kms_internal": {"ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"},
    "partial": {"ssm:GetParameters"},
    "empty": {"ssm:GetParameters", "ssm:GetParametersByPath"},
    "cut_page": {"ssm:GetParametersByPath"},
    "end_early": {"ssm:GetParametersByPath"},
    "bad_token": {"ssm:GetParametersByPath"},
    "short_lived": {
        "sts:AssumeRole",
        "sts:AssumeRoleWithWebIdentity",
        # The Pod Identity agent's credentials (pod_identity.py).
        "eks-auth:AssumeRoleForPodIdentity",
    },
}
# Kinds that only reads which decrypt a SecureString (and so call KMS) take.
THROUGH_KMS = {"kms_throttle", "kms_internal"}
DEFAULT_HANG_SECONDS = 30.0
ANY_ACTION = "*"


@dataclass
class Fault:
    action: str  # "ssm:GetParameters", or "*" for every AWS action
    kind: str
    remaining: int
    seconds: float
    caller: str | None  # None: every caller
    # Options of some kinds: how many parameters a cut page keeps (`cut_page`,
    # `end_early`; default half), which names a partial answer leaves out
    # (`partial`; default the last asked), SSM's code around a KMS failure
    # (`kms_throttle`, `kms_internal`).
    keep: int | None = None
    names: list[str] | None = None
    code: str | None = None

    def applies_to(self, operation: str, caller: str) -> bool:
        # IAM action names are case-insensitive.
        action = self.action.lower()
        action_matches = action in (operation.lower(), ANY_ACTION)
        where = WHERE.get(self.kind)
        kind_fits = where is None or operation.lower() in {w.lower() for w in where}
        return action_matches and kind_fits and self.caller in (None, caller)

    def to_json(self) -> dict:
        document = {
            "action": self.action,
            "kind": self.kind,
            "count": self.remaining,
            "seconds": self.seconds,
            "caller": self.caller,
        }
        for option in ("keep", "names", "code"):
            if getattr(self, option) is not None:
                document[option] = getattr(self, option)
        return document


class Faults:
    def __init__(self):
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        # Per fault scope (a caller, or None for unscoped faults): set when
        # that scope's faults are cleared, to let its hanging calls go at once.
        self._releases: dict[str | None, threading.Event] = {}

    def add(
        self,
        action,
        kind,
        count=1,
        seconds=DEFAULT_HANG_SECONDS,
        caller=None,
        keep=None,
        names=None,
        code=None,
    ) -> Fault:
        """Queue a fault; `caller` (already validated) scopes it to that caller."""
        if not isinstance(action, str) or not action:
            raise ValueError("action must be an action name such as ssm:GetParameters, or *")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        where = WHERE.get(kind)
        if where and action != ANY_ACTION and action.lower() not in {w.lower() for w in where}:
            raise ValueError(f"kind {kind} applies to {', '.join(sorted(where))} only")
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ValueError("count must be a positive integer")
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0:
            raise ValueError("seconds must be a non-negative number")
        if keep is not None and (not isinstance(keep, int) or isinstance(keep, bool) or keep < 0):
            raise ValueError("keep must be a non-negative integer")
        if names is not None and (
            not isinstance(names, list) or not all(isinstance(n, str) for n in names)
        ):
            raise ValueError("names must be a list of parameter names")
        if code is not None and (not isinstance(code, str) or not code.isidentifier()):
            raise ValueError("code must be an AWS error code such as InvalidKeyId")
        fault = Fault(action, kind, count, float(seconds), caller, keep, names, code)
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

    def apply(
        self, request: AwsRequest, caller: str, decrypts: Callable[[], bool]
    ) -> Fault | None:
        """Raise the fault's error if a refusal is pending for this call by
        `caller`; return the fault if it changes moto's answer instead.
        `decrypts` tells whether the call makes SSM decrypt a SecureString."""
        with self._lock:
            fault = self._take(request.operation, caller, decrypts)
            if fault is None:
                return None
            released = self._releases.setdefault(fault.caller, threading.Event())
        if fault.kind in ANSWERS:
            return fault
        if fault.kind == "hang":
            # A hang outlasts the client's timeout, then fails like a server-side timeout.
            released.wait(fault.seconds)
            raise internal_failure(request)
        raise refusal(fault, request)

    def _take(self, operation: str, caller: str, decrypts: Callable[[], bool]) -> Fault | None:
        for fault in self._faults:
            if not fault.applies_to(operation, caller):
                continue
            if fault.kind in THROUGH_KMS and not decrypts():
                continue
            fault.remaining -= 1
            if fault.remaining == 0:
                self._faults.remove(fault)
            return fault
        return None


def refusal(fault: Fault, request: AwsRequest) -> AwsError:
    """The error a refusing fault answers."""
    if fault.kind == "throttle":
        return throttling(request)
    if fault.kind == "unavailable":
        return service_unavailable()
    if fault.kind == "expired_token":
        if request.action == "AssumeRoleWithWebIdentity":
            # What STS says of an expired web identity token (web_identity.py).
            now = int(time.time())
            return AwsError(
                "ExpiredTokenException",
                f"Token expired: current date/time {now} must be before the expiration "
                f"date/time{now - 60}",
            )
        return expired_session(request)
    if fault.kind == "invalid_signature":
        return invalid_signature(request)
    if fault.kind == "idp_communication_error":
        return idp_communication_error()
    if fault.kind == "kms_throttle":
        return kms_throttled(fault.code)
    return kms_internal(fault.code)
