"""IAM policy evaluation, in-process."""

from fidelity.policy import Decision, evaluate

PARAM = "arn:aws:ssm:us-east-1:123456789012:parameter/app/db/password"


def doc(*statements):
    return {"Version": "2012-10-17", "Statement": list(statements)}


def test_allow_matches_action_wildcards_case_insensitively():
    policies = [doc({"Effect": "Allow", "Action": "SSM:GetParameter?", "Resource": "*"})]
    assert evaluate(policies, "ssm:GetParameters", PARAM) is Decision.ALLOW
    assert evaluate(policies, "ssm:GetParameter", PARAM) is Decision.IMPLICIT_DENY


def test_nothing_allowed_is_implicit_deny():
    assert evaluate([doc()], "ssm:GetParameters", PARAM) is Decision.IMPLICIT_DENY


def test_explicit_deny_wins_over_allow():
    policies = [
        doc({"Effect": "Allow", "Action": "ssm:*", "Resource": "*"}),
        doc({"Effect": "Deny", "Action": "ssm:GetParameters", "Resource": PARAM}),
    ]
    assert evaluate(policies, "ssm:GetParameters", PARAM) is Decision.EXPLICIT_DENY


def test_not_action_allows_every_other_action():
    policies = [doc({"Effect": "Allow", "NotAction": "ssm:Put*", "Resource": "*"})]
    assert evaluate(policies, "ssm:GetParameters", PARAM) is Decision.ALLOW
    assert evaluate(policies, "ssm:PutParameter", PARAM) is Decision.IMPLICIT_DENY


def test_resource_wildcards_are_case_sensitive():
    statement = {
        "Effect": "Allow",
        "Action": "ssm:GetParameters",
        "Resource": "arn:aws:ssm:*:*:parameter/app/*",
    }
    assert evaluate([doc(statement)], "ssm:GetParameters", PARAM) is Decision.ALLOW
    assert (
        evaluate([doc(statement)], "ssm:GetParameters", PARAM.replace("app", "App"))
        is Decision.IMPLICIT_DENY
    )


def test_not_resource_excludes_listed_resources():
    statement = {
        "Effect": "Allow",
        "Action": "ssm:*",
        "NotResource": "arn:aws:ssm:*:*:parameter/app/db/*",
    }
    assert evaluate([doc(statement)], "ssm:GetParameters", PARAM) is Decision.IMPLICIT_DENY
    assert (
        evaluate([doc(statement)], "ssm:GetParameters", PARAM.replace("db", "web"))
        is Decision.ALLOW
    )


def test_string_equals_and_string_like_conditions():
    equals = {
        "Effect": "Allow",
        "Action": "kms:Decrypt",
        "Resource": "*",
        "Condition": {"StringEquals": {"kms:ViaService": "ssm.us-east-1.amazonaws.com"}},
    }
    like = {
        "Effect": "Allow",
        "Action": "kms:Decrypt",
        "Resource": "*",
        "Condition": {"StringLike": {"kms:ViaService": "ssm.*.amazonaws.com"}},
    }
    via_ssm = {"kms:ViaService": "ssm.us-east-1.amazonaws.com"}
    via_s3 = {"kms:ViaService": "s3.us-east-1.amazonaws.com"}
    for statement in (equals, like):
        assert evaluate([doc(statement)], "kms:Decrypt", "k", via_ssm) is Decision.ALLOW
        assert evaluate([doc(statement)], "kms:Decrypt", "k", via_s3) is Decision.IMPLICIT_DENY
        assert evaluate([doc(statement)], "kms:Decrypt", "k", {}) is Decision.IMPLICIT_DENY


def test_condition_keys_are_case_insensitive_and_values_any_of():
    statement = {
        "Effect": "Allow",
        "Action": "*",
        "Resource": "*",
        "Condition": {"StringEquals": {"AWS:RequestedRegion": ["eu-west-1", "us-east-1"]}},
    }
    assert (
        evaluate([doc(statement)], "ssm:GetParameters", PARAM, {"aws:requestedregion": "us-east-1"})
        is Decision.ALLOW
    )


