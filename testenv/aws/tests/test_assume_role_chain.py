"""An assumed role assuming another (role chaining): the caller's policies must
allow sts:AssumeRole on the target, and the target's trust policy must trust it."""

from conftest import ACCOUNT, allow, assume, client, create_role, failure, session_arn

TARGET = f"arn:aws:iam::{ACCOUNT}:role/target"


def trusting(principal) -> dict:
    return {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}


def chained_sts(server, admin, *statements):
    source = create_role(admin, "source", *statements)
    return client(server, "sts", assume(admin, source)), source


def test_assume_role_chain_allowed_by_policy_and_trust(server, admin):
    sts, source = chained_sts(server, admin, allow("sts:AssumeRole", TARGET))
    create_role(admin, "target", trust=trusting(source))
    answer = sts.assume_role(RoleArn=TARGET, RoleSessionName="chained")
    assert answer["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/target/chained"
    assert server.count("sts:AssumeRole", source) == 1


def test_a_chained_session_over_one_hour_is_refused_whatever_the_role_allows(server, admin):
    sts, source = chained_sts(server, admin, allow("sts:AssumeRole", TARGET))
    create_role(admin, "target", trust=trusting(source))
    admin.iam.update_role(RoleName="target", MaxSessionDuration=7200)
    error = failure(sts.assume_role, RoleArn=TARGET, RoleSessionName="chained", DurationSeconds=3601)
    assert (error.code, error.status) == ("ValidationError", 400)
    assert error.message == (
        "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by "
        "role chaining."
    )
    answer = sts.assume_role(RoleArn=TARGET, RoleSessionName="chained", DurationSeconds=3600)
    assert answer["Credentials"]["AccessKeyId"]


def test_assume_role_chain_trusted_through_account_root(server, admin):
    sts, _ = chained_sts(server, admin, allow("sts:AssumeRole", "*"))
    create_role(admin, "target", trust=trusting(ACCOUNT))
    assert sts.assume_role(RoleArn=TARGET, RoleSessionName="chained")["Credentials"]["AccessKeyId"]


def test_assume_role_chain_denied_without_identity_grant(server, admin):
    sts, source = chained_sts(
        server, admin, allow("sts:AssumeRole", f"arn:aws:iam::{ACCOUNT}:role/elsewhere")
    )
    create_role(admin, "target", trust=trusting(source))
    error = failure(sts.assume_role, RoleArn=TARGET, RoleSessionName="chained")
    assert (error.code, error.status) == ("AccessDenied", 403)
    assert error.message == (
        f"User: {session_arn('source')} is not authorized to perform: sts:AssumeRole on resource: {TARGET}"
    )


def test_assume_role_chain_denied_by_trust_policy(server, admin):
    sts, _ = chained_sts(server, admin, allow("sts:AssumeRole", TARGET))
    create_role(admin, "target", trust=trusting(f"arn:aws:iam::{ACCOUNT}:role/someone-else"))
    error = failure(sts.assume_role, RoleArn=TARGET, RoleSessionName="chained")
    assert (error.code, error.status) == ("AccessDenied", 403)
    assert error.message.endswith(f"sts:AssumeRole on resource: {TARGET}")


def test_assume_role_chain_to_missing_role_is_denied(server, admin):
    sts, _ = chained_sts(server, admin, allow("sts:AssumeRole", "*"))
    assert failure(sts.assume_role, RoleArn=TARGET, RoleSessionName="chained").status == 403


def test_chained_credentials_carry_the_target_role(server, admin):
    sts, source = chained_sts(server, admin, allow("sts:AssumeRole", TARGET))
    create_role(admin, "target", allow("ssm:GetParameters", "*"), trust=trusting(source))
    admin.ssm.put_parameter(Name="/app/x", Value="1", Type="String")
    credentials = sts.assume_role(RoleArn=TARGET, RoleSessionName="chained")["Credentials"]
    assert client(server, "ssm", credentials).get_parameters(Names=["/app/x"])["Parameters"]
    assert server.count("ssm:GetParameters", TARGET) == 1


def test_a_trust_policy_can_require_the_session_name(server, admin):
    sts, source = chained_sts(server, admin, allow("sts:AssumeRole", TARGET))
    only_payments = {**trusting(source),
                     "Condition": {"StringEquals": {"sts:RoleSessionName": "ssm-operator.payments"}}}
    create_role(admin, "target", trust=only_payments)
    assert sts.assume_role(RoleArn=TARGET, RoleSessionName="ssm-operator.payments")["Credentials"]
    error = failure(sts.assume_role, RoleArn=TARGET, RoleSessionName="ssm-operator.orders")
    assert (error.code, error.status) == ("AccessDenied", 403)


def test_a_source_identity_needs_the_trust_policys_leave(server, admin):
    sts, source = chained_sts(server, admin, allow("sts:AssumeRole", TARGET))
    create_role(admin, "target", trust=trusting(source))
    error = failure(sts.assume_role, RoleArn=TARGET, RoleSessionName="session", SourceIdentity="ssm-operator.payments")
    assert (error.code, error.status) == ("AccessDenied", 403)
    assert "sts:SetSourceIdentity" in error.message


def test_a_trust_policy_can_require_the_source_identity(server, admin):
    sts, source = chained_sts(server, admin, allow("sts:AssumeRole", TARGET))
    only_payments = {"Effect": "Allow", "Principal": {"AWS": source},
                     "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
                     "Condition": {"StringEquals": {"sts:SourceIdentity": "ssm-operator.payments"}}}
    create_role(admin, "target", trust=only_payments)
    assert sts.assume_role(RoleArn=TARGET, RoleSessionName="session",
                           SourceIdentity="ssm-operator.payments")["Credentials"]
    error = failure(sts.assume_role, RoleArn=TARGET, RoleSessionName="session",
                    SourceIdentity="ssm-operator.orders")
    assert error.status == 403
