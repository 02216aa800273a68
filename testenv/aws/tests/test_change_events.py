"""Parameter Store changes send EventBridge's "Parameter Store Change" event
to the SQS queues registered with `PUT /_fidelity/change-events`, with the
delay, duplication and loss asked for."""

import json
import re
import time

import requests

from conftest import ACCOUNT, REGION, assume, client, failure

OTHER_REGION = "eu-west-1"
OTHER_ACCOUNT = "111111111111"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def events_queue(server, name="events", region=REGION) -> tuple[object, str]:
    """An SQS client and the URL of a new queue (moto's form: no region in it)."""
    sqs = client(server, "sqs", region=region)
    return sqs, sqs.create_queue(QueueName=name)["QueueUrl"]


def register(server, url, **fields) -> dict:
    return server.control("PUT", "change-events", {"queue_url": url, **fields})


def receive(sqs, url, count: int, seconds: float = 5) -> list[dict]:
    """The next `count` events on the queue (deleted from it); fails if
    fewer arrive within `seconds`."""
    events = []
    deadline = time.monotonic() + seconds
    while len(events) < count:
        assert time.monotonic() < deadline, f"{len(events)} of {count} events arrived: {events}"
        answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        for message in answer.get("Messages", []):
            events.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        if len(events) < count:
            time.sleep(0.05)
    return events


def nothing_waiting(sqs, url) -> bool:
    # Events are sent before the change's answer returns: none later.
    answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    return not answer.get("Messages")


def expected(operation, name, type_="String", description=None, account=ACCOUNT, region=REGION):
    detail = {"operation": operation, "name": name, "type": type_}
    if description is not None:
        detail["description"] = description
    return {
        "version": "0",
        "detail-type": "Parameter Store Change",
        "source": "aws.ssm",
        "account": account,
        "region": region,
        "resources": [f"arn:aws:ssm:{region}:{account}:parameter/{name.removeprefix('/')}"],
        "detail": detail,
    }


def without_id_and_time(event: dict) -> dict:
    assert UUID.fullmatch(event["id"]), event
    assert TIME.fullmatch(event["time"]), event
    return {k: v for k, v in event.items() if k not in ("id", "time")}


