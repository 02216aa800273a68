"""Rate ceilings per quota, account and region, answered like AWS throttles."""

import math
import time

import pytest
import requests
from botocore.exceptions import ClientError

from conftest import failure


@pytest.fixture
def parameter(admin):
    admin.ssm.put_parameter(Name="/app/x", Value="1", Type="String")


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
