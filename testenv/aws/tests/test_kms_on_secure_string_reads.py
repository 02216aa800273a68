"""A SecureString read with decryption asks KMS, as on AWS: missing, disabled,
pending-deletion and forbidden keys fail the read with KMS's error inside."""

import json

import pytest

from conftest import (
    ACCOUNT,
    REGION,
    allow,
    assume,
    client,
    create_role,
    deny,
    failure,
    session_arn,
)

READ_APP = allow("ssm:GetParameter*", f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/app*")


@pytest.fixture
def key(admin):
    return admin.kms.create_key()["KeyMetadata"]


def role_ssm(server, admin, *statements, name="reader"):
    arn = create_role(admin, name, READ_APP, *statements)
    return client(server, "ssm", assume(admin, arn))


def put_secret(admin, name, key_id=None, value="s3cr3t"):
    extra = {"KeyId": key_id} if key_id else {}
    admin.ssm.put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True, **extra)


def test_aws_managed_key_readable_without_grant(server, admin):
    put_secret(admin, "/app/secret")
    ssm = role_ssm(server, admin)
    assert (
        ssm.get_parameter(Name="/app/secret", WithDecryption=True)["Parameter"]["Value"] == "s3cr3t"
    )


def test_an_explicit_deny_holds_for_the_aws_managed_key_too(server, admin):
    put_secret(admin, "/app/default-key")
    ssm = role_ssm(server, admin, deny("kms:Decrypt", "*"))
    error = failure(ssm.get_parameter, Name="/app/default-key", WithDecryption=True)
    assert (error.code, error.kms_error_code) == ("AccessDeniedException", "AccessDeniedException")
    assert f"kms:Decrypt on resource: arn:aws:kms:{REGION}:{ACCOUNT}:key/" in error.message
    assert "with an explicit deny in an identity-based policy" in error.message


def test_kms_decrypt_denied_when_role_lacks_grant(server, admin, key):
    put_secret(admin, "/app/secret", key["KeyId"])
    ssm = role_ssm(server, admin)
    error = failure(ssm.get_parameter, Name="/app/secret", WithDecryption=True)
    assert (error.code, error.status, error.kms_error_code) == (
        "AccessDeniedException",
        400,
        "AccessDeniedException",
    )
    assert error.message.startswith(
        f"User: {session_arn('reader')} is not authorized to perform: kms:Decrypt "
        f"on resource: {key['Arn']} because no identity-based policy allows the kms:Decrypt action "
        "(Service: AWSKMS; Status Code: 400; Error Code: AccessDeniedException; Request ID: "
    )
    assert error.message.endswith("; Proxy: null)")


def test_kms_decrypt_allowed_by_role_policy_on_the_key_arn(server, admin, key):
    put_secret(admin, "/app/secret", key["Arn"])
    ssm = role_ssm(server, admin, allow("kms:Decrypt", key["Arn"]))
    assert (
        ssm.get_parameter(Name="/app/secret", WithDecryption=True)["Parameter"]["Value"] == "s3cr3t"
    )


def test_kms_grant_on_another_key_does_not_help(server, admin, key):
    other = admin.kms.create_key()["KeyMetadata"]
    put_secret(admin, "/app/secret", key["KeyId"])
    ssm = role_ssm(server, admin, allow("kms:Decrypt", other["Arn"]))
    assert (
        failure(ssm.get_parameter, Name="/app/secret", WithDecryption=True).kms_error_code
        == "AccessDeniedException"
    )


def test_key_resolved_through_its_alias(server, admin, key):
    admin.kms.create_alias(AliasName="alias/app", TargetKeyId=key["KeyId"])
    put_secret(admin, "/app/secret", "alias/app")
    denied = role_ssm(server, admin)
    error = failure(denied.get_parameter, Name="/app/secret", WithDecryption=True)
    assert f"on resource: {key['Arn']} " in error.message
    granted = role_ssm(server, admin, allow("kms:Decrypt", key["Arn"]), name="granted")
    assert (
        granted.get_parameter(Name="/app/secret", WithDecryption=True)["Parameter"]["Value"]
        == "s3cr3t"
    )


def test_kms_via_service_condition_holds_for_ssm_reads(server, admin, key):
    put_secret(admin, "/app/secret", key["KeyId"])
    via_ssm = {"StringEquals": {"kms:ViaService": f"ssm.{REGION}.amazonaws.com"}}
    via_s3 = {"StringEquals": {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}}
    ssm = role_ssm(server, admin, allow("kms:Decrypt", key["Arn"], Condition=via_ssm))
    assert (
        ssm.get_parameter(Name="/app/secret", WithDecryption=True)["Parameter"]["Value"] == "s3cr3t"
    )
    ssm = role_ssm(
        server, admin, allow("kms:Decrypt", key["Arn"], Condition=via_s3), name="s3-only"
    )
    assert (
        failure(ssm.get_parameter, Name="/app/secret", WithDecryption=True).code
        == "AccessDeniedException"
    )


