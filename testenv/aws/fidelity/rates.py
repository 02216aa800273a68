"""Request-rate ceilings, as AWS's API quotas: a token bucket per quota, per
account and region, beyond which calls answer ThrottlingException.

A ceiling may also be set for one caller (the role ARN the counters name): its
calls then need a token from both the account's bucket and the caller's own,
so that a test can throttle its operator without throttling parallel tests."""

import threading
import time

# AWS's default: the three parameter reads share 40 requests/s per account and region.
SHARED_QUOTAS = {
    ("ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"): 40.0,
}
# The scope of an account-wide ceiling; a caller's ceiling is scoped by its ARN.
ACCOUNT_WIDE = None


class TokenBucket:
    """Holds up to one second of requests; refills continuously."""

    def __init__(self, per_second: float):
        self.per_second = per_second
        self.tokens = max(per_second, 1.0)
        self.updated = time.monotonic()

    def refill(self, now: float):
        capacity = max(self.per_second, 1.0)
        self.tokens = min(capacity, self.tokens + (now - self.updated) * self.per_second)
        self.updated = now


class RateCeilings:
    def __init__(self):
        self._lock = threading.Lock()
        self.reset()

    def reset(self, caller: str | None = None):
        """Back to AWS's defaults; with `caller`, drop only that caller's ceilings."""
        with self._lock:
            if caller is None:
                # action -> its quota (a tuple of the actions sharing it)
                self._quota_of = {a: quota for quota in SHARED_QUOTAS for a in quota}
                # (quota, scope) -> requests per second, None for no ceiling
                self._per_second = {(quota, ACCOUNT_WIDE): r for quota, r in SHARED_QUOTAS.items()}
                # (quota, scope, account, region) -> bucket
                self._buckets: dict[tuple, TokenBucket] = {}
                return
            self._per_second = {k: r for k, r in self._per_second.items() if k[1] != caller}
            self._buckets = {k: b for k, b in self._buckets.items() if k[1] != caller}

    def set(self, action: str, per_second: float | None, caller: str | None = None):
        """Set the ceiling of the quota `action` counts against (shared quotas
        change for all their actions), account-wide or for `caller` (already
        validated); None lifts it."""
        if per_second is not None and (
            isinstance(per_second, bool)
            or not isinstance(per_second, (int, float))
            or per_second <= 0
        ):
            raise ValueError("per_second must be a positive number or null")
        if not isinstance(action, str) or ":" not in action:
            raise ValueError("action must be an action name such as ssm:GetParameters")
        with self._lock:
            quota = self._quota_of.setdefault(action, (action,))
            if caller is None or per_second is not None:
                self._per_second[(quota, caller)] = per_second
            else:
                # A caller without a ceiling of its own has the account's only.
                self._per_second.pop((quota, caller), None)
            self._buckets = {k: b for k, b in self._buckets.items() if k[:2] != (quota, caller)}

    def ceilings(self) -> list[dict]:
        with self._lock:
            return [
                {"actions": list(quota), "per_second": per_second, "caller": scope}
                for (quota, scope), per_second in self._per_second.items()
            ]

    def admit(self, operation: str, caller: str, account: str, region: str) -> bool:
        """Take one request from the account's quota and from the caller's, if
        it has one; False (taking nothing) if the call is over either."""
        with self._lock:
            quota = self._quota_of.get(operation)
            buckets = [
                self._bucket(quota, scope, account, region)
                for scope in (ACCOUNT_WIDE, caller)
                if self._per_second.get((quota, scope)) is not None
            ]
            now = time.monotonic()
            for bucket in buckets:
                bucket.refill(now)
            if any(bucket.tokens < 1.0 for bucket in buckets):
                return False
            for bucket in buckets:
                bucket.tokens -= 1.0
            return True

    def _bucket(self, quota, scope, account, region) -> TokenBucket:
        key = (quota, scope, account, region)
        if key not in self._buckets:
            self._buckets[key] = TokenBucket(self._per_second[(quota, scope)])
        return self._buckets[key]
