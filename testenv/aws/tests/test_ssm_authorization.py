"""SSM calls from an assumed role are authorized by its IAM policies, on the
real parameter ARNs."""

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
    parameter_arn,
    session_arn,
)


@pytest.fixture
def parameters(admin):
    admin.ssm.put_parameter(Name="/app/db/user", Value="operator", Type="String")
    admin.ssm.put_parameter(Name="/other/token", Value="t", Type="String")


def role_ssm(server, admin, *statements, name="reader"):
    arn = create_role(admin, name, *statements)
    return client(server, "ssm", assume(admin, arn))


def test_ssm_access_denied_names_the_parameter_arn(server, admin, parameters):
    ssm = role_ssm(server, admin, allow("ssm:GetParameters", parameter_arn("/app/*")))
    error = failure(ssm.get_parameters, Names=["/app/db/user", "/other/token"])
    assert (error.code, error.status) == ("AccessDeniedException", 400)
    assert error.message == (
        f"User: {session_arn('reader')} is not authorized to perform: ssm:GetParameters "
        f"on resource: {parameter_arn('/other/token')} "
        "because no identity-based policy allows the ssm:GetParameters action"
    )


def test_granted_parameters_are_read(server, admin, parameters):
    ssm = role_ssm(server, admin, allow("ssm:GetParameter*", parameter_arn("/app/*")))
    assert ssm.get_parameter(Name="/app/db/user")["Parameter"]["Value"] == "operator"
    assert [p["Name"] for p in ssm.get_parameters(Names=["/app/db/user"])["Parameters"]] == [
        "/app/db/user"
    ]


def test_each_action_needs_its_own_grant(server, admin, parameters):
    ssm = role_ssm(server, admin, allow("ssm:GetParameters", "*"))
    error = failure(ssm.get_parameter, Name="/app/db/user")
    assert error.code == "AccessDeniedException"
    assert "perform: ssm:GetParameter on resource" in error.message


def test_explicit_deny_overrides_a_grant(server, admin, parameters):
    ssm = role_ssm(
        server, admin, allow("ssm:*", "*"), deny("ssm:GetParameters", parameter_arn("/app/db/*"))
    )
    error = failure(ssm.get_parameters, Names=["/app/db/user"])
    assert error.code == "AccessDeniedException"
    assert error.message.endswith("with an explicit deny in an identity-based policy")


def test_selectors_are_authorized_on_the_parameter_without_selector(server, admin, parameters):
    ssm = role_ssm(server, admin, allow("ssm:GetParameter", parameter_arn("/app/db/user")))
    assert ssm.get_parameter(Name="/app/db/user:1")["Parameter"]["Version"] == 1


def test_full_arn_names_are_authorized_on_that_arn(server, admin, parameters):
    arn = parameter_arn("/app/db/user")
    ssm = role_ssm(server, admin, allow("ssm:GetParameters", arn))
    assert ssm.get_parameters(Names=[arn])["Parameters"][0]["Value"] == "operator"


def test_missing_parameters_are_authorized_too(server, admin, parameters):
    ssm = role_ssm(server, admin, allow("ssm:GetParameters", parameter_arn("/app/*")))
    assert ssm.get_parameters(Names=["/app/missing"])["InvalidParameters"] == ["/app/missing"]
    error = failure(ssm.get_parameters, Names=["/nope/missing"])
    assert error.code == "AccessDeniedException"


def test_get_parameters_by_path_is_authorized_on_the_path_arn(server, admin, parameters):
    ssm = role_ssm(server, admin, allow("ssm:GetParametersByPath", parameter_arn("/app")))
    assert [
        p["Name"] for p in ssm.get_parameters_by_path(Path="/app", Recursive=True)["Parameters"]
    ] == ["/app/db/user"]
    error = failure(ssm.get_parameters_by_path, Path="/other")
    assert error.message.startswith(
        f"User: {session_arn('reader')} is not authorized to perform: ssm:GetParametersByPath "
        f"on resource: {parameter_arn('/other')} because"
    )


def test_a_path_with_a_trailing_slash_is_authorized_on_the_arn_with_the_slash(
    server, admin, parameters
):
    ssm = role_ssm(server, admin, allow("ssm:GetParametersByPath", parameter_arn("/app")))
    error = failure(ssm.get_parameters_by_path, Path="/app/", Recursive=True)
    assert error.code == "AccessDeniedException"
    assert f"on resource: {parameter_arn('/app')}/ because" in error.message
    ssm = role_ssm(
        server, admin, allow("ssm:GetParametersByPath", parameter_arn("/app") + "/"), name="slash"
    )
    assert [
        p["Name"] for p in ssm.get_parameters_by_path(Path="/app/", Recursive=True)["Parameters"]
    ] == ["/app/db/user"]


def test_describe_parameters_needs_the_action_granted(server, admin, parameters):
    ssm = role_ssm(server, admin, allow("ssm:GetParameters", "*"))
    error = failure(ssm.describe_parameters)
    assert error.code == "AccessDeniedException"
    assert f"ssm:DescribeParameters on resource: arn:aws:ssm:{REGION}:{ACCOUNT}:*" in error.message


def test_put_parameter_needs_the_action_granted(server, admin):
    ssm = role_ssm(server, admin, allow("ssm:PutParameter", parameter_arn("/app/*")))
    ssm.put_parameter(Name="/app/new", Value="v", Type="String")
    error = failure(ssm.put_parameter, Name="/elsewhere/new", Value="v", Type="String")
    assert error.code == "AccessDeniedException"
    assert parameter_arn("/elsewhere/new") in error.message


def test_condition_on_requested_region(server, admin, parameters):
    condition = {"StringEquals": {"aws:RequestedRegion": "eu-west-1"}}
    ssm = role_ssm(server, admin, allow("ssm:GetParameters", "*", Condition=condition))
    assert failure(ssm.get_parameters, Names=["/app/db/user"]).code == "AccessDeniedException"


def test_managed_policies_attached_to_the_role_count(server, admin, parameters):
    arn = create_role(admin, "managed-reader")
    policy_arn = admin.iam.create_policy(
        PolicyName="read-app",
        PolicyDocument='{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
        '"Action": "ssm:GetParameters", "Resource": "arn:aws:ssm:*:*:parameter/app/*"}]}',
    )["Policy"]["Arn"]
    admin.iam.attach_role_policy(RoleName="managed-reader", PolicyArn=policy_arn)
    ssm = client(server, "ssm", assume(admin, arn))
    assert ssm.get_parameters(Names=["/app/db/user"])["Parameters"][0]["Value"] == "operator"


def test_admin_is_never_checked(admin, parameters):
    assert admin.ssm.get_parameters(Names=["/other/token"])["Parameters"][0]["Value"] == "t"
