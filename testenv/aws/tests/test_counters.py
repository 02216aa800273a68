"""Calls are counted per action, caller and outcome; so are the KMS decrypts
SSM makes on a caller's behalf."""

import requests

from conftest import ACCOUNT, allow, assume, client, create_role, failure

READER = f"arn:aws:iam::{ACCOUNT}:role/reader"


def test_counters_count_decrypts_per_caller(server, admin):
    for name in ("/app/a", "/app/b"):
        admin.ssm.put_parameter(Name=name, Value="v", Type="SecureString")
    admin.ssm.put_parameter(Name="/app/plain", Value="v", Type="String")
    create_role(admin, "reader", allow("ssm:GetParameters", "*"))
    ssm = client(server, "ssm", assume(admin, READER))
    ssm.get_parameters(Names=["/app/a", "/app/b", "/app/plain"], WithDecryption=True)
    ssm.get_parameters(Names=["/app/a", "/app/b"])
    admin.ssm.get_parameters(Names=["/app/a"], WithDecryption=True)
    assert server.count("ssm:GetParameters", READER) == 2
    assert server.count("kms:Decrypt", READER) == 2
    assert server.count("kms:Decrypt", "admin") == 1


def test_refused_decrypts_are_counted_with_the_kms_error_code(server, admin):
    key = admin.kms.create_key()["KeyMetadata"]
    admin.ssm.put_parameter(Name="/app/a", Value="v", Type="SecureString", KeyId=key["KeyId"])
    create_role(admin, "reader", allow("ssm:GetParameter", "*"))
    ssm = client(server, "ssm", assume(admin, READER))
    failure(ssm.get_parameter, Name="/app/a", WithDecryption=True)
    admin.kms.disable_key(KeyId=key["KeyId"])
    failure(admin.ssm.get_parameter, Name="/app/a", WithDecryption=True)
    assert server.count("kms:Decrypt", READER, "AccessDeniedException") == 1
    assert server.count("ssm:GetParameter", READER, "AccessDeniedException") == 1
    assert server.count("kms:Decrypt", "admin", "DisabledException") == 1
    assert server.count("ssm:GetParameter", "admin", "InvalidKeyId") == 1


def test_errors_from_moto_are_counted_by_code(server, admin):
    failure(admin.ssm.get_parameter, Name="/app/missing")
    assert server.count("ssm:GetParameter", outcome="ParameterNotFound") == 1


def test_every_service_is_counted_under_its_prefix(server, admin):
    admin.iam.list_roles()
    admin.kms.list_keys()
    admin.sts.get_caller_identity()
    admin.ssm.describe_parameters()
    actions = {c["action"] for c in server.counters()}
    assert actions == {
        "iam:ListRoles",
        "kms:ListKeys",
        "sts:GetCallerIdentity",
        "ssm:DescribeParameters",
    }


def test_control_endpoints_are_never_counted(server):
    requests.get(f"{server.url}/_fidelity/health", timeout=5)
    server.control("GET", "rate")
    requests.post(f"{server.url}/moto-api/reset", timeout=5)
    assert server.counters() == []


def test_reset_zeroes_the_counters(server, admin):
    admin.kms.list_keys()
    server.control("POST", "counters/reset")
    assert server.counters() == []


def test_counter_document_shape(server, admin):
    admin.kms.list_keys()
    assert server.control("GET", "counters") == {
        "counters": [{"action": "kms:ListKeys", "caller": "admin", "outcome": "ok", "count": 1}]
    }
