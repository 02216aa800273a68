"""The EKS Pod Identity agent: credentials of the associated role for a Pod's
token, EKS Auth's refusals, session tags and what they take in a role chain."""

import re
import time
from datetime import UTC, datetime

import boto3
import pytest
import requests
from botocore import UNSIGNED
from botocore.config import Config
from cryptography.hazmat.primitives.asymmetric import rsa

from conftest import (
    ACCOUNT,
    NAMESPACE,
    POD_IDENTITY_CLUSTER,
    POD_NAME,
    POD_UID,
    REGION,
    SERVICE_ACCOUNT,
    TRUST_ACCOUNT,
    agent_credentials,
    allow,
    associate,
    client,
    create_role,
    failure,
    irsa_trust,
    pod_identity_agent,
    pod_identity_trust,
    wait_until_expired,
)

ROLE = "pod-reader"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/{ROLE}"
TARGET_ARN = f"arn:aws:iam::{ACCOUNT}:role/target"
OPERATION = "eks-auth:AssumeRoleForPodIdentity"
CLUSTER_ARN = f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/{POD_IDENTITY_CLUSTER}"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
# eks-<cluster>-<pod>-<UUID>, cut to STS's 64 characters before the UUID.
SESSION = re.escape(f"eks-{POD_IDENTITY_CLUSTER}-{POD_NAME}"[: 64 - 37]) + f"-{UUID}"


def pod_role(admin, *statements, trust=None, name=ROLE) -> str:
    return create_role(admin, name, *statements, trust=trust or pod_identity_trust())


def pod_session(server, admin, token, *statements, trust=None, **association) -> dict:
    """Credentials the agent gives the test Pod for a fresh associated role."""
    arn = pod_role(admin, *statements, trust=trust)
    associate(server, arn, **association)
    return agent_credentials(pod_identity_agent(server, token))


def test_an_associated_service_account_gets_credentials_of_its_role(
    server, admin, pod_identity_token
):
    pod_role(admin, allow("ssm:GetParameters"))
    associate(server, ROLE_ARN)
    admin.ssm.put_parameter(Name="/app/x", Value="1", Type="String")
    answer = pod_identity_agent(server, pod_identity_token())
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/json"
    document = answer.json()
    assert set(document) == {"AccessKeyId", "SecretAccessKey", "Token", "AccountId", "Expiration"}
    assert document["AccountId"] == ACCOUNT
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", document["Expiration"])
    expiry = datetime.fromisoformat(document["Expiration"].replace("Z", "+00:00"))
    assert 6 * 3600 - 60 < (expiry - datetime.now(UTC)).total_seconds() <= 6 * 3600
    credentials = agent_credentials(answer)
    ssm = client(server, "ssm", credentials)
    assert ssm.get_parameters(Names=["/app/x"])["Parameters"][0]["Value"] == "1"
    identity = client(server, "sts", credentials).get_caller_identity()
    assert re.fullmatch(
        rf"arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE}/{SESSION}",
        identity["Arn"],
    )
    assert server.count("ssm:GetParameters", ROLE_ARN) == 1
    assert server.count(OPERATION, ROLE_ARN) == 1


def test_the_sdk_container_provider_reads_parameters_through_the_agent(
    server, admin, pod_identity_token, tmp_path, monkeypatch
):
    pod_role(admin, allow("ssm:GetParameters"))
    associate(server, ROLE_ARN)
    admin.ssm.put_parameter(Name="/app/x", Value="1", Type="String")
    token_file = tmp_path / "eks-pod-identity-token"
    token_file.write_text(pod_identity_token())
    monkeypatch.setenv(
        "AWS_CONTAINER_CREDENTIALS_FULL_URI", f"{server.url}/_pod-identity/v1/credentials"
    )
    monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.url)
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    ssm = boto3.session.Session(region_name=REGION).client("ssm")
    assert ssm.get_parameters(Names=["/app/x"])["Parameters"][0]["Value"] == "1"
    assert server.count(OPERATION, ROLE_ARN) == 1
    assert server.count("ssm:GetParameters", ROLE_ARN) == 1


