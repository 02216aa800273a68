"""Faults of credentials (expired sessions, bad signatures, STS's identity
provider unreachable) and of KMS behind SSM (throttled, failing inside)."""

import time

import requests

from conftest import ACCOUNT, allow, assume, client, create_role, failure, wait_until_expired

READER = f"arn:aws:iam::{ACCOUNT}:role/reader"


def fault(server, **body):
    server.control("POST", "faults", body)


def web_identity_call(server, role_arn: str) -> requests.Response:
    return requests.post(
        server.url,
        data={
            "Action": "AssumeRoleWithWebIdentity",
            "Version": "2011-06-15",
            "RoleArn": role_arn,
            "RoleSessionName": "s",
            "WebIdentityToken": "t",
        },
        timeout=10,
    )


def secure_string(admin, name="/app/secret"):
    key = admin.kms.create_key()["KeyMetadata"]["KeyId"]
    admin.ssm.put_parameter(Name=name, Value="s3cr3t", Type="SecureString", KeyId=key)
    return key


def test_expired_token_fault_answers_expired_token_exception(server, admin):
    admin.ssm.put_parameter(Name="/app/x", Value="1", Type="String")
    fault(server, action="ssm:GetParameters", kind="expired_token")
    error = failure(admin.ssm.get_parameters, Names=["/app/x"])
    assert (error.code, error.status, error.message) == (
        "ExpiredTokenException",
        400,
        "The security token included in the request is expired",
    )


def test_expired_token_fault_on_web_identity_is_stss_token_expiry(server):
    fault(server, action="sts:AssumeRoleWithWebIdentity", kind="expired_token")
    response = web_identity_call(server, f"arn:aws:iam::{ACCOUNT}:role/r")
    assert response.status_code == 400
    assert "<Code>ExpiredTokenException</Code><Message>Token expired:" in response.text


def test_invalid_signature_fault_per_protocol(server, admin):
    fault(server, action="*", kind="invalid_signature", count=2)
    error = failure(admin.ssm.describe_parameters)
    assert (error.code, error.status) == ("InvalidSignatureException", 400)
    assert error.message.startswith("The request signature we calculated does not match")
    error = failure(admin.sts.get_caller_identity)
    assert (error.code, error.status) == ("SignatureDoesNotMatch", 403)


def test_idp_communication_error_answers_on_web_identity_only(server):
    role = f"arn:aws:iam::{ACCOUNT}:role/r"
    fault(server, action="sts:AssumeRoleWithWebIdentity", kind="idp_communication_error")
    response = web_identity_call(server, role)
    assert response.status_code == 400
    assert "<Type>Sender</Type><Code>IDPCommunicationError</Code>" in response.text
    assert server.count("sts:AssumeRoleWithWebIdentity", role, "IDPCommunicationError") == 1


def test_short_lived_credentials_are_refused_after_their_expiry(server, admin):
    create_role(admin, "reader", allow("ssm:DescribeParameters"))
    # Long enough for one call before the expiry on a loaded machine (the
    # Expiration has whole seconds), short enough to wait out.
    fault(server, action="sts:AssumeRole", kind="short_lived", seconds=4)
    credentials = assume(admin, READER)
    lifetime = credentials["Expiration"].timestamp() - time.time()
    assert lifetime <= 5, lifetime
    reader = client(server, "ssm", credentials)
    reader.describe_parameters()
    wait_until_expired(reader)
    # Sessions of normal length keep working.
    assert client(server, "ssm", assume(admin, READER)).describe_parameters()


def test_kms_throttle_inside_ssm_carries_kms_throttling_text(server, admin):
    secure_string(admin)
    fault(server, action="ssm:GetParameters", kind="kms_throttle")
    error = failure(admin.ssm.get_parameters, Names=["/app/secret"], WithDecryption=True)
    assert (error.code, error.status, error.kms_error_code) == (
        "ThrottlingException",
        400,
        "ThrottlingException",
    )
    assert error.message.startswith("You have exceeded the rate at which you may call KMS.")
    assert server.count("kms:Decrypt", outcome="ThrottlingException") == 1


def test_kms_faults_spare_reads_that_do_not_decrypt(server, admin):
    secure_string(admin)
    admin.ssm.put_parameter(Name="/app/plain", Value="1", Type="String")
    fault(server, action="ssm:GetParameters", kind="kms_throttle")
    admin.ssm.get_parameters(Names=["/app/secret"])
    admin.ssm.get_parameters(Names=["/app/plain"], WithDecryption=True)
    assert len(server.control("GET", "faults")["faults"]) == 1
    assert failure(admin.ssm.get_parameters, Names=["/app/secret"], WithDecryption=True).code


def test_kms_throttle_can_come_wrapped_in_another_ssm_code(server, admin):
    secure_string(admin)
    fault(server, action="ssm:GetParameters", kind="kms_throttle", code="InvalidKeyId")
    error = failure(admin.ssm.get_parameters, Names=["/app/secret"], WithDecryption=True)
    assert (error.code, error.status, error.kms_error_code) == (
        "InvalidKeyId",
        400,
        "ThrottlingException",
    )


def test_kms_internal_error_inside_ssm_is_a_server_error(server, admin):
    secure_string(admin)
    fault(server, action="ssm:GetParametersByPath", kind="kms_internal")
    error = failure(admin.ssm.get_parameters_by_path, Path="/app", WithDecryption=True)
    assert (error.code, error.status, error.kms_error_code) == (
        "InternalServerError",
        500,
        "KMSInternalException",
    )
    assert "Status Code: 500" in error.message
    assert server.count("kms:Decrypt", outcome="KMSInternalException") == 1
