"""Temporary credentials expire: moto never refuses an expired session, AWS
does (`ExpiredTokenException` "The security token included in the request
is expired"). The layer remembers the Expiration of every session issued
through it (STS answers, and the EKS Pod Identity agent's credentials) and
refuses the session's calls after it."""

import re
import threading
from datetime import UTC, datetime

from .awsrequest import AwsRequest
from .errors import expired_session

ISSUING = {"AssumeRole", "AssumeRoleWithWebIdentity"}
ACCESS_KEY = re.compile(rb"<AccessKeyId>([^<]+)</AccessKeyId>")
EXPIRATION = re.compile(rb"<Expiration>([^<]+)</Expiration>")


def issued_access_key(request: AwsRequest, body: bytes) -> str | None:
    """The access key of the session an STS answer issued, if it is one."""
    if request.service != "sts" or request.action not in ISSUING:
        return None
    found = ACCESS_KEY.search(body)
    return found.group(1).decode() if found else None


class Sessions:
    def __init__(self):
        self._lock = threading.Lock()
        self._expiry: dict[str, datetime] = {}

    def record(self, request: AwsRequest, body: bytes):
        """Remembers the session an STS answer issued."""
        key, expiration = issued_access_key(request, body), EXPIRATION.search(body)
        if key is None or expiration is None:
            return
        try:
            expiry = datetime.fromisoformat(expiration.group(1).decode().replace("Z", "+00:00"))
        except ValueError:
            return
        self.remember(key, expiry)

    def remember(self, access_key: str, expiry: datetime):
        """Remembers when the session of `access_key` expires."""
        if expiry.tzinfo is None:
            expiry = expiry.replace(tzinfo=UTC)
        with self._lock:
            self._expiry[access_key] = expiry

    def check(self, request: AwsRequest):
        """Raise the expired-session error for a call signed with a session
        past its expiry."""
        if request.access_key is None:
            return
        with self._lock:
            expiry = self._expiry.get(request.access_key)
        if expiry is not None and datetime.now(UTC) >= expiry:
            raise expired_session(request)