def eks_auth_refusal(answer, code: str, status: int):
    """The agent's answer for an EKS Auth error (AWS's agent's form)."""
    assert answer.status_code == status, answer.text
    assert answer.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert re.fullmatch(rf"\[{UUID}\]: \({code}\): .+, fault: client\n", answer.text), answer.text


def test_without_a_token_the_agent_refuses_before_eks_auth(server, admin):
    pod_role(admin)
    associate(server, ROLE_ARN)
    answer = pod_identity_agent(server, None)
    assert (answer.status_code, answer.text) == (400, "Service account token cannot be empty\n")
    answer = pod_identity_agent(server, "not-a-jwt")
    assert answer.status_code == 400
    assert answer.text.startswith("Service account token cannot be parsed: ")
    assert server.count(OPERATION, "anonymous", "400") == 2


def test_an_expired_token_is_refused_by_the_agent(server, admin, pod_identity_token):
    pod_role(admin)
    associate(server, ROLE_ARN)
    answer = pod_identity_agent(server, pod_identity_token(exp=int(time.time()) - 60))
    assert (answer.status_code, answer.text) == (
        400,
        "Service account token failed basic claim validations: token has invalid claims: "
        "token is expired\n",
    )
    # The caller is the token's association, so that faults scoped to the role apply.
    assert server.count(OPERATION, ROLE_ARN, "400") == 1


def test_a_token_signed_by_another_key_is_an_invalid_token(server, admin, pod_identity_token):
    pod_role(admin)
    associate(server, ROLE_ARN)
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    answer = pod_identity_agent(server, pod_identity_token(key=stranger))
    eks_auth_refusal(answer, "InvalidTokenException", 400)
    assert server.count(OPERATION, ROLE_ARN, "InvalidTokenException") == 1


def test_a_token_for_another_audience_is_an_invalid_token(server, admin, pod_identity_token):
    pod_role(admin)
    associate(server, ROLE_ARN)
    eks_auth_refusal(
        pod_identity_agent(server, pod_identity_token(aud=["sts.amazonaws.com"])),
        "InvalidTokenException",
        400,
    )


def test_a_service_account_without_association_is_not_found(server, admin, pod_identity_token):
    pod_role(admin)
    associate(server, ROLE_ARN)
    answer = pod_identity_agent(server, pod_identity_token(service_account="other"))
    eks_auth_refusal(answer, "ResourceNotFoundException", 404)
    assert server.count(OPERATION, "anonymous", "ResourceNotFoundException") == 1
    # An association in another cluster does not serve an agent of this one.
    answer = pod_identity_agent(server, pod_identity_token(), cluster="elsewhere")
    eks_auth_refusal(answer, "ResourceNotFoundException", 404)


@pytest.mark.parametrize(
    "trust",
    [
        pod_identity_trust("sts:AssumeRole"),
        TRUST_ACCOUNT,
        {**pod_identity_trust(), "Principal": {"Service": "ec2.amazonaws.com"}},
    ],
    ids=["without-tag-session", "account-principal", "other-service"],
)
def test_a_role_that_does_not_trust_pod_identity_is_access_denied(
    server, admin, pod_identity_token, trust
):
    pod_role(admin, trust=trust)
    associate(server, ROLE_ARN)
    eks_auth_refusal(pod_identity_agent(server, pod_identity_token()), "AccessDeniedException", 400)
    assert server.count(OPERATION, ROLE_ARN, "AccessDeniedException") == 1


def test_a_missing_role_is_access_denied(server, pod_identity_token):
    associate(server, ROLE_ARN)
    eks_auth_refusal(pod_identity_agent(server, pod_identity_token()), "AccessDeniedException", 400)


def test_without_session_tags_the_trust_needs_no_tag_session(server, admin, pod_identity_token):
    pod_role(admin, trust=pod_identity_trust("sts:AssumeRole"))
    associate(server, ROLE_ARN, disableSessionTags=True)
    assert pod_identity_agent(server, pod_identity_token()).status_code == 200


