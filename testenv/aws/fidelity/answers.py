"""Broken answers: moto's answer to a call, changed the way a partial,
empty or truncated answer from AWS would look (the `faults.ANSWERS` kinds).

None of them is something AWS documents; each is what a client must survive
without taking it for "the parameter is gone":
- `partial`: GetParameters leaves names out of both `Parameters` and
  `InvalidParameters` (an answer AWS's contract does not allow);
- `empty`: a 200 whose body says nothing (`{}`);
- `cut_page`: a GetParametersByPath page with fewer parameters than it
  should have, its NextToken kept (pages may legitimately be short, so a
  client cannot tell);
- `end_early`: the same page without its NextToken: the listing looks complete;
- `bad_token`: the page's NextToken is replaced by one that fails when used
  (`InvalidNextToken`, as SSM answers for a token it does not accept);
- `short_lived`: STS credentials whose Expiration is `seconds` from now
  (sessions.py then refuses them after it, as AWS does); the Pod Identity
  agent's credentials take it in pod_identity.py."""

import json
import re
import threading
import uuid
from datetime import UTC, datetime, timedelta

from .awsrequest import AwsRequest
from .errors import invalid_next_token
from .faults import Fault


class PoisonedTokens:
    """NextTokens handed out by `bad_token`: every call using one fails."""

    def __init__(self):
        self._lock = threading.Lock()
        self._tokens: set[str] = set()

    def new(self) -> str:
        token = f"fidelity-poisoned-{uuid.uuid4()}"
        with self._lock:
            self._tokens.add(token)
        return token

    def check(self, request: AwsRequest):
        """Raise InvalidNextToken for a call that carries a poisoned token."""
        token = request.params.get("NextToken")
        if request.service != "ssm" or not isinstance(token, str):
            return
        with self._lock:
            poisoned = token in self._tokens
        if poisoned:
            raise invalid_next_token()


def change(fault: Fault, request: AwsRequest, body: bytes, tokens: PoisonedTokens) -> bytes:
    """moto's 200 `body`, as `fault` breaks it."""
    if fault.kind == "empty":
        return b"{}"
    if fault.kind == "short_lived":
        return _short_lived(body, fault.seconds)
    answer = json.loads(body or b"{}")
    if fault.kind == "partial":
        _leave_out(answer, fault.names or (request.params.get("Names") or [])[-1:])
    elif fault.kind == "bad_token":
        answer["NextToken"] = tokens.new()
    else:
        # cut_page, end_early: the page loses parameters (half by default).
        page = answer.get("Parameters") or []
        keep = fault.keep if fault.keep is not None else len(page) // 2
        answer["Parameters"] = page[:keep]
        if fault.kind == "end_early":
            answer.pop("NextToken", None)
    return json.dumps(answer).encode()


def _leave_out(answer: dict, names: list[str]):
    """Drops `names` (as asked: a name, `name:selector` or an ARN) from both lists."""
    asked = set(names)
    bases = {name.split(":")[0] if not name.startswith("arn:") else name for name in names}
    bare = {b.removeprefix("/") for b in bases}

    def answers_one(parameter: dict) -> bool:
        name = parameter.get("Name", "")
        return (
            name in bases
            or name.removeprefix("/") in bare
            or parameter.get("ARN") in bases
            or parameter.get("Selector") and f"{name}{parameter['Selector']}" in asked
        )

    answer["Parameters"] = [p for p in answer.get("Parameters") or [] if not answers_one(p)]
    answer["InvalidParameters"] = [
        n for n in answer.get("InvalidParameters") or [] if n not in asked and n not in bases
    ]


EXPIRATION = re.compile(rb"<Expiration>[^<]*</Expiration>")


def _short_lived(body: bytes, seconds: float) -> bytes:
    expiry = datetime.now(UTC) + timedelta(seconds=seconds)
    stamp = expiry.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    return EXPIRATION.sub(b"<Expiration>" + stamp + b"</Expiration>", body, count=1)