def test_explicit_deny_in_role_policy_is_named(server, admin, key):
    put_secret(admin, "/app/secret", key["KeyId"])
    ssm = role_ssm(server, admin, allow("kms:Decrypt", "*"), deny("kms:Decrypt", key["Arn"]))
    error = failure(ssm.get_parameter, Name="/app/secret", WithDecryption=True)
    assert (
        "kms:Decrypt on resource: "
        + key["Arn"]
        + " with an explicit deny in an identity-based policy (Service: AWSKMS;"
        in error.message
    )


def test_explicit_deny_in_key_policy_is_a_resource_based_deny(server, admin):
    role_arn = create_role(admin, "reader", READ_APP, allow("kms:Decrypt", "*"))
    key_policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Effect": "Deny",
                "Principal": {"AWS": role_arn},
                "Action": "kms:Decrypt",
                "Resource": "*",
            },
        ],
    }
    key = admin.kms.create_key(Policy=json.dumps(key_policy))["KeyMetadata"]
    put_secret(admin, "/app/secret", key["KeyId"])
    ssm = client(server, "ssm", assume(admin, role_arn))
    error = failure(ssm.get_parameter, Name="/app/secret", WithDecryption=True)
    assert (error.code, error.kms_error_code) == ("AccessDeniedException", "AccessDeniedException")
    assert (
        f"is not authorized to perform: kms:Decrypt on resource: {key['Arn']} "
        "with an explicit deny in a resource-based policy (Service: AWSKMS;"
    ) in error.message


def test_key_policy_naming_the_role_needs_no_iam_grant(server, admin):
    role_arn = create_role(admin, "reader", READ_APP)
    key_policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": role_arn},
                "Action": "kms:Decrypt",
                "Resource": "*",
            }
        ],
    }
    key = admin.kms.create_key(Policy=json.dumps(key_policy))["KeyMetadata"]
    put_secret(admin, "/app/secret", key["KeyId"])
    ssm = client(server, "ssm", assume(admin, role_arn))
    assert (
        ssm.get_parameter(Name="/app/secret", WithDecryption=True)["Parameter"]["Value"] == "s3cr3t"
    )


def test_key_policy_without_account_root_ignores_iam_grants(server, admin):
    role_arn = create_role(admin, "reader", READ_APP, allow("kms:Decrypt", "*"))
    key_policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/someone-else"},
                "Action": "kms:*",
                "Resource": "*",
            }
        ],
    }
    key = admin.kms.create_key(Policy=json.dumps(key_policy))["KeyMetadata"]
    put_secret(admin, "/app/secret", key["KeyId"])
    ssm = client(server, "ssm", assume(admin, role_arn))
    error = failure(ssm.get_parameter, Name="/app/secret", WithDecryption=True)
    assert (
        "because no resource-based policy allows the kms:Decrypt action (Service: AWSKMS;"
        in error.message
    )


def test_disabled_key_answers_invalid_key_id_disabled_exception(server, admin, key):
    put_secret(admin, "/app/secret", key["KeyId"])
    admin.kms.disable_key(KeyId=key["KeyId"])
    ssm = role_ssm(server, admin, allow("kms:Decrypt", key["Arn"]))
    error = failure(ssm.get_parameter, Name="/app/secret", WithDecryption=True)
    assert (error.code, error.status, error.kms_error_code) == (
        "InvalidKeyId",
        400,
        "DisabledException",
    )
    assert error.message.startswith(
        f"{key['Arn']} is disabled. (Service: AWSKMS; Status Code: 400; Error Code: DisabledException; Request ID: "
    )


def test_pending_deletion_key_answers_invalid_key_id_kms_invalid_state(server, admin, key):
    put_secret(admin, "/app/secret", key["KeyId"])
    admin.kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    ssm = role_ssm(server, admin, allow("kms:Decrypt", key["Arn"]))
    error = failure(ssm.get_parameter, Name="/app/secret", WithDecryption=True)
    assert (error.code, error.kms_error_code) == ("InvalidKeyId", "KMSInvalidStateException")
    assert error.message.startswith(f"{key['Arn']} is pending deletion. (Service: AWSKMS;")


@pytest.mark.parametrize(
    "state, words",
    [
        ("PendingImport", "pending import"),
        ("Unavailable", "unavailable"),
        ("PendingReplicaDeletion", "pending replica deletion"),
    ],
)
def test_a_key_in_another_unusable_state_answers_kms_invalid_state_naming_it(
    server, admin, key, state, words
):
    put_secret(admin, "/app/secret", key["KeyId"])
    server.control("PUT", "key-state", {"key": key["Arn"], "state": state})
    ssm = role_ssm(server, admin, allow("kms:Decrypt", key["Arn"]))
    error = failure(ssm.get_parameter, Name="/app/secret", WithDecryption=True)
    assert (error.code, error.kms_error_code) == ("InvalidKeyId", "KMSInvalidStateException")
    assert error.message.startswith(f"{key['Arn']} is {words}. (Service: AWSKMS;")
    server.control("PUT", "key-state", {"key": key["Arn"], "state": "Enabled"})
    assert ssm.get_parameter(Name="/app/secret", WithDecryption=True)["Parameter"]["Value"]


