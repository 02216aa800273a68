"""What DescribeParameters answers as a SecureString's KeyId, filtered by
name as the operator asks (`Name`/`Equals`, up to 50 names a filter): moto
answers the KeyId as PutParameter was given it. The SSM API Reference only
says of ParameterMetadata.KeyId "The alias of the Key Management Service (KMS)
key used to encrypt the parameter"; that AWS, too, answers it as given (key
id, key ARN, alias or alias ARN) is not documented. These tests pin moto's
answer so that an upgrade that changes it shows."""

import pytest
from botocore.config import Config

from conftest import ACCOUNT, NO_RETRIES, REGION, allow, assume, client, create_role, failure

NAME_FILTER_LIMIT = 50


@pytest.fixture
def key(admin):
    metadata = admin.kms.create_key()["KeyMetadata"]
    admin.kms.create_alias(AliasName="alias/app", TargetKeyId=metadata["KeyId"])
    return metadata


def by_name(names):
    return [{"Key": "Name", "Option": "Equals", "Values": list(names)}]


def key_ids(ssm, names) -> dict:
    answer = ssm.describe_parameters(ParameterFilters=by_name(names), MaxResults=50)
    return {p["Name"]: p.get("KeyId") for p in answer["Parameters"]}


def test_describe_parameters_answers_the_key_id_as_it_was_given(admin, key):
    given = {
        "/app/by-id": key["KeyId"],
        "/app/by-arn": key["Arn"],
        "/app/by-alias": "alias/app",
        "/app/by-alias-arn": f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/app",
    }
    for name, key_id in given.items():
        admin.ssm.put_parameter(Name=name, Value="s", Type="SecureString", KeyId=key_id)
    admin.ssm.put_parameter(Name="/app/default", Value="s", Type="SecureString")
    admin.ssm.put_parameter(Name="/app/plain", Value="s", Type="String")
    names = [*given, "/app/default", "/app/plain"]
    assert key_ids(admin.ssm, names) == {
        **given,
        # PutParameter without a KeyId: "the system uses the default key
        # associated with your Amazon Web Services account" (SSM API Reference,
        # PutParameter, KeyId), the AWS managed key alias/aws/ssm.
        "/app/default": "alias/aws/ssm",
        "/app/plain": None,
    }


def test_a_name_filter_takes_fifty_names_in_one_page(server, admin):
    names = [f"/app/p{i:02}" for i in range(NAME_FILTER_LIMIT)]
    for name in names:
        admin.ssm.put_parameter(Name=name, Value="s", Type="SecureString")
    answer = admin.ssm.describe_parameters(ParameterFilters=by_name(names), MaxResults=50)
    assert {p["Name"]: p["KeyId"] for p in answer["Parameters"]} == dict.fromkeys(
        names, "alias/aws/ssm"
    )
    assert server.count("ssm:DescribeParameters") == 1


def test_pages_hold_max_results_parameters(admin):
    # moto's own pages hold 10 whatever MaxResults says; the layer joins them.
    names = [f"/app/p{i:02}" for i in range(25)]
    for name in names:
        admin.ssm.put_parameter(Name=name, Value="s", Type="String")
    first = admin.ssm.describe_parameters(ParameterFilters=by_name(names), MaxResults=20)
    assert [p["Name"] for p in first["Parameters"]] == names[:20]
    second = admin.ssm.describe_parameters(
        ParameterFilters=by_name(names), MaxResults=20, NextToken=first["NextToken"]
    )
    assert [p["Name"] for p in second["Parameters"]] == names[20:]
    assert "NextToken" not in second
    # Without MaxResults, moto's 10 (AWS's default is not documented).
    default = admin.ssm.describe_parameters(ParameterFilters=by_name(names))
    assert len(default["Parameters"]) == 10 and default["NextToken"]


def test_names_not_found_are_left_out(admin):
    admin.ssm.put_parameter(Name="/app/here", Value="s", Type="SecureString")
    assert key_ids(admin.ssm, ["/app/here", "/app/gone"]) == {"/app/here": "alias/aws/ssm"}


def test_a_name_filter_of_more_than_fifty_names_is_a_validation_error(server, admin):
    # "ParameterStringFilter … Values … Maximum number of 50 items" (SSM API
    # Reference). botocore checks it client-side, the Rust SDK does not; moto
    # refuses it, quoting with double quotes where AWS's validation messages
    # use single quotes (AWS's exact text for this case has not been seen).
    ssm = client(
        server, "ssm", config=Config(parameter_validation=False, retries=NO_RETRIES.retries)
    )
    names = [f"/app/p{i:02}" for i in range(NAME_FILTER_LIMIT + 1)]
    error = failure(ssm.describe_parameters, ParameterFilters=by_name(names))
    assert (error.code, error.status) == ("ValidationException", 400)
    assert error.message.startswith("1 validation error detected: Value ")
    assert error.message.endswith(
        ' at "parameterFilters.1.member.values" failed to satisfy constraint: '
        "Member must have length less than or equal to 50"
    )


def test_describe_parameters_of_a_role_needs_the_action_on_the_account(server, admin, key):
    admin.ssm.put_parameter(Name="/app/x", Value="s", Type="SecureString", KeyId="alias/app")
    granted = create_role(admin, "describer", allow("ssm:DescribeParameters"))
    ssm = client(server, "ssm", assume(admin, granted))
    assert key_ids(ssm, ["/app/x"]) == {"/app/x": "alias/app"}
    refused = create_role(admin, "reader", allow("ssm:GetParameters"))
    error = failure(
        client(server, "ssm", assume(admin, refused)).describe_parameters,
        ParameterFilters=by_name(["/app/x"]),
    )
    assert (error.code, error.status) == ("AccessDeniedException", 400)
    assert error.message.endswith(
        f"ssm:DescribeParameters on resource: arn:aws:ssm:{REGION}:{ACCOUNT}:* because no "
        "identity-based policy allows the ssm:DescribeParameters action"
    )
