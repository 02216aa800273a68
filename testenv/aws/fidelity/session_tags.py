"""Transitive session tags: which sessions carry them, so that role chaining
can ask what AWS asks of them. moto keeps no session tags.

"All of the session tags that are added by EKS Pod Identity are transitive"
(EKS User Guide, "Grant Pods access to AWS resources based on tags", Cross-
account tags), and a role assumed with such a session inherits them: "if you
used temporary credentials to perform this operation, the new session
inherits any transitive session tags from the calling session" (STS API
Reference, AssumeRole, Tags). The `Tags` and `TransitiveTagKeys` parameters
of AssumeRole itself are not modelled."""

import threading

from .awsrequest import AwsRequest
from .sessions import issued_access_key


class SessionTags:
    def __init__(self):
        self._lock = threading.Lock()
        self._tags: dict[str, dict[str, str]] = {}

    def record(self, access_key: str, tags: dict[str, str]):
        """The session of `access_key` carries these transitive tags."""
        if not tags:
            return
        with self._lock:
            self._tags[access_key] = dict(tags)

    def of(self, access_key: str | None) -> dict[str, str]:
        """The transitive tags of the session of `access_key` (none: {})."""
        if access_key is None:
            return {}
        with self._lock:
            return dict(self._tags.get(access_key, {}))

    def inherit(self, request: AwsRequest, body: bytes):
        """A session an STS answer issued to a tagged session inherits its tags."""
        inherited = self.of(request.access_key)
        new_key = issued_access_key(request, body)
        if inherited and new_key is not None:
            self.record(new_key, inherited)
