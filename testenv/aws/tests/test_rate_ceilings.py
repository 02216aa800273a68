"""Rate ceilings per quota, account and region, and optionally per caller,
answered like AWS throttles."""

import math
import time

import pytest
import requests
from botocore.exceptions import ClientError

from conftest import ACCOUNT, allow, assume, client, create_role, failure

ALPHA = f"arn:aws:iam::{ACCOUNT}:role/alpha"
BETA = f"arn:aws:iam::{ACCOUNT}:role/beta"
# One call per 10 s: the second call in a test finds the bucket empty.
SLOW = 0.1


@pytest.fixture
def parameter(admin):
    admin.ssm.put_parameter(Name="/app/x", Value="1", Type="String")


@pytest.fixture
def readers(server, admin, parameter):
    """SSM clients of two roles allowed to read, as two parallel tests' operators."""
    clients = {}
    for arn in (ALPHA, BETA):
        create_role(admin, arn.rsplit("/", 1)[1], allow("ssm:GetParameter*", "*"))
        clients[arn] = client(server, "ssm", assume(admin, arn))
    return clients


def set_rate(server, action, per_second, caller=None):
    server.control("PUT", "rate", {"action": action, "per_second": per_second, "caller": caller})


def throttled_calls(call, times: int) -> int:
    throttled = 0
    for _ in range(times):
        try:
            call()
        except ClientError as error:
            assert error.response["Error"]["Code"] == "ThrottlingException"
            throttled += 1
    return throttled


def test_rate_ceiling(server, admin, parameter):
    server.control("PUT", "rate", {"action": "ssm:GetParameters", "per_second": 2})
    started = time.monotonic()
    throttled = throttled_calls(lambda: admin.ssm.get_parameters(Names=["/app/x"]), 12)
    admitted = 12 - throttled
    # A full bucket (one second's worth), then what refilled meanwhile.
    assert 2 <= admitted <= 2 + math.ceil((time.monotonic() - started) * 2)
    assert throttled > 0
    assert server.count("ssm:GetParameters", outcome="ThrottlingException") == throttled


def test_parameter_reads_share_one_quota(server, admin, parameter):
    # One call per 10 s: the second read finds the shared bucket empty.
    server.control("PUT", "rate", {"action": "ssm:GetParametersByPath", "per_second": 0.1})
    admin.ssm.get_parameter(Name="/app/x")
    error = failure(admin.ssm.get_parameters, Names=["/app/x"])
    assert (error.code, error.status, error.message) == (
        "ThrottlingException",
        400,
        "Rate exceeded",
    )


def test_default_ceiling_is_40_per_second_for_parameter_reads(server):
    assert server.control("GET", "rate")["rates"] == [
        {
            "actions": ["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"],
            "per_second": 40.0,
            "caller": None,
        }
    ]


def test_null_lifts_the_ceiling(server, admin, parameter):
    server.control("PUT", "rate", {"action": "ssm:GetParameter", "per_second": None})
    assert throttled_calls(lambda: admin.ssm.get_parameter(Name="/app/x"), 60) == 0


def test_ceiling_on_any_action(server, admin):
    server.control("PUT", "rate", {"action": "kms:ListKeys", "per_second": 0.1})
    admin.kms.list_keys()
    assert failure(admin.kms.list_keys).code == "ThrottlingException"


def test_reset_restores_the_defaults(server):
    server.control("PUT", "rate", {"action": "ssm:GetParameters", "per_second": 5})
    server.control("DELETE", "rate")
    assert server.control("GET", "rate")["rates"][0]["per_second"] == 40.0


def test_invalid_ceiling_is_refused(server):
    response = requests.put(
        f"{server.url}/_fidelity/rate",
        json={"action": "ssm:GetParameters", "per_second": -1},
        timeout=5,
    )
    assert response.status_code == 400


def test_caller_ceiling_throttles_that_caller(server, readers):
    set_rate(server, "ssm:GetParameter", SLOW, ALPHA)
    readers[ALPHA].get_parameter(Name="/app/x")
    error = failure(readers[ALPHA].get_parameter, Name="/app/x")
    assert (error.code, error.status) == ("ThrottlingException", 400)
    assert server.count("ssm:GetParameter", ALPHA, "ThrottlingException") == 1


def test_caller_ceiling_spares_other_callers(server, admin, readers):
    set_rate(server, "ssm:GetParameter", SLOW, ALPHA)
    for _ in range(3):
        readers[BETA].get_parameter(Name="/app/x")
        admin.ssm.get_parameter(Name="/app/x")
    # Nor did their calls take the caller's own token.
    readers[ALPHA].get_parameter(Name="/app/x")


def test_caller_ceiling_covers_the_quota_its_action_shares(server, readers):
    set_rate(server, "ssm:GetParametersByPath", SLOW, ALPHA)
    readers[ALPHA].get_parameter(Name="/app/x")
    assert failure(readers[ALPHA].get_parameters, Names=["/app/x"]).code == "ThrottlingException"


def test_account_ceiling_still_applies_to_a_caller_with_its_own(server, readers):
    set_rate(server, "ssm:GetParameter", SLOW)
    set_rate(server, "ssm:GetParameter", 100, ALPHA)
    readers[ALPHA].get_parameter(Name="/app/x")
    assert failure(readers[ALPHA].get_parameter, Name="/app/x").code == "ThrottlingException"


def test_calls_over_a_caller_ceiling_leave_the_account_quota_to_others(server, readers):
    # The account's bucket holds 2 calls and refills one per 0.5 s.
    set_rate(server, "ssm:GetParameter", 2)
    set_rate(server, "ssm:GetParameter", SLOW, ALPHA)
    assert throttled_calls(lambda: readers[ALPHA].get_parameter(Name="/app/x"), 3) == 2
    readers[BETA].get_parameter(Name="/app/x")


def test_null_removes_a_callers_ceiling(server):
    set_rate(server, "ssm:GetParameter", SLOW, ALPHA)
    set_rate(server, "ssm:GetParameter", None, ALPHA)
    assert [r["caller"] for r in server.control("GET", "rate")["rates"]] == [None]


def test_deleting_one_callers_ceilings_keeps_the_rest(server):
    set_rate(server, "ssm:GetParameters", 5)
    set_rate(server, "ssm:GetParameters", 1, ALPHA)
    set_rate(server, "kms:Decrypt", 1, ALPHA)
    set_rate(server, "ssm:GetParameters", 2, BETA)
    rates = server.control("DELETE", f"rate?caller={ALPHA}")["rates"]
    assert [(r["caller"], r["per_second"]) for r in rates] == [(None, 5), (BETA, 2)]


def test_rate_caller_must_be_a_role_arn(server):
    response = requests.delete(f"{server.url}/_fidelity/rate?caller=admin", timeout=5)
    assert response.status_code == 400
    assert "caller must be a role ARN" in response.json()["error"]