def test_a_key_state_kms_does_not_have_is_refused(server, key):
    with pytest.raises(Exception, match="400"):
        server.control("PUT", "key-state", {"key": key["Arn"], "state": "Broken"})


def test_missing_key_answers_invalid_key_id_not_found(server, admin):
    missing = "0b5d1c3e-0000-4000-8000-000000000000"
    put_secret(admin, "/app/secret", missing)
    ssm = role_ssm(server, admin, allow("kms:Decrypt", "*"))
    error = failure(ssm.get_parameter, Name="/app/secret", WithDecryption=True)
    assert (error.code, error.kms_error_code) == ("InvalidKeyId", "NotFoundException")
    assert error.message.startswith(
        f"Key 'arn:aws:kms:{REGION}:{ACCOUNT}:key/{missing}' does not exist (Service: AWSKMS; Status Code: 400; "
        "Error Code: NotFoundException; Request ID: "
    )


def test_unknown_alias_is_named_by_its_alias_arn(server, admin):
    put_secret(admin, "/app/secret", "alias/nowhere")
    error = failure(admin.ssm.get_parameter, Name="/app/secret", WithDecryption=True)
    assert error.message.startswith(
        f"Key 'arn:aws:kms:{REGION}:{ACCOUNT}:alias/nowhere' does not exist (Service: AWSKMS;"
    )


def test_disabled_key_cannot_decrypt_for_admin_either(admin, key):
    put_secret(admin, "/app/secret", key["KeyId"])
    admin.kms.disable_key(KeyId=key["KeyId"])
    error = failure(admin.ssm.get_parameters, Names=["/app/secret"], WithDecryption=True)
    assert (error.code, error.kms_error_code) == ("InvalidKeyId", "DisabledException")


def test_one_undecryptable_parameter_fails_the_whole_get_parameters(server, admin, key):
    put_secret(admin, "/app/ok")
    put_secret(admin, "/app/forbidden", key["KeyId"])
    admin.ssm.put_parameter(Name="/app/plain", Value="p", Type="String")
    ssm = role_ssm(server, admin)
    error = failure(
        ssm.get_parameters, Names=["/app/ok", "/app/forbidden", "/app/plain"], WithDecryption=True
    )
    assert error.kms_error_code == "AccessDeniedException"
    values = ssm.get_parameters(Names=["/app/ok", "/app/plain"], WithDecryption=True)["Parameters"]
    assert sorted(p["Value"] for p in values) == ["p", "s3cr3t"]


def test_get_parameters_by_path_checks_the_keys_of_what_it_returns(server, admin, key):
    put_secret(admin, "/app/top")
    put_secret(admin, "/app/deeper/forbidden", key["KeyId"])
    ssm = role_ssm(server, admin)
    shallow = ssm.get_parameters_by_path(Path="/app", Recursive=False, WithDecryption=True)[
        "Parameters"
    ]
    assert [p["Value"] for p in shallow] == ["s3cr3t"]
    error = failure(ssm.get_parameters_by_path, Path="/app", Recursive=True, WithDecryption=True)
    assert error.kms_error_code == "AccessDeniedException"


def test_version_selector_checks_the_key_of_that_version(server, admin, key):
    put_secret(admin, "/app/secret", key["KeyId"], value="v1")
    put_secret(admin, "/app/secret", "alias/aws/ssm", value="v2")
    ssm = role_ssm(server, admin)
    assert ssm.get_parameter(Name="/app/secret", WithDecryption=True)["Parameter"]["Value"] == "v2"
    assert (
        failure(ssm.get_parameter, Name="/app/secret:1", WithDecryption=True).kms_error_code
        == "AccessDeniedException"
    )


def test_label_selector_checks_the_key_of_the_labelled_version(server, admin, key):
    put_secret(admin, "/app/secret", key["KeyId"], value="v1")
    put_secret(admin, "/app/secret", "alias/aws/ssm", value="v2")
    admin.ssm.label_parameter_version(Name="/app/secret", ParameterVersion=1, Labels=["old"])
    ssm = role_ssm(server, admin)
    assert (
        failure(ssm.get_parameters, Names=["/app/secret:old"], WithDecryption=True).kms_error_code
        == "AccessDeniedException"
    )


def test_full_arn_names_are_decrypted_with_their_key(server, admin, key):
    put_secret(admin, "/app/secret", key["KeyId"])
    ssm = role_ssm(server, admin)
    arn = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/app/secret"
    assert (
        failure(ssm.get_parameters, Names=[arn], WithDecryption=True).kms_error_code
        == "AccessDeniedException"
    )


def test_read_without_decryption_never_consults_kms(server, admin, key):
    put_secret(admin, "/app/forbidden", key["KeyId"])
    put_secret(admin, "/app/missing-key", "alias/nowhere")
    admin.kms.disable_key(KeyId=key["KeyId"])
    ssm = role_ssm(server, admin)
    found = ssm.get_parameters(Names=["/app/forbidden", "/app/missing-key"])["Parameters"]
    assert sorted(p["Version"] for p in found) == [1, 1]
    assert ssm.get_parameters_by_path(Path="/app")["Parameters"]
    assert not [c for c in server.counters() if c["action"] == "kms:Decrypt"]
