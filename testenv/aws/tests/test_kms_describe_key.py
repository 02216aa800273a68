"""kms:DescribeKey called by an assumed role itself (to turn a parameter's
KeyId into the key ARN): authorized on the key's ARN, however the request
names the key, by the key policy and, through its account root statement,
the role's IAM policies."""

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

ROLE = "describer"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/{ROLE}"
ALIAS = "alias/app"
ALIAS_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:{ALIAS}"
OTHER_ACCOUNT = "222233334444"


@pytest.fixture
def key(admin):
    metadata = admin.kms.create_key()["KeyMetadata"]
    admin.kms.create_alias(AliasName=ALIAS, TargetKeyId=metadata["KeyId"])
    return metadata


def role_kms(server, admin, *statements, name=ROLE):
    return client(server, "kms", assume(admin, create_role(admin, name, *statements)))


def key_policy_allowing(admin, key, principal: str, action: str):
    """Replaces the key policy with one statement: `principal` may `action`."""
    statement = {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": action, "Resource": "*"}
    document = {"Version": "2012-10-17", "Statement": [statement]}
    admin.kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=json.dumps(document))


def names_of(key) -> list[str]:
    """Every way a KeyId can name the key: id, ARN, alias name, alias ARN."""
    return [key["KeyId"], key["Arn"], ALIAS, ALIAS_ARN]


def refused(key, reason="because no identity-based policy allows the kms:DescribeKey action"):
    return (
        f"User: {session_arn(ROLE)} is not authorized to perform: kms:DescribeKey "
        f"on resource: {key['Arn']} {reason}"
    )


def test_a_grant_on_the_key_arn_describes_it_by_every_name(server, admin, key):
    kms = role_kms(server, admin, allow("kms:DescribeKey", key["Arn"]))
    for name in names_of(key):
        assert kms.describe_key(KeyId=name)["KeyMetadata"]["Arn"] == key["Arn"]
    assert server.count("kms:DescribeKey", ROLE_ARN) == 4


def test_without_a_grant_describe_key_is_denied_on_the_key_arn(server, admin, key):
    kms = role_kms(server, admin, allow("ssm:GetParameters"))
    for name in names_of(key):
        error = failure(kms.describe_key, KeyId=name)
        assert (error.code, error.status) == ("AccessDeniedException", 400)
        assert error.message == refused(key)
    assert server.count("kms:DescribeKey", ROLE_ARN, "AccessDeniedException") == 4


def test_a_grant_on_the_alias_arn_does_not_cover_the_key(server, admin, key):
    kms = role_kms(server, admin, allow("kms:DescribeKey", ALIAS_ARN))
    error = failure(kms.describe_key, KeyId=ALIAS)
    assert (error.code, error.message) == ("AccessDeniedException", refused(key))


def test_a_policy_can_require_the_alias_the_request_names(server, admin, key):
    by_alias_only = allow(
        "kms:DescribeKey", "*", Condition={"StringEquals": {"kms:RequestAlias": ALIAS}}
    )
    kms = role_kms(server, admin, by_alias_only)
    assert kms.describe_key(KeyId=ALIAS)["KeyMetadata"]["KeyId"] == key["KeyId"]
    assert kms.describe_key(KeyId=ALIAS_ARN)["KeyMetadata"]["KeyId"] == key["KeyId"]
    assert failure(kms.describe_key, KeyId=key["KeyId"]).code == "AccessDeniedException"


def test_an_explicit_deny_wins(server, admin, key):
    kms = role_kms(server, admin, allow("kms:DescribeKey"), deny("kms:Describe*", key["Arn"]))
    error = failure(kms.describe_key, KeyId=ALIAS)
    assert error.message == refused(key, "with an explicit deny in an identity-based policy")


def test_a_key_policy_without_the_account_root_allows_no_iam_grant(server, admin, key):
    key_policy_allowing(admin, key, f"arn:aws:iam::{ACCOUNT}:role/someone-else", "kms:*")
    kms = role_kms(server, admin, allow("kms:DescribeKey"))
    error = failure(kms.describe_key, KeyId=key["Arn"])
    assert error.message == refused(
        key, "because no resource-based policy allows the kms:DescribeKey action"
    )


def test_a_key_policy_naming_the_role_needs_no_iam_grant(server, admin, key):
    key_policy_allowing(admin, key, ROLE_ARN, "kms:DescribeKey")
    kms = role_kms(server, admin, allow("ssm:GetParameters"))
    assert kms.describe_key(KeyId=ALIAS)["KeyMetadata"]["Arn"] == key["Arn"]


def test_the_aws_managed_ssm_key_needs_an_iam_grant_too(server, admin):
    kms = role_kms(server, admin, allow("ssm:GetParameters"))
    error = failure(kms.describe_key, KeyId="alias/aws/ssm")
    assert (error.code, error.status) == ("AccessDeniedException", 400)
    # DescribeKey of the predefined alias makes the AWS managed key, as on AWS.
    managed = admin.kms.describe_key(KeyId="alias/aws/ssm")["KeyMetadata"]
    assert error.message == refused(managed)
    granted = role_kms(server, admin, allow("kms:DescribeKey", managed["Arn"]), name="granted")
    assert granted.describe_key(KeyId="alias/aws/ssm")["KeyMetadata"]["Arn"] == managed["Arn"]


def test_a_key_of_another_account_needs_its_key_policy_too(server, admin):
    owner_credentials = assume(
        admin, f"arn:aws:iam::{OTHER_ACCOUNT}:role/OrganizationAccountAccessRole"
    )
    owner = client(server, "kms", owner_credentials)
    foreign = owner.create_key()["KeyMetadata"]
    kms = role_kms(server, admin, allow("kms:DescribeKey"))
    error = failure(kms.describe_key, KeyId=foreign["Arn"])
    assert error.message == refused(
        foreign, "because no resource-based policy allows the kms:DescribeKey action"
    )
    owner.put_key_policy(
        KeyId=foreign["KeyId"],
        PolicyName="default",
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": [f"arn:aws:iam::{OTHER_ACCOUNT}:root", ACCOUNT]},
                        "Action": "kms:*",
                        "Resource": "*",
                    }
                ],
            }
        ),
    )
    assert kms.describe_key(KeyId=foreign["Arn"])["KeyMetadata"]["Arn"] == foreign["Arn"]
    # moto alone finds no key of another account; the layer answers from the owner's KMS.
    assert admin.kms.describe_key(KeyId=foreign["Arn"])["KeyMetadata"]["KeyId"] == foreign["KeyId"]


def test_a_missing_key_is_moto_s_not_found(server, admin):
    kms = role_kms(server, admin, allow("kms:DescribeKey"))
    error = failure(kms.describe_key, KeyId="alias/missing")
    assert (error.code, error.status) == ("NotFoundException", 400)


def test_the_administrator_is_never_checked(admin, key):
    assert admin.kms.describe_key(KeyId=ALIAS)["KeyMetadata"]["Arn"] == key["Arn"]