def test_string_not_equals_holds_when_key_is_absent():
    statement = {
        "Effect": "Deny",
        "Action": "*",
        "Resource": "*",
        "Condition": {"StringNotEquals": {"aws:RequestedRegion": "us-east-1"}},
    }
    assert evaluate([doc(statement)], "ssm:GetParameters", PARAM, {}) is Decision.EXPLICIT_DENY
    assert (
        evaluate([doc(statement)], "ssm:GetParameters", PARAM, {"aws:RequestedRegion": "us-east-1"})
        is Decision.IMPLICIT_DENY
    )


def test_arn_like_matches_component_by_component():
    statement = {
        "Effect": "Allow",
        "Action": "*",
        "Resource": "*",
        "Condition": {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/operator-*"}},
    }
    role = {"aws:PrincipalArn": "arn:aws:iam::123456789012:role/operator-prod"}
    elsewhere = {"aws:PrincipalArn": "arn:aws:iam::123456789012:user/operator-prod"}
    assert evaluate([doc(statement)], "sts:AssumeRole", "r", role) is Decision.ALLOW
    assert evaluate([doc(statement)], "sts:AssumeRole", "r", elsewhere) is Decision.IMPLICIT_DENY


def test_arn_equals_takes_wildcards_like_arn_like():
    statement = {
        "Effect": "Allow",
        "Action": "*",
        "Resource": "*",
        "Condition": {"ArnEquals": {"aws:PrincipalArn": "arn:aws:iam::123456789012:role/*"}},
    }
    context = {"aws:PrincipalArn": "arn:aws:iam::123456789012:role/operator"}
    assert evaluate([doc(statement)], "sts:AssumeRole", "r", context) is Decision.ALLOW


def test_unknown_condition_operator_never_matches():
    condition = {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}
    context = {"aws:CurrentTime": "2030-01-01T00:00:00Z"}
    for effect in ("Allow", "Deny"):
        statement = {"Effect": effect, "Action": "*", "Resource": "*", "Condition": condition}
        assert (
            evaluate([doc(statement)], "ssm:GetParameters", PARAM, context)
            is Decision.IMPLICIT_DENY
        )


def test_resource_policy_applies_only_to_named_principals():
    statement = {
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::123456789012:role/reader"},
        "Action": "kms:Decrypt",
        "Resource": "*",
    }
    reader = {"AWS": {"arn:aws:iam::123456789012:role/reader"}}
    writer = {"AWS": {"arn:aws:iam::123456789012:role/writer"}}
    assert evaluate([doc(statement)], "kms:Decrypt", "k", principals=reader) is Decision.ALLOW
    assert (
        evaluate([doc(statement)], "kms:Decrypt", "k", principals=writer) is Decision.IMPLICIT_DENY
    )


def test_account_id_principal_means_account_root():
    statement = {
        "Effect": "Allow",
        "Principal": {"AWS": "123456789012"},
        "Action": "sts:AssumeRole",
    }
    root = {"AWS": {"arn:aws:iam::123456789012:root"}}
    assert evaluate([doc(statement)], "sts:AssumeRole", "r", principals=root) is Decision.ALLOW


def test_wildcard_principal_matches_anyone():
    for principal in ("*", {"AWS": "*"}):
        statement = {
            "Effect": "Allow",
            "Principal": principal,
            "Action": "kms:Decrypt",
            "Resource": "*",
        }
        anyone = {"AWS": {"arn:aws:iam::123456789012:role/any"}}
        assert evaluate([doc(statement)], "kms:Decrypt", "k", principals=anyone) is Decision.ALLOW


def test_federated_principal_is_matched_by_provider_arn():
    provider = "arn:aws:iam::123456789012:oidc-provider/oidc.example.com/id/X"
    statement = {
        "Effect": "Allow",
        "Principal": {"Federated": provider},
        "Action": "sts:AssumeRoleWithWebIdentity",
    }
    assert (
        evaluate(
            [doc(statement)],
            "sts:AssumeRoleWithWebIdentity",
            "r",
            principals={"Federated": {provider}},
        )
        is Decision.ALLOW
    )
    assert (
        evaluate(
            [doc(statement)], "sts:AssumeRoleWithWebIdentity", "r", principals={"AWS": {provider}}
        )
        is Decision.IMPLICIT_DENY
    )


def test_single_statement_object_is_accepted():
    document = {
        "Version": "2012-10-17",
        "Statement": {"Effect": "Allow", "Action": "ssm:*", "Resource": "*"},
    }
    assert evaluate([document], "ssm:GetParameters", PARAM) is Decision.ALLOW