def test_a_trust_policy_can_require_the_request_tags(server, admin, pod_identity_token):
    only_this_account = {
        **pod_identity_trust(),
        "Condition": {
            "StringEquals": {
                "aws:RequestTag/kubernetes-namespace": NAMESPACE,
                "aws:RequestTag/kubernetes-service-account": SERVICE_ACCOUNT,
                "aws:RequestTag/eks-cluster-arn": CLUSTER_ARN,
            }
        },
    }
    pod_role(admin, trust=only_this_account)
    associate(server, ROLE_ARN)
    assert pod_identity_agent(server, pod_identity_token()).status_code == 200
    server.control("DELETE", "pod-identity-association")
    associate(server, ROLE_ARN, namespace="other")
    answer = pod_identity_agent(server, pod_identity_token(namespace="other"))
    eks_auth_refusal(answer, "AccessDeniedException", 400)


def test_session_tags_are_principal_tags_of_the_session(server, admin, pod_identity_token):
    own_namespace = allow(
        "ssm:GetParameters",
        Condition={
            "StringEquals": {
                "aws:PrincipalTag/kubernetes-namespace": NAMESPACE,
                "aws:PrincipalTag/kubernetes-pod-name": POD_NAME,
                "aws:PrincipalTag/kubernetes-pod-uid": POD_UID,
                "aws:PrincipalTag/eks-cluster-name": POD_IDENTITY_CLUSTER,
            }
        },
    )
    admin.ssm.put_parameter(Name="/app/x", Value="1", Type="String")
    credentials = pod_session(server, admin, pod_identity_token(), own_namespace)
    assert client(server, "ssm", credentials).get_parameters(Names=["/app/x"])["Parameters"]
    server.control("DELETE", "pod-identity-association")
    associate(server, ROLE_ARN, disableSessionTags=True)
    untagged = agent_credentials(pod_identity_agent(server, pod_identity_token()))
    error = failure(client(server, "ssm", untagged).get_parameters, Names=["/app/x"])
    assert (error.code, error.status) == ("AccessDeniedException", 400)


def test_without_the_pod_claim_the_session_is_named_after_the_service_account(
    server, admin, pod_identity_token
):
    credentials = pod_session(server, admin, pod_identity_token(pod=None))
    arn = client(server, "sts", credentials).get_caller_identity()["Arn"]
    assert re.fullmatch(rf".*/eks-{POD_IDENTITY_CLUSTER}-{SERVICE_ACCOUNT}-{UUID}", arn), arn


def test_long_session_names_are_cut_to_sts_limit_keeping_the_uuid(
    server, admin, pod_identity_token
):
    long_pod = "p" * 80
    credentials = pod_session(server, admin, pod_identity_token(pod=long_pod))
    session = client(server, "sts", credentials).get_caller_identity()["Arn"].rsplit("/", 1)[1]
    assert len(session) == 64
    assert re.fullmatch(rf"eks-{POD_IDENTITY_CLUSTER}-p+-{UUID}", session), session


def test_short_lived_credentials_are_refused_after_their_expiry(server, admin, pod_identity_token):
    pod_role(admin, allow("ssm:DescribeParameters"))
    associate(server, ROLE_ARN)
    server.control(
        "POST",
        "faults",
        {"action": OPERATION, "kind": "short_lived", "seconds": 1, "caller": ROLE_ARN},
    )
    answer = pod_identity_agent(server, pod_identity_token())
    expiry = datetime.fromisoformat(answer.json()["Expiration"].replace("Z", "+00:00"))
    assert (expiry - datetime.now(UTC)).total_seconds() <= 2
    ssm = client(server, "ssm", agent_credentials(answer))
    wait_until_expired(ssm)
    # The next credentials last as usual.
    fresh = agent_credentials(pod_identity_agent(server, pod_identity_token()))
    assert client(server, "ssm", fresh).describe_parameters()


