"""Injected faults: the next N calls of an action fail the way AWS fails."""

import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ReadTimeoutError

from conftest import client, failure


@pytest.fixture
def parameter(admin):
    admin.ssm.put_parameter(Name="/app/x", Value="1", Type="String")


def test_throttle_fault_answers_throttling_exception(server, admin, parameter):
    server.control(
        "POST", "faults", {"action": "ssm:GetParameters", "kind": "throttle", "count": 2}
    )
    for _ in range(2):
        error = failure(admin.ssm.get_parameters, Names=["/app/x"])
        assert (error.code, error.status, error.message) == (
            "ThrottlingException",
            400,
            "Rate exceeded",
        )
    assert admin.ssm.get_parameters(Names=["/app/x"])["Parameters"]
    assert server.count("ssm:GetParameters", outcome="ThrottlingException") == 2


def test_fault_only_hits_its_action(server, admin, parameter):
    server.control("POST", "faults", {"action": "ssm:GetParameters", "kind": "throttle"})
    assert admin.ssm.get_parameter(Name="/app/x")["Parameter"]["Value"] == "1"
    assert server.control("GET", "faults")["faults"] == [
        {"action": "ssm:GetParameters", "kind": "throttle", "count": 1, "seconds": 30.0}
    ]


def test_unavailable_fault_answers_503(server, admin, parameter):
    server.control("POST", "faults", {"action": "ssm:GetParameter", "kind": "unavailable"})
    error = failure(admin.ssm.get_parameter, Name="/app/x")
    assert (error.code, error.status) == ("ServiceUnavailable", 503)


def test_hang_fault_outlasts_the_client_timeout_then_fails(server, admin, parameter):
    server.control("POST", "faults", {"action": "ssm:GetParameter", "kind": "hang", "seconds": 0.5})
    impatient = client(
        server, "ssm", config=Config(read_timeout=0.2, retries={"total_max_attempts": 1})
    )
    with pytest.raises(ReadTimeoutError):
        impatient.get_parameter(Name="/app/x")
    server.control("POST", "faults", {"action": "ssm:GetParameter", "kind": "hang", "seconds": 0})
    error = failure(admin.ssm.get_parameter, Name="/app/x")
    assert (error.code, error.status) == ("InternalServerError", 500)


def test_wildcard_fault_matches_every_action(server, admin):
    server.control("POST", "faults", {"action": "*", "kind": "throttle", "count": 2})
    assert failure(admin.kms.list_keys).code == "ThrottlingException"
    assert failure(admin.iam.list_roles).code == "Throttling"
    assert admin.kms.list_keys()["Keys"] == []


def test_sts_faults_answer_in_xml(server, admin):
    server.control("POST", "faults", {"action": "sts:GetCallerIdentity", "kind": "unavailable"})
    error = failure(admin.sts.get_caller_identity)
    assert (error.code, error.status) == ("ServiceUnavailable", 503)


def test_web_identity_throttle_answers_sts_throttling(server):
    # STS (a query-protocol service) names it Throttling, not ThrottlingException.
    server.control(
        "POST", "faults", {"action": "sts:AssumeRoleWithWebIdentity", "kind": "throttle"}
    )
    response = requests.post(
        server.url,
        data={
            "Action": "AssumeRoleWithWebIdentity",
            "Version": "2011-06-15",
            "RoleArn": "arn:aws:iam::123456789012:role/r",
            "RoleSessionName": "s",
            "WebIdentityToken": "t",
        },
        timeout=10,
    )
    assert response.status_code == 400
    assert (
        "<Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message>"
        in response.text
    )
    assert (
        server.count(
            "sts:AssumeRoleWithWebIdentity", "arn:aws:iam::123456789012:role/r", "Throttling"
        )
        == 1
    )


def test_clearing_faults(server, admin, parameter):
    server.control("POST", "faults", {"action": "*", "kind": "throttle", "count": 5})
    server.control("DELETE", "faults")
    assert admin.ssm.get_parameter(Name="/app/x")
    assert server.control("GET", "faults") == {"faults": []}


def test_invalid_fault_is_refused(server):
    response = requests.post(
        f"{server.url}/_fidelity/faults",
        json={"action": "ssm:GetParameter", "kind": "explode"},
        timeout=5,
    )
    assert response.status_code == 400
    assert "kind" in response.json()["error"]
