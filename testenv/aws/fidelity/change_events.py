"""EventBridge's "Parameter Store Change" events, delivered to the SQS queues
tests register (`PUT /_fidelity/change-events`), with the delay, duplication
and loss a consumer must survive.

The event, as the Systems Manager User Guide shows it ("Monitoring Systems
Manager events with Amazon EventBridge", "Amazon EventBridge event examples
for Systems Manager" → "AWS Systems Manager Parameter Store Events"):

    {"version": "0", "id": "6a7e4feb-…", "detail-type": "Parameter Store Change",
     "source": "aws.ssm", "account": "123456789012", "time": "2017-05-22T16:43:48Z",
     "region": "us-east-1", "resources": ["arn:aws:ssm:us-east-1:123456789012:parameter/foo"],
     "detail": {"operation": "Create", "name": "foo", "type": "String",
                "description": "Sample Parameter"}}

`operation` is Create, Update, Delete or LabelParameterVersion. An SQS
target receives the event JSON as the message body. "Events are emitted on a
best effort basis" (User Guide, "Setting up notifications or triggering
actions based on Parameter Store events"), and EventBridge delivers at least
once: hence the loss and duplication tests can ask for.

Not known, and so not modelled (rather than guessed):
- whether the LabelParameterVersion event names the labels or the version
  (the example shows none): detail has the same four fields as the others;
  whether AWS sends one when every label was invalid (nothing was labelled):
  the layer sends none;
- the resource ARN of a name with a leading slash: the parameter's ARN, the
  slash being the ARN's separator (`/a/b` → `…:parameter/a/b`), as SSM names
  it elsewhere; an event captured on AWS for such a name (in public test
  fixtures, not AWS's documentation) has that form, and omits `description`
  when the parameter has none, as the layer does;
- `exception`/`dataType`, which the User Guide shows for `aws:ec2:image`
  parameters whose validation failed: never sent;
- UnlabelParameterVersion and parameter policy events: none sent.

The event goes to every target registered for the changing caller's account
and the request's region, straight into moto's SQS backend (in-process: no
AWS call, nothing counted), as soon as moto answered the change 200."""

import json
import re
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urlparse

from moto.core.exceptions import JsonRESTError, ServiceException
from moto.sqs.models import sqs_backends

from . import moto_state
from .awsrequest import AwsRequest
from .ssm_parameters import find_version, parameter_arn

CHANGES = {"PutParameter", "DeleteParameter", "DeleteParameters", "LabelParameterVersion"}
# SendMessage's DelaySeconds: "Valid values: 0 to 900" (SQS API Reference).
MAX_DELAY_SECONDS = 900
ACCOUNT = re.compile(r"\d{12}")
REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d")
# moto's queue URL: <scheme>://<the request's host>/<account>/<queue name>
# (Queue.url); AWS's host is sqs.<region>.amazonaws.com.
QUEUE_PATH = re.compile(r"/(\d{12})/([A-Za-z0-9_-]{1,80}(?:\.fifo)?)")
AWS_QUEUE_HOST = re.compile(r"sqs\.([a-z0-9-]+)\.amazonaws\.com(:\d+)?")


@dataclass
class Target:
    queue_url: str
    queue_account: str
    queue_region: str
    queue_name: str
    # Whose events the queue gets: changes by callers of this account in this region.
    account: str
    region: str
    delay_seconds: int = 0
    duplicate: bool = False
    drop_next: int = 0
    # Events sent (a duplicated event counts once), lost by drop_next, and
    # not sent because the queue was gone (or refused the message).
    delivered: int = 0
    dropped: int = 0
    undeliverable: int = 0

    def to_json(self) -> dict:
        return {
            "queue_url": self.queue_url,
            "account": self.account,
            "region": self.region,
            "delay_seconds": self.delay_seconds,
            "duplicate": self.duplicate,
            "drop_next": self.drop_next,
            "delivered": self.delivered,
            "dropped": self.dropped,
            "undeliverable": self.undeliverable,
        }

    @classmethod
    def from_json(cls, body: dict) -> "Target":
        """The target a control request describes; ValueError if invalid."""
        queue_url = body.get("queue_url")
        url = urlparse(queue_url) if isinstance(queue_url, str) else None
        found = QUEUE_PATH.fullmatch(url.path) if url else None
        if not found:
            raise ValueError(
                "queue_url must be a queue URL as CreateQueue answers it: "
                "http://<host>/<account>/<queue name>"
            )
        queue_account, queue_name = found.groups()
        account = body.get("account", queue_account)
        if not isinstance(account, str) or not ACCOUNT.fullmatch(account):
            raise ValueError("account must be a 12-digit account id")
        region = body.get("region")
        if region is not None and (not isinstance(region, str) or not REGION.fullmatch(region)):
            raise ValueError("region must be a region name such as us-east-1")
        queue_region = _queue_region(url.netloc, queue_account, queue_name, region)
        delay = body.get("delay_seconds", 0)
        if not _count(delay) or delay > MAX_DELAY_SECONDS:
            raise ValueError(f"delay_seconds must be an integer from 0 to {MAX_DELAY_SECONDS}")
        duplicate = body.get("duplicate", False)
        if not isinstance(duplicate, bool):
            raise ValueError("duplicate must be true or false")
        drop_next = body.get("drop_next", 0)
        if not _count(drop_next):
            raise ValueError("drop_next must be a non-negative integer")
        return cls(
            queue_url,
            queue_account,
            queue_region,
            queue_name,
            account,
            region or queue_region,
            delay,
            duplicate,
            drop_next,
        )

    def deliver(self, event: dict):
        if self.drop_next:
            self.drop_next -= 1
            self.dropped += 1
            return
        body = json.dumps(event)
        backend = sqs_backends[self.queue_account][self.queue_region]
        try:
            for _ in range(2 if self.duplicate else 1):
                backend.send_message(self.queue_name, body, delay_seconds=self.delay_seconds)
        except (ServiceException, JsonRESTError):
            self.undeliverable += 1
            return
        self.delivered += 1


