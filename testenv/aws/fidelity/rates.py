"""Request-rate ceilings, as AWS's API quotas: a token bucket per quota, per
account and region, beyond which calls answer ThrottlingException."""

import threading
import time

# AWS's default: the three parameter reads share 40 requests/s per account and region.
SHARED_QUOTAS = {
    ("ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"): 40.0,
}


class TokenBucket:
    """Holds up to one second of requests; refills continuously."""

    def __init__(self, per_second: float):
        self.per_second = per_second
        self.tokens = max(per_second, 1.0)
        self.updated = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        capacity = max(self.per_second, 1.0)
        self.tokens = min(capacity, self.tokens + (now - self.updated) * self.per_second)
        self.updated = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


class RateCeilings:
    def __init__(self):
        self._lock = threading.Lock()
        self.reset()

    def reset(self):
        """Back to AWS's defaults."""
        with self._lock:
            # action -> its quota (a tuple of the actions sharing it)
            self._quota_of = {a: quota for quota in SHARED_QUOTAS for a in quota}
            self._per_second = dict(SHARED_QUOTAS)
            self._buckets: dict[tuple, TokenBucket] = {}

    def set(self, action: str, per_second: float | None):
        """Set the ceiling of the quota `action` counts against (shared quotas
        change for all their actions); None lifts it."""
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
            self._per_second[quota] = per_second
            self._buckets = {k: b for k, b in self._buckets.items() if k[0] != quota}

    def ceilings(self) -> list[dict]:
        with self._lock:
            return [
                {"actions": list(quota), "per_second": per_second}
                for quota, per_second in self._per_second.items()
            ]

    def admit(self, operation: str, account: str, region: str) -> bool:
        """Take one request from the quota; False if the call is over it."""
        with self._lock:
            quota = self._quota_of.get(operation)
            per_second = self._per_second.get(quota)
            if per_second is None:
                return True
            bucket = self._buckets.setdefault((quota, account, region), TokenBucket(per_second))
            return bucket.take()
