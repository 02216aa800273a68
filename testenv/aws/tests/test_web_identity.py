"""AssumeRoleWithWebIdentity checks the token and the role's trust policy."""

import time

import boto3
import pytest
import requests
from botocore import UNSIGNED
from botocore.config import Config
from cryptography.hazmat.primitives.asymmetric import rsa

from conftest import (
    ACCOUNT,
    REGION,
    allow,
    client,
    create_role,
    failure,
    irsa_trust,
)

ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/operator"


@pytest.fixture
def sts(server):
    return client(
        server, "sts", config=Config(signature_version=UNSIGNED, retries={"total_max_attempts": 1})
    )


@pytest.fixture
def operator_role(admin, oidc_provider):
    return create_role(admin, "operator", allow("ssm:GetParameters", "*"), trust=irsa_trust())


def assume(sts, token, role_arn=ROLE_ARN, **extra):
    return sts.assume_role_with_web_identity(
        RoleArn=role_arn, RoleSessionName="operator-session", WebIdentityToken=token, **extra
    )


def test_web_identity_matching_the_trust_policy_gets_credentials(
    server, sts, operator_role, web_identity_token
):
    answer = assume(sts, web_identity_token(), DurationSeconds=900)
    assert (
        answer["AssumedRoleUser"]["Arn"]
        == f"arn:aws:sts::{ACCOUNT}:assumed-role/operator/operator-session"
    )
    remaining = answer["Credentials"]["Expiration"].timestamp() - time.time()
    assert 800 < remaining <= 900
    identity = client(server, "sts", answer["Credentials"]).get_caller_identity()
    assert identity["Arn"] == answer["AssumedRoleUser"]["Arn"]


def test_a_session_longer_than_the_role_allows_is_a_validation_error(
    admin, sts, operator_role, web_identity_token
):
    error = failure(assume, sts, web_identity_token(), DurationSeconds=7200)
    assert (error.code, error.status) == ("ValidationError", 400)
    assert error.message == (
        "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
    )
    admin.iam.update_role(RoleName="operator", MaxSessionDuration=7200)
    assert assume(sts, web_identity_token(), DurationSeconds=7200)["Credentials"]


def test_a_session_out_of_sts_range_is_a_validation_error(
    server, operator_role, web_identity_token
):
    # botocore checks the range itself; the Rust SDK does not.
    sts = client(
        server,
        "sts",
        config=Config(
            signature_version=UNSIGNED,
            retries={"total_max_attempts": 1},
            parameter_validation=False,
        ),
    )
    for duration, bound in [(600, "greater than or equal to 900"), (50000, "less than or equal to 43200")]:
        error = failure(assume, sts, web_identity_token(), DurationSeconds=duration)
        assert (error.code, error.status) == ("ValidationError", 400)
        assert error.message == (
            f"1 validation error detected: Value '{duration}' at 'durationSeconds' "
            f"failed to satisfy constraint: Member must have value {bound}"
        )


def test_web_identity_with_wrong_sub_is_access_denied_403(sts, operator_role, web_identity_token):
    error = failure(assume, sts, web_identity_token(sub="system:serviceaccount:other:intruder"))
    assert (error.code, error.status) == ("AccessDenied", 403)
    assert error.message == "Not authorized to perform sts:AssumeRoleWithWebIdentity"


def test_string_like_sub_condition_matches_wildcards(admin, sts, oidc_provider, web_identity_token):
    arn = create_role(
        admin,
        "any-in-namespace",
        trust=irsa_trust(sub="system:serviceaccount:ssm-operator:*", operator="StringLike"),
    )
    assert assume(sts, web_identity_token(), role_arn=arn)["Credentials"]["AccessKeyId"]
    error = failure(
        assume, sts, web_identity_token(sub="system:serviceaccount:default:x"), role_arn=arn
    )
    assert error.code == "AccessDenied"


def test_trust_policy_for_another_provider_is_access_denied(
    admin, sts, oidc_provider, web_identity_token
):
    trust = irsa_trust()
    trust["Principal"] = {
        "Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/oidc.example.com/id/OTHER"
    }
    arn = create_role(admin, "other-cluster", trust=trust)
    assert failure(assume, sts, web_identity_token(), role_arn=arn).status == 403