class ChangeEvents:
    def __init__(self):
        self._lock = threading.Lock()
        self._targets: dict[str, Target] = {}

    def put(self, target: Target):
        """Adds it, or replaces the target of the same queue URL (its counts too)."""
        with self._lock:
            self._targets.pop(target.queue_url, None)
            self._targets[target.queue_url] = target

    def clear(self):
        with self._lock:
            self._targets.clear()

    def all(self) -> list[dict]:
        with self._lock:
            return [target.to_json() for target in self._targets.values()]

    def before(self, request: AwsRequest, account: str) -> dict:
        """What a deletion's events need of the parameters it is about to
        delete (their type and description): moto's Parameter per name."""
        deletions = ("DeleteParameter", "DeleteParameters")
        if request.service != "ssm" or request.action not in deletions:
            return {}
        names = request.params.get("Names") or [request.params.get("Name")]
        backend = moto_state.ssm_backend(account, request.region)
        found = {}
        for name in names:
            if not isinstance(name, str):
                continue
            try:
                parameter = backend.get_parameter(name)
            except (ServiceException, JsonRESTError):
                parameter = None
            if parameter is not None:
                found[name] = parameter
        return found

    def publish(self, request: AwsRequest, account: str, before: dict, body: bytes):
        """Send the events of a change moto answered 200 to the targets of
        `account` (the caller's) and the request's region."""
        if request.service != "ssm" or request.action not in CHANGES:
            return
        with self._lock:
            targets = [
                target
                for target in self._targets.values()
                if (target.account, target.region) == (account, request.region)
            ]
        if not targets:
            return
        events = [
            _event(operation, name, parameter, account, request.region)
            for operation, name, parameter in _changes(request, account, before, _json(body))
        ]
        with self._lock:
            for event in events:
                for target in targets:
                    target.deliver(event)


def _changes(request: AwsRequest, account: str, before: dict, answer: dict):
    """(operation, name as given, moto's Parameter or None) of each change."""
    params, region = request.params, request.region
    name = params.get("Name")
    if request.action == "PutParameter":
        # Version 1 is a new parameter (a deleted one's history goes with it).
        version = answer.get("Version")
        operation = "Create" if version == 1 else "Update"
        yield operation, name, find_version(name, version, account, region)
    elif request.action == "DeleteParameter":
        yield "Delete", name, before.get(name)
    elif request.action == "DeleteParameters":
        for deleted in answer.get("DeletedParameters") or []:
            yield "Delete", deleted, before.get(deleted)
    elif request.action == "LabelParameterVersion":
        labelled = set(params.get("Labels") or []) - set(answer.get("InvalidLabels") or [])
        if labelled:
            version = answer.get("ParameterVersion")
            yield "LabelParameterVersion", name, find_version(name, version, account, region)


def _event(operation: str, name: str, parameter, account: str, region: str) -> dict:
    detail = {"operation": operation, "name": name}
    if parameter is not None:
        detail["type"] = parameter.parameter_type
        if parameter.description:
            detail["description"] = parameter.description
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Parameter Store Change",
        "source": "aws.ssm",
        "account": account,
        "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [parameter_arn(name, account, region)],
        "detail": detail,
    }


def _queue_region(host: str, account: str, name: str, region: str | None) -> str:
    """The region of the queue: AWS's URL names it; moto's does not, so it is
    the region whose SQS has a queue of that name in that account."""
    aws_host = AWS_QUEUE_HOST.fullmatch(host)
    if aws_host:
        return aws_host.group(1)
    regions = sorted(r for r, backend in sqs_backends[account].items() if name in backend.queues)
    if region in regions:
        return region
    if len(regions) == 1:
        return regions[0]
    if not regions:
        raise ValueError(f"no queue {name} in account {account}: create it with CreateQueue first")
    raise ValueError(f"queue {name} exists in {', '.join(regions)}: give region")


def _count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _json(body: bytes) -> dict:
    try:
        parsed = json.loads(body or b"{}")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