def test_eks_auth_faults_answer_through_the_agent(server, admin, pod_identity_token):
    pod_role(admin)
    associate(server, ROLE_ARN)
    server.control("POST", "faults", {"action": OPERATION, "kind": "throttle", "caller": ROLE_ARN})
    answer = pod_identity_agent(server, pod_identity_token())
    eks_auth_refusal(answer, "ThrottlingException", 429)
    assert pod_identity_agent(server, pod_identity_token()).status_code == 200
    assert server.count(OPERATION, ROLE_ARN, "ThrottlingException") == 1
    assert server.count(OPERATION, ROLE_ARN) == 1


def chaining_pod_session(server, admin, token, target_trust_actions, identity_actions=None):
    """A Pod session allowed to chain to `target`, whose trust allows the
    Pod role `target_trust_actions`."""
    identity = allow(identity_actions or ["sts:AssumeRole", "sts:TagSession"], TARGET_ARN)
    credentials = pod_session(server, admin, token, identity)
    trust = {"Effect": "Allow", "Principal": {"AWS": ROLE_ARN}, "Action": target_trust_actions}
    create_role(
        admin, "target", allow("sts:AssumeRole", "*"), allow("sts:TagSession", "*"), trust=trust
    )
    return client(server, "sts", credentials)


def test_a_chain_from_a_pod_session_needs_tag_session_in_the_target_trust(
    server, admin, pod_identity_token
):
    sts = chaining_pod_session(server, admin, pod_identity_token(), ["sts:AssumeRole"])
    error = failure(sts.assume_role, RoleArn=TARGET_ARN, RoleSessionName="chained")
    assert (error.code, error.status) == ("AccessDenied", 403)
    assert re.fullmatch(
        rf"User: arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE}/{SESSION} "
        rf"is not authorized to perform: sts:TagSession on resource: "
        rf"{re.escape(TARGET_ARN)}",
        error.message,
    ), error.message
    admin.iam.update_assume_role_policy(
        RoleName="target",
        PolicyDocument=(
            '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
            f'"Principal": {{"AWS": "{ROLE_ARN}"}}, '
            '"Action": ["sts:AssumeRole", "sts:TagSession"]}]}'
        ),
    )
    assert sts.assume_role(RoleArn=TARGET_ARN, RoleSessionName="chained")["Credentials"]


def test_a_chain_from_a_pod_session_needs_tag_session_in_its_own_policy(
    server, admin, pod_identity_token
):
    sts = chaining_pod_session(
        server,
        admin,
        pod_identity_token(),
        ["sts:AssumeRole", "sts:TagSession"],
        identity_actions=["sts:AssumeRole"],
    )
    error = failure(sts.assume_role, RoleArn=TARGET_ARN, RoleSessionName="chained")
    assert (error.code, error.status) == ("AccessDenied", 403)
    assert "sts:TagSession" in error.message


def test_a_chained_session_inherits_the_tags(server, admin, pod_identity_token):
    sts = chaining_pod_session(
        server, admin, pod_identity_token(), ["sts:AssumeRole", "sts:TagSession"]
    )
    chained = sts.assume_role(RoleArn=TARGET_ARN, RoleSessionName="chained")["Credentials"]
    third = create_role(
        admin,
        "third",
        trust={"Effect": "Allow", "Principal": {"AWS": TARGET_ARN}, "Action": "sts:AssumeRole"},
    )
    error = failure(
        client(server, "sts", chained).assume_role, RoleArn=third, RoleSessionName="third"
    )
    assert (error.code, error.status) == ("AccessDenied", 403)
    assert error.message.endswith(f"sts:TagSession on resource: {third}")
    # The inherited tags are still the target session's principal tags.
    admin.ssm.put_parameter(Name="/app/x", Value="1", Type="String")
    admin.iam.put_role_policy(
        RoleName="target",
        PolicyName="read",
        PolicyDocument=(
            '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
            '"Action": "ssm:GetParameters", "Resource": "*", "Condition": {"StringEquals": '
            f'{{"aws:PrincipalTag/kubernetes-namespace": "{NAMESPACE}"}}}}}}]}}'
        ),
    )
    assert client(server, "ssm", chained).get_parameters(Names=["/app/x"])["Parameters"]