def test_create_and_update_events(server, admin):
    sqs, url = events_queue(server)
    register(server, url)
    admin.ssm.put_parameter(Name="/app/a", Value="1", Type="String", Description="Sample")
    admin.ssm.put_parameter(Name="plain", Value="x,y", Type="StringList")
    admin.ssm.put_parameter(Name="/app/secret", Value="s", Type="SecureString")
    # Overwrite without Type keeps the parameter's type.
    admin.ssm.put_parameter(Name="/app/a", Value="2", Overwrite=True, Description="Changed")
    # Overwrite of a name that does not exist creates it; so does putting a
    # deleted name again.
    admin.ssm.put_parameter(Name="/app/new", Value="1", Type="String", Overwrite=True)
    admin.ssm.delete_parameter(Name="plain")
    admin.ssm.put_parameter(Name="plain", Value="z", Type="String")
    events = [without_id_and_time(e) for e in receive(sqs, url, 7)]
    assert events == [
        expected("Create", "/app/a", description="Sample"),
        expected("Create", "plain", "StringList"),
        expected("Create", "/app/secret", "SecureString"),
        expected("Update", "/app/a", description="Changed"),
        expected("Create", "/app/new"),
        expected("Delete", "plain", "StringList"),
        expected("Create", "plain"),
    ]
    assert events[1]["resources"] == [f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/plain"]
    assert nothing_waiting(sqs, url)


def test_delete_events_name_the_deleted_parameters(server, admin):
    sqs, url = events_queue(server)
    for name in ("/app/a", "/app/b", "/app/c"):
        admin.ssm.put_parameter(Name=name, Value="v", Type="SecureString", Description="d")
    register(server, url)
    admin.ssm.delete_parameter(Name="/app/a")
    answer = admin.ssm.delete_parameters(Names=["/app/b", "/app/missing", "/app/c"])
    assert answer["InvalidParameters"] == ["/app/missing"]
    events = [without_id_and_time(e) for e in receive(sqs, url, 3)]
    assert events == [
        expected("Delete", name, "SecureString", "d") for name in ("/app/a", "/app/b", "/app/c")
    ]
    assert nothing_waiting(sqs, url)


def test_label_parameter_version_event(server, admin):
    sqs, url = events_queue(server)
    admin.ssm.put_parameter(Name="/app/a", Value="1", Type="String")
    admin.ssm.put_parameter(Name="/app/a", Value="2", Overwrite=True)
    register(server, url)
    admin.ssm.label_parameter_version(Name="/app/a", ParameterVersion=1, Labels=["prod"])
    [event] = receive(sqs, url, 1)
    assert without_id_and_time(event) == expected("LabelParameterVersion", "/app/a")
    # Every label invalid: nothing was labelled, no event.
    answer = admin.ssm.label_parameter_version(Name="/app/a", Labels=["aws-reserved"])
    assert answer["InvalidLabels"] == ["aws-reserved"]
    assert nothing_waiting(sqs, url)


def test_refused_changes_send_nothing(server, admin):
    sqs, url = events_queue(server)
    admin.ssm.put_parameter(Name="/app/a", Value="1", Type="String")
    register(server, url)
    refused = failure(admin.ssm.put_parameter, Name="/app/a", Value="2", Type="String")
    assert refused.code == "ParameterAlreadyExists"
    assert failure(admin.ssm.delete_parameter, Name="/app/missing").code == "ParameterNotFound"
    server.control("POST", "faults", {"action": "ssm:PutParameter", "kind": "throttle"})
    refused = failure(admin.ssm.put_parameter, Name="/app/b", Value="1", Type="String")
    assert refused.code == "ThrottlingException"
    assert nothing_waiting(sqs, url)
    assert server.control("GET", "change-events")["targets"][0]["delivered"] == 0


def test_delay_holds_each_event_back(server, admin):
    sqs, url = events_queue(server)
    register(server, url, delay_seconds=2)
    started = time.monotonic()
    admin.ssm.put_parameter(Name="/app/a", Value="1", Type="String")
    assert nothing_waiting(sqs, url)
    [event] = receive(sqs, url, 1, seconds=6)
    assert time.monotonic() - started >= 1.9
    assert event["detail"]["operation"] == "Create"


def test_duplicate_sends_each_event_twice_with_one_id(server, admin):
    sqs, url = events_queue(server)
    register(server, url, duplicate=True)
    admin.ssm.put_parameter(Name="/app/a", Value="1", Type="String")
    first, second = receive(sqs, url, 2)
    assert first == second
    assert nothing_waiting(sqs, url)
    [target] = server.control("GET", "change-events")["targets"]
    assert (target["delivered"], target["dropped"]) == (1, 0)


def test_drop_next_loses_exactly_that_many_events(server, admin):
    sqs, url = events_queue(server)
    register(server, url, drop_next=1)
    for name in ("/app/a", "/app/b", "/app/c"):
        admin.ssm.put_parameter(Name=name, Value="v", Type="String")
    events = receive(sqs, url, 2)
    assert [e["detail"]["name"] for e in events] == ["/app/b", "/app/c"]
    assert nothing_waiting(sqs, url)
    [target] = server.control("GET", "change-events")["targets"]
    assert (target["drop_next"], target["delivered"], target["dropped"]) == (0, 2, 1)


def test_only_the_registered_region_and_account_are_delivered(server, admin):
    sqs, url = events_queue(server)
    _, other_region_url = events_queue(server, "other-region")
    _, other_account_url = events_queue(server, "other-account")
    assert register(server, url)["region"] == REGION
    register(server, other_region_url, region=OTHER_REGION)
    register(server, other_account_url, account=OTHER_ACCOUNT)
    client(server, "ssm", region=OTHER_REGION).put_parameter(Name="/eu", Value="v", Type="String")
    member = assume(admin, f"arn:aws:iam::{OTHER_ACCOUNT}:role/OrganizationAccountAccessRole")
    client(server, "ssm", member).put_parameter(Name="/member", Value="v", Type="String")
    admin.ssm.put_parameter(Name="/here", Value="v", Type="String")
    [event] = receive(sqs, url, 1)
    assert event["detail"]["name"] == "/here"
    assert nothing_waiting(sqs, url)
    [event] = receive(sqs, other_region_url, 1)
    assert without_id_and_time(event) == expected("Create", "/eu", region=OTHER_REGION)
    [event] = receive(sqs, other_account_url, 1)
    assert without_id_and_time(event) == expected("Create", "/member", account=OTHER_ACCOUNT)


def test_a_queue_of_another_region_gets_that_regions_events(server, admin):
    sqs, url = events_queue(server, "eu-events", region=OTHER_REGION)
    assert register(server, url)["region"] == OTHER_REGION
    client(server, "ssm", region=OTHER_REGION).put_parameter(Name="/eu", Value="v", Type="String")
    admin.ssm.put_parameter(Name="/us", Value="v", Type="String")
    [event] = receive(sqs, url, 1)
    assert event["region"] == OTHER_REGION
    assert nothing_waiting(sqs, url)


def test_deliveries_are_not_counted_as_aws_calls(server, admin):
    sqs, url = events_queue(server)
    register(server, url)
    admin.ssm.put_parameter(Name="/app/a", Value="v", Type="String")
    assert {c["action"] for c in server.counters()} == {"sqs:CreateQueue", "ssm:PutParameter"}


def test_put_replaces_get_lists_delete_clears(server, admin):
    _, url = events_queue(server)
    register(server, url, delay_seconds=5)
    answer = register(server, url, duplicate=True, drop_next=2)
    assert answer == {
        "queue_url": url,
        "account": ACCOUNT,
        "region": REGION,
        "delay_seconds": 0,
        "duplicate": True,
        "drop_next": 2,
        "delivered": 0,
        "dropped": 0,
        "undeliverable": 0,
    }
    assert server.control("GET", "change-events") == {"targets": [answer]}
    assert server.control("DELETE", "change-events") == {"targets": []}


def test_a_deleted_queue_counts_events_as_undeliverable(server, admin):
    sqs, url = events_queue(server)
    register(server, url)
    sqs.delete_queue(QueueUrl=url)
    admin.ssm.put_parameter(Name="/app/a", Value="v", Type="String")
    [target] = server.control("GET", "change-events")["targets"]
    assert (target["delivered"], target["undeliverable"]) == (0, 1)


def test_invalid_targets_are_refused(server):
    sqs, url = events_queue(server)
    for body, error in [
        ({"queue_url": "not a url"}, "queue_url must be a queue URL"),
        ({"queue_url": url.replace("events", "missing")}, "no queue missing"),
        ({"queue_url": url, "delay_seconds": 901}, "delay_seconds must be"),
        ({"queue_url": url, "drop_next": -1}, "drop_next must be"),
        ({"queue_url": url, "duplicate": "yes"}, "duplicate must be"),
        ({"queue_url": url, "account": "1"}, "account must be"),
        ({"queue_url": url, "region": "moon"}, "region must be"),
    ]:
        answer = requests.put(f"{server.url}/_fidelity/change-events", json=body, timeout=5)
        assert answer.status_code == 400, body
        assert answer.json()["error"].startswith(error), answer.json()
