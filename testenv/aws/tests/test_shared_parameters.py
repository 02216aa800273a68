"""Parameters shared from another account (AWS RAM), read by their full ARN in
their own region: sharing, the reader's IAM policies and, for SecureStrings,
the owner's key policy all have to allow it."""

import json

import boto3
import pytest

from conftest import (
    ACCOUNT,
    NO_RETRIES,
    allow,
    assume,
    create_role,
    failure,
    parameter_arn,
    session_arn,
)

OWNER = "222233334444"
OWNER_REGION = "us-west-2"
SHARED_WITH = "ssm-operator-test:shared-with"
NAME = "/team/db-password"
ARN = f"arn:aws:ssm:{OWNER_REGION}:{OWNER}:parameter{NAME}"
ROLE = "reader"
READER_ARN = f"arn:aws:iam::{ACCOUNT}:role/{ROLE}"
# Static keys: the administrator of the caller's account.
ADMIN_KEYS = {"AccessKeyId": "AKIAADMINEXAMPLE0001", "SecretAccessKey": "admin"}


def regional_client(server, service, credentials, region=OWNER_REGION):
    return boto3.client(
        service,
        endpoint_url=server.url,
        region_name=region,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials.get("SessionToken"),
        config=NO_RETRIES,
    )


@pytest.fixture
def owner(server, admin):
    """Administrator clients of the owner account, in the parameter's region."""
    credentials = assume(admin, f"arn:aws:iam::{OWNER}:role/OrganizationAccountAccessRole")
    return {s: regional_client(server, s, credentials) for s in ("ssm", "kms", "sts")}


def key_policy(*principals) -> str:
    """The owner's key policy: its own root administers it, `principals` may decrypt."""
    statements = [
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{OWNER}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }
    ]
    if principals:
        statements.append(
            {
                "Effect": "Allow",
                "Principal": {"AWS": list(principals)},
                "Action": "kms:Decrypt",
                "Resource": "*",
            }
        )
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def put_shared(owner, key_arn=None, shared_with=ACCOUNT, value="s3cr3t", tier="Advanced"):
    extra = {"KeyId": key_arn, "Type": "SecureString"} if key_arn else {"Type": "String"}
    owner["ssm"].put_parameter(Name=NAME, Value=value, Tier=tier, Overwrite=True, **extra)
    if shared_with:
        owner["ssm"].add_tags_to_resource(
            ResourceType="Parameter",
            ResourceId=NAME,
            Tags=[{"Key": SHARED_WITH, "Value": shared_with}],
        )


def reader(server, admin, *statements):
    """The SSM client of a role of the caller's account, in the owner's region."""
    role_arn = create_role(admin, ROLE, *statements)
    return regional_client(server, "ssm", assume(admin, role_arn))


def test_owner_administrator_role_acts_in_the_owner_account(owner):
    identity = owner["sts"].get_caller_identity()
    assert identity["Account"] == OWNER
    assert owner["ssm"].describe_parameters()["Parameters"] == []


def test_shared_string_is_read_by_its_arn(server, admin, owner):
    put_shared(owner, value="plain")
    ssm = reader(server, admin, allow("ssm:GetParameters", ARN))
    answer = ssm.get_parameters(Names=[ARN])
    assert answer["InvalidParameters"] == []
    [entry] = answer["Parameters"]
    assert (entry["Name"], entry["ARN"], entry["Type"]) == (ARN, ARN, "String")
    assert entry["Value"] == "plain"
    assert (entry["Version"], entry["DataType"]) == (1, "text")
    assert entry["LastModifiedDate"].year >= 2024
    assert "Selector" not in entry


def test_shared_secure_string_decrypts_with_the_owner_key_and_both_grants(server, admin, owner):
    key = owner["kms"].create_key(Policy=key_policy(f"arn:aws:iam::{ACCOUNT}:root"))["KeyMetadata"]
    put_shared(owner, key["Arn"])
    ssm = reader(
        server, admin, allow("ssm:GetParameters", ARN), allow("kms:Decrypt", key["Arn"])
    )
    [entry] = ssm.get_parameters(Names=[ARN], WithDecryption=True)["Parameters"]
    assert entry["Value"] == "s3cr3t"
    assert server.count("kms:Decrypt", READER_ARN) == 1


def test_without_decryption_a_shared_secure_string_is_the_stable_ciphertext(server, admin, owner):
    key = owner["kms"].create_key(Policy=key_policy(f"arn:aws:iam::{ACCOUNT}:root"))["KeyMetadata"]
    put_shared(owner, key["Arn"])
    ssm = reader(server, admin, allow("ssm:GetParameters", ARN))
    first = ssm.get_parameters(Names=[ARN])["Parameters"][0]["Value"]
    assert first != "s3cr3t" and "s3cr3t" not in first
    assert ssm.get_parameters(Names=[ARN])["Parameters"][0]["Value"] == first


def refused_without_share(error):
    assert (error.code, error.status) == ("AccessDeniedException", 400)
    assert error.message == (
        f"User: {session_arn(ROLE)} is not authorized to perform: ssm:GetParameters on resource: "
        f"{ARN} because no resource-based policy allows the ssm:GetParameters action"
    )