def test_unknown_role_is_access_denied(sts, oidc_provider, web_identity_token):
    error = failure(
        assume, sts, web_identity_token(), role_arn=f"arn:aws:iam::{ACCOUNT}:role/missing"
    )
    assert (error.code, error.status) == ("AccessDenied", 403)


def test_expired_token(sts, operator_role, web_identity_token):
    expired_at = int(time.time()) - 60
    error = failure(assume, sts, web_identity_token(exp=expired_at))
    assert (error.code, error.status) == ("ExpiredTokenException", 400)
    assert error.message.startswith("Token expired: current date/time ")
    assert error.message.endswith(f" must be before the expiration date/time{expired_at}")


def test_unknown_issuer_is_invalid_identity_token(sts, operator_role, web_identity_token):
    issuer = "https://oidc.eks.us-east-1.amazonaws.com/id/UNKNOWN"
    error = failure(assume, sts, web_identity_token(iss=issuer))
    assert (error.code, error.status) == ("InvalidIdentityToken", 400)
    assert error.message == f"No OpenIDConnect provider found in your account for {issuer}"


def test_wrong_audience_is_invalid_identity_token(sts, operator_role, web_identity_token):
    error = failure(assume, sts, web_identity_token(aud="https://kubernetes.default.svc"))
    assert (error.code, error.status, error.message) == (
        "InvalidIdentityToken",
        400,
        "Incorrect token audience",
    )


def test_token_signed_by_another_key_is_invalid_identity_token(
    sts, operator_role, web_identity_token
):
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    error = failure(assume, sts, web_identity_token(key=stranger))
    assert (error.code, error.status) == ("InvalidIdentityToken", 400)
    assert "verify signature" in error.message


def test_malformed_token_is_invalid_identity_token(sts, operator_role):
    error = failure(assume, sts, "not-a-jwt")
    assert (error.code, error.status) == ("InvalidIdentityToken", 400)


def test_sts_errors_answer_json_to_json_requests(server, operator_role, web_identity_token):
    response = requests.post(
        server.url,
        headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "AWSSecurityTokenServiceV20110615.AssumeRoleWithWebIdentity",
        },
        json={
            "RoleArn": ROLE_ARN,
            "RoleSessionName": "s",
            "WebIdentityToken": web_identity_token(sub="other"),
        },
        timeout=10,
    )
    assert response.status_code == 403
    assert response.json() == {
        "__type": "AccessDenied",
        "message": "Not authorized to perform sts:AssumeRoleWithWebIdentity",
    }


def test_sts_errors_answer_xml_to_query_requests(server, operator_role, web_identity_token):
    response = requests.post(
        server.url,
        data={
            "Action": "AssumeRoleWithWebIdentity",
            "Version": "2011-06-15",
            "RoleArn": ROLE_ARN,
            "RoleSessionName": "s",
            "WebIdentityToken": web_identity_token(sub="other"),
        },
        timeout=10,
    )
    assert response.status_code == 403
    assert response.text.startswith(
        '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
        "<Error><Type>Sender</Type><Code>AccessDenied</Code>"
    )


def test_sdk_web_identity_provider_reads_parameters_as_the_role(
    server, admin, operator_role, web_identity_token, tmp_path, monkeypatch
):
    admin.ssm.put_parameter(Name="/app/x", Value="1", Type="String")
    token_file = tmp_path / "token"
    token_file.write_text(web_identity_token())
    monkeypatch.setenv("AWS_ROLE_ARN", ROLE_ARN)
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.url)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    ssm = boto3.session.Session(region_name=REGION).client("ssm")
    assert ssm.get_parameters(Names=["/app/x"])["Parameters"][0]["Value"] == "1"
    assert server.count("sts:AssumeRoleWithWebIdentity", ROLE_ARN) == 1
    assert server.count("ssm:GetParameters", ROLE_ARN) == 1
