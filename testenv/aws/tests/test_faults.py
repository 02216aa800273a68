"""Injected faults: the next N calls of an action fail the way AWS fails,
for every caller or for one."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError, ReadTimeoutError

from conftest import ACCOUNT, allow, assume, client, create_role, failure

ALPHA = f"arn:aws:iam::{ACCOUNT}:role/alpha"
BETA = f"arn:aws:iam::{ACCOUNT}:role/beta"
# Patient enough to see a hang end when it is released, not by its own timeout.
PATIENT = Config(read_timeout=20, retries={"total_max_attempts": 1})


@pytest.fixture
def parameter(admin):
    admin.ssm.put_parameter(Name="/app/x", Value="1", Type="String")


@pytest.fixture
def readers(server, admin, parameter):
    """SSM clients of two roles allowed to read, as two parallel tests' operators."""
    clients = {}
    for arn in (ALPHA, BETA):
        create_role(admin, arn.rsplit("/", 1)[1], allow("ssm:GetParameter", "*"))
        clients[arn] = client(server, "ssm", assume(admin, arn), config=PATIENT)
    return clients


@pytest.fixture
def calls(server):
    pool = ThreadPoolExecutor(max_workers=2)
    yield pool
    # A failed test must not wait out the hangs it left.
    server.control("DELETE", "faults")
    pool.shutdown()


def start_hanging_call(server, calls, ssm, caller):
    """A GetParameter of `caller` that hangs on its fault; returns once it hangs."""
    fault = {"action": "ssm:GetParameter", "kind": "hang", "caller": caller}
    server.control("POST", "faults", fault)
    hanging = calls.submit(ssm.get_parameter, Name="/app/x")
    deadline = time.monotonic() + 10
    while any(f["caller"] == caller for f in server.control("GET", "faults")["faults"]):
        assert time.monotonic() < deadline, "the call never reached its fault"
        time.sleep(0.02)
    return hanging


def error_code_when_done(hanging) -> str:
    """The error a hanging call ends with, waiting far less than its hang."""
    with pytest.raises(ClientError) as raised:
        hanging.result(timeout=10)
    return raised.value.response["Error"]["Code"]


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
        {
            "action": "ssm:GetParameters",
            "kind": "throttle",
            "count": 1,
            "seconds": 30.0,
            "caller": None,
        }
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


def test_fault_for_a_caller_hits_that_callers_calls(server, readers):
    server.control(
        "POST", "faults", {"action": "ssm:GetParameter", "kind": "throttle", "caller": ALPHA}
    )
    assert failure(readers[ALPHA].get_parameter, Name="/app/x").code == "ThrottlingException"
    assert server.count("ssm:GetParameter", ALPHA, "ThrottlingException") == 1


def test_fault_for_a_caller_spares_other_callers(server, admin, readers):
    server.control("POST", "faults", {"action": "*", "kind": "unavailable", "caller": ALPHA})
    assert readers[BETA].get_parameter(Name="/app/x")["Parameter"]["Value"] == "1"
    assert admin.ssm.get_parameter(Name="/app/x")["Parameter"]["Value"] == "1"
    assert [f["caller"] for f in server.control("GET", "faults")["faults"]] == [ALPHA]


def test_fault_for_a_caller_hits_its_unsigned_web_identity_calls(server):
    # Unsigned, the call is counted (and faulted) under the role it asks for.
    server.control(
        "POST",
        "faults",
        {"action": "sts:AssumeRoleWithWebIdentity", "kind": "throttle", "caller": ALPHA},
    )
    response = requests.post(
        server.url,
        data={
            "Action": "AssumeRoleWithWebIdentity",
            "Version": "2011-06-15",
            "RoleArn": ALPHA,
            "RoleSessionName": "s",
            "WebIdentityToken": "t",
        },
        timeout=10,
    )
    assert "<Code>Throttling</Code>" in response.text
    assert server.count("sts:AssumeRoleWithWebIdentity", ALPHA, "Throttling") == 1


def test_clearing_one_callers_faults_keeps_the_others(server):
    for caller in (ALPHA, BETA, None):
        server.control("POST", "faults", {"action": "*", "kind": "throttle", "caller": caller})
    remaining = server.control("DELETE", f"faults?caller={ALPHA}")["faults"]
    assert [f["caller"] for f in remaining] == [BETA, None]


def test_clearing_one_callers_faults_releases_its_hanging_calls(server, readers, calls):
    hanging = start_hanging_call(server, calls, readers[ALPHA], ALPHA)
    server.control("DELETE", f"faults?caller={ALPHA}")
    # Well before the fault's 30 s: the hang ended when it was cleared.
    assert error_code_when_done(hanging) == "InternalServerError"


def test_clearing_one_callers_faults_leaves_other_callers_hanging(server, readers, calls):
    alpha = start_hanging_call(server, calls, readers[ALPHA], ALPHA)
    beta = start_hanging_call(server, calls, readers[BETA], BETA)
    server.control("DELETE", f"faults?caller={ALPHA}")
    error_code_when_done(alpha)
    with pytest.raises(TimeoutError):
        beta.result(timeout=1)
    server.control("DELETE", "faults")
    assert error_code_when_done(beta) == "InternalServerError"


def test_fault_caller_must_be_a_role_arn(server):
    session = f"arn:aws:sts::{ACCOUNT}:assumed-role/alpha/session"
    response = requests.post(
        f"{server.url}/_fidelity/faults",
        json={"action": "*", "kind": "throttle", "caller": session},
        timeout=5,
    )
    assert response.status_code == 400
    assert "caller must be a role ARN" in response.json()["error"]