def test_a_chain_from_an_untagged_pod_session_needs_no_tag_session(
    server, admin, pod_identity_token
):
    credentials = pod_session(
        server,
        admin,
        pod_identity_token(),
        allow("sts:AssumeRole", TARGET_ARN),
        trust=pod_identity_trust("sts:AssumeRole"),
        disableSessionTags=True,
    )
    create_role(
        admin,
        "target",
        trust={"Effect": "Allow", "Principal": {"AWS": ROLE_ARN}, "Action": "sts:AssumeRole"},
    )
    sts = client(server, "sts", credentials)
    assert sts.assume_role(RoleArn=TARGET_ARN, RoleSessionName="chained")["Credentials"]


def test_a_chain_from_an_irsa_session_needs_no_tag_session(
    server, admin, oidc_provider, web_identity_token
):
    irsa = create_role(admin, "irsa", allow("sts:AssumeRole", TARGET_ARN), trust=irsa_trust())
    unsigned = client(
        server, "sts", config=Config(signature_version=UNSIGNED, retries={"total_max_attempts": 1})
    )
    credentials = unsigned.assume_role_with_web_identity(
        RoleArn=irsa, RoleSessionName="irsa", WebIdentityToken=web_identity_token()
    )["Credentials"]
    create_role(
        admin,
        "target",
        trust={"Effect": "Allow", "Principal": {"AWS": irsa}, "Action": "sts:AssumeRole"},
    )
    sts = client(server, "sts", credentials)
    assert sts.assume_role(RoleArn=TARGET_ARN, RoleSessionName="chained")["Credentials"]


def test_a_put_replaces_the_association_of_the_same_service_account(
    server, admin, pod_identity_token
):
    pod_role(admin)
    other = pod_role(admin, name="other")
    first = associate(server, ROLE_ARN)
    assert first == {
        "cluster": POD_IDENTITY_CLUSTER,
        "namespace": NAMESPACE,
        "serviceAccount": SERVICE_ACCOUNT,
        "roleArn": ROLE_ARN,
        "disableSessionTags": False,
        "region": REGION,
    }
    associate(server, other)
    listed = server.control("GET", "pod-identity-association")["associations"]
    assert [a["roleArn"] for a in listed] == [other]
    credentials = agent_credentials(pod_identity_agent(server, pod_identity_token()))
    arn = client(server, "sts", credentials).get_caller_identity()["Arn"]
    assert arn.startswith(f"arn:aws:sts::{ACCOUNT}:assumed-role/other/")
    assert server.control("DELETE", "pod-identity-association") == {"associations": []}
    eks_auth_refusal(
        pod_identity_agent(server, pod_identity_token()), "ResourceNotFoundException", 404
    )


@pytest.mark.parametrize(
    "body",
    [
        {"cluster": "-bad", "namespace": "n", "serviceAccount": "s", "roleArn": ROLE_ARN},
        {"cluster": "c", "namespace": "", "serviceAccount": "s", "roleArn": ROLE_ARN},
        {"cluster": "c", "namespace": "n", "serviceAccount": "a:b", "roleArn": ROLE_ARN},
        {
            "cluster": "c",
            "namespace": "n",
            "serviceAccount": "s",
            "roleArn": f"arn:aws:sts::{ACCOUNT}:assumed-role/x/y",
        },
        {
            "cluster": "c",
            "namespace": "n",
            "serviceAccount": "s",
            "roleArn": ROLE_ARN,
            "disableSessionTags": "yes",
        },
    ],
)
def test_an_invalid_association_is_refused(server, body):
    answer = requests.put(f"{server.url}/_fidelity/pod-identity-association", json=body, timeout=10)
    assert answer.status_code == 400
    assert "error" in answer.json()


def test_only_get_of_the_credentials_path_is_served(server):
    assert (
        requests.post(f"{server.url}/_pod-identity/v1/credentials", timeout=10).status_code == 405
    )
    assert requests.get(f"{server.url}/_pod-identity/v2/other", timeout=10).status_code == 404
    assert server.counters() == []