def test_a_parameter_not_shared_with_the_caller_is_access_denied(server, admin, owner):
    put_shared(owner, shared_with="999988887777")
    ssm = reader(server, admin, allow("ssm:GetParameters", ARN))
    refused_without_share(failure(ssm.get_parameters, Names=[ARN]))


def test_a_parameter_missing_in_another_account_is_access_denied_too(server, admin, owner):
    ssm = reader(server, admin, allow("ssm:GetParameters", ARN))
    refused_without_share(failure(ssm.get_parameters, Names=[ARN]))


def test_a_standard_tier_parameter_cannot_be_shared(server, admin, owner):
    put_shared(owner, tier="Standard")
    ssm = reader(server, admin, allow("ssm:GetParameters", ARN))
    refused_without_share(failure(ssm.get_parameters, Names=[ARN]))


def test_get_parameter_reads_a_shared_parameter_and_not_an_unshared_one(server, admin, owner):
    put_shared(owner, value="plain")
    ssm = reader(server, admin, allow("ssm:GetParameter", ARN))
    entry = ssm.get_parameter(Name=f"{ARN}:1")["Parameter"]
    assert (entry["Name"], entry["Value"], entry["Selector"]) == (ARN, "plain", ":1")
    owner["ssm"].remove_tags_from_resource(
        ResourceType="Parameter", ResourceId=NAME, TagKeys=[SHARED_WITH]
    )
    assert failure(ssm.get_parameter, Name=ARN).code == "AccessDeniedException"


def test_iam_must_allow_the_shared_arn(server, admin, owner):
    put_shared(owner)
    ssm = reader(server, admin, allow("ssm:GetParameters", parameter_arn("*")))
    error = failure(ssm.get_parameters, Names=[ARN])
    assert (error.code, error.status) == ("AccessDeniedException", 400)
    assert error.message == (
        f"User: {session_arn(ROLE)} is not authorized to perform: ssm:GetParameters on resource: "
        f"{ARN} because no identity-based policy allows the ssm:GetParameters action"
    )


def test_key_policy_of_the_owner_must_allow_the_caller(server, admin, owner):
    key = owner["kms"].create_key(Policy=key_policy())["KeyMetadata"]
    put_shared(owner, key["Arn"])
    ssm = reader(
        server, admin, allow("ssm:GetParameters", ARN), allow("kms:Decrypt", key["Arn"])
    )
    error = failure(ssm.get_parameters, Names=[ARN], WithDecryption=True)
    assert (error.code, error.kms_error_code) == ("AccessDeniedException", "AccessDeniedException")
    assert error.message.startswith(
        f"User: {session_arn(ROLE)} is not authorized to perform: kms:Decrypt on resource: "
        f"{key['Arn']} because no resource-based policy allows the kms:Decrypt action "
        "(Service: AWSKMS; Status Code: 400;"
    )
    refused = server.count("kms:Decrypt", READER_ARN, "AccessDeniedException")
    assert refused == 1


def test_a_key_policy_naming_the_role_still_needs_its_iam_grant(server, admin, owner):
    key = owner["kms"].create_key(Policy=key_policy(READER_ARN))["KeyMetadata"]
    put_shared(owner, key["Arn"])
    ssm = reader(server, admin, allow("ssm:GetParameters", ARN))
    error = failure(ssm.get_parameters, Names=[ARN], WithDecryption=True)
    assert error.kms_error_code == "AccessDeniedException"
    assert "because no identity-based policy allows the kms:Decrypt action" in error.message


def test_the_owner_aws_managed_key_cannot_decrypt_for_another_account(server, admin, owner):
    put_shared(owner, "alias/aws/ssm")
    ssm = reader(server, admin, allow("ssm:GetParameters", ARN), allow("kms:Decrypt", "*"))
    error = failure(ssm.get_parameters, Names=[ARN], WithDecryption=True)
    assert error.kms_error_code == "AccessDeniedException"


def test_a_disabled_owner_key_is_invalid(server, admin, owner):
    key = owner["kms"].create_key(Policy=key_policy(f"arn:aws:iam::{ACCOUNT}:root"))["KeyMetadata"]
    put_shared(owner, key["Arn"])
    owner["kms"].disable_key(KeyId=key["KeyId"])
    ssm = reader(server, admin, allow("ssm:GetParameters", ARN), allow("kms:Decrypt", key["Arn"]))
    error = failure(ssm.get_parameters, Names=[ARN], WithDecryption=True)
    assert (error.code, error.kms_error_code) == ("InvalidKeyId", "DisabledException")


def test_own_and_shared_names_in_one_call(server, admin, owner):
    put_shared(owner, value="theirs")
    own = regional_client(server, "ssm", ADMIN_KEYS)
    own.put_parameter(Name="/app/mine", Value="ours", Type="String")
    own_arn = f"arn:aws:ssm:{OWNER_REGION}:{ACCOUNT}:parameter/app/*"
    ssm = reader(server, admin, allow("ssm:GetParameters", [ARN, own_arn]))
    answer = ssm.get_parameters(Names=["/app/mine", ARN, "/app/missing"])
    values = {entry["Name"]: entry["Value"] for entry in answer["Parameters"]}
    assert values == {"/app/mine": "ours", ARN: "theirs"}
    assert answer["InvalidParameters"] == ["/app/missing"]
