"""Fixtures: the layer's server on a free port (started once), admin clients,
roles to assume, and service account tokens signed like a cluster's (for
IRSA's web identity and for the EKS Pod Identity agent)."""

import json
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import boto3
import jwt
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

AWS_DIR = Path(__file__).resolve().parents[1]
# The pure modules of the layer are tested in-process too.
sys.path.insert(0, str(AWS_DIR))

ACCOUNT = "123456789012"
REGION = "us-east-1"
ISSUER = "https://oidc.eks.us-east-1.amazonaws.com/id/TESTCLUSTER"
PROVIDER = ISSUER.removeprefix("https://")
PROVIDER_ARN = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{PROVIDER}"
AUDIENCE = "sts.amazonaws.com"
SUBJECT = "system:serviceaccount:ssm-operator:ssm-operator"
NAMESPACE, SERVICE_ACCOUNT = SUBJECT.split(":")[2:]
# The audience of the token EKS projects for the Pod Identity agent.
POD_IDENTITY_AUDIENCE = "pods.eks.amazonaws.com"
POD_IDENTITY_CLUSTER = "testenv"
POD_NAME = "ssm-operator-5d8f7c9b4-x2x7q"
POD_UID = "6f1c3b9e-2d4a-4f7e-9a51-0c8e2b7d4a10"
STARTUP_DEADLINE_SECONDS = 30
# Errors must reach the test as AWS sent them, not after the SDK's retries.
NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"})


@dataclass
class Server:
    url: str
    process: subprocess.Popen

    def control(self, method: str, path: str, body=None):
        response = requests.request(method, f"{self.url}/_fidelity/{path}", json=body, timeout=10)
        response.raise_for_status()
        return (
            response.json()
            if response.headers["Content-Type"].startswith("application/json")
            else response.text
        )

    def counters(self) -> list[dict]:
        return self.control("GET", "counters")["counters"]

    def count(self, action: str, caller: str = "admin", outcome: str = "ok") -> int:
        return sum(
            c["count"]
            for c in self.counters()
            if (c["action"], c["caller"], c["outcome"]) == (action, caller, outcome)
        )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def signing_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def server(tmp_path_factory, signing_key):
    directory = tmp_path_factory.mktemp("aws")
    public_pem = directory / "sa.pub"
    public_pem.write_bytes(
        signing_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    port = _free_port()
    log = (directory / "server.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            str(AWS_DIR / "server.py"),
            "--port",
            str(port),
            "--service-account-public-key",
            str(public_pem),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_DEADLINE_SECONDS
    while True:
        if process.poll() is not None:
            pytest.fail(f"the AWS server exited with {process.returncode}: {_tail(log.name)}")
        try:
            if requests.get(f"{url}/_fidelity/health", timeout=1).text == "ok":
                break
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(
                f"the AWS server was not healthy within {STARTUP_DEADLINE_SECONDS} s: {_tail(log.name)}"
            )
        time.sleep(0.05)
    yield Server(url, process)
    process.terminate()
    process.wait(timeout=10)
    log.close()


def _tail(path) -> str:
    return Path(path).read_text(errors="replace")[-2000:]


@pytest.fixture(autouse=True)
def fresh_state(request):
    """Every test starts from an empty moto and the layer's defaults."""
    if "server" not in request.fixturenames:
        yield
        return
    server = request.getfixturevalue("server")
    requests.post(f"{server.url}/moto-api/reset", timeout=10).raise_for_status()
    server.control("DELETE", "faults")
    server.control("DELETE", "rate")
    server.control("DELETE", "pod-identity-association")
    server.control("DELETE", "change-events")
    server.control("POST", "counters/reset")
    yield
    # Let calls hanging on an injected fault go.
    server.control("DELETE", "faults")


def client(
    server: Server,
    service: str,
    credentials: dict | None = None,
    config=NO_RETRIES,
    region: str = REGION,
):
    credentials = credentials or {"AccessKeyId": "AKIAADMINEXAMPLE0001", "SecretAccessKey": "admin"}
    return boto3.client(
        service,
        endpoint_url=server.url,
        region_name=region,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials.get("SessionToken"),
        config=config,
    )


@dataclass
class Admin:
    ssm: object
    kms: object
    iam: object
    sts: object


@pytest.fixture(scope="session")
def admin(server):
    return Admin(*(client(server, s) for s in ("ssm", "kms", "iam", "sts")))


def policy(*statements) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action, resource="*", **extra) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action, resource="*", **extra) -> dict:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


TRUST_ACCOUNT = {
    "Effect": "Allow",
    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
    "Action": "sts:AssumeRole",
}


def create_role(admin: Admin, name: str, *statements, trust=TRUST_ACCOUNT) -> str:
    """A role with one inline policy of `statements`; its ARN."""
    arn = admin.iam.create_role(RoleName=name, AssumeRolePolicyDocument=policy(trust))["Role"][
        "Arn"
    ]
    if statements:
        admin.iam.put_role_policy(
            RoleName=name, PolicyName="inline", PolicyDocument=policy(*statements)
        )
    return arn


def assume(admin: Admin, role_arn: str, session="test-session") -> dict:
    """Credentials of the role, issued by moto's STS to the (unchecked) admin."""
    return admin.sts.assume_role(RoleArn=role_arn, RoleSessionName=session)["Credentials"]


def parameter_arn(name: str) -> str:
    return f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/{name.removeprefix('/')}"


def session_arn(role: str, session="test-session") -> str:
    return f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}"


@dataclass
class AwsFailure:
    code: str
    status: int
    message: str

    @property
    def kms_error_code(self) -> str | None:
        """The KMS error code SSM embeds when KMS refused a decryption."""
        if "(Service: AWSKMS;" not in self.message:
            return None
        found = re.search(r"Error Code: (\w+);", self.message)
        return found.group(1) if found else None


def failure(call, *args, **kwargs) -> AwsFailure:
    with pytest.raises(ClientError) as raised:
        call(*args, **kwargs)
    error = raised.value.response
    return AwsFailure(
        error["Error"]["Code"],
        error["ResponseMetadata"]["HTTPStatusCode"],
        error["Error"]["Message"],
    )


@pytest.fixture
def oidc_provider(admin):
    admin.iam.create_open_id_connect_provider(
        Url=ISSUER,
        ClientIDList=[AUDIENCE],
        ThumbprintList=["9e99a48a9960b14926bb7f3b02e22da2b0ab7280"],
    )
    return PROVIDER_ARN


@pytest.fixture
def web_identity_token(signing_key):
    def sign(key=None, headers=None, **claims):
        now = int(time.time())
        payload = {"iss": ISSUER, "sub": SUBJECT, "aud": [AUDIENCE], "iat": now, "exp": now + 3600}
        payload.update(claims)
        return jwt.encode(payload, key or signing_key, algorithm="RS256", headers=headers)

    return sign


def irsa_trust(sub=SUBJECT, operator="StringEquals") -> dict:
    """An EKS IRSA trust policy statement for the test cluster's issuer."""
    return {
        "Effect": "Allow",
        "Principal": {"Federated": PROVIDER_ARN},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {operator: {f"{PROVIDER}:sub": sub, f"{PROVIDER}:aud": AUDIENCE}},
    }


@pytest.fixture
def pod_identity_token(web_identity_token):
    """A token as Kubernetes projects it into a Pod for the Pod Identity
    agent: the Pod in its `kubernetes.io` claim (`pod=None` leaves it out)."""

    def sign(
        key=None, namespace=NAMESPACE, service_account=SERVICE_ACCOUNT, pod=POD_NAME, **claims
    ):
        kubernetes = {"namespace": namespace, "serviceaccount": {"name": service_account}}
        if pod is not None:
            kubernetes["pod"] = {"name": pod, "uid": POD_UID}
        payload = {
            "sub": f"system:serviceaccount:{namespace}:{service_account}",
            "aud": [POD_IDENTITY_AUDIENCE],
            "kubernetes.io": kubernetes,
        }
        payload.update(claims)
        return web_identity_token(key=key, **payload)

    return sign


def pod_identity_trust(*actions) -> dict:
    """The trust policy statement a Pod Identity role needs (both actions
    unless others are given)."""
    return {
        "Effect": "Allow",
        "Principal": {"Service": "pods.eks.amazonaws.com"},
        "Action": list(actions) or ["sts:AssumeRole", "sts:TagSession"],
    }


def associate(server: Server, role_arn: str, **fields) -> dict:
    """A Pod Identity association of the test service account with the role."""
    body = {
        "cluster": POD_IDENTITY_CLUSTER,
        "namespace": NAMESPACE,
        "serviceAccount": SERVICE_ACCOUNT,
        "roleArn": role_arn,
        **fields,
    }
    return server.control("PUT", "pod-identity-association", body)


def pod_identity_agent(server: Server, token: str | None, **params) -> requests.Response:
    """What the Pod Identity agent answers a Pod's SDK asking with `token`."""
    headers = {"Authorization": token} if token is not None else {}
    return requests.get(
        f"{server.url}/_pod-identity/v1/credentials", headers=headers, params=params, timeout=10
    )


def agent_credentials(answer: requests.Response) -> dict:
    """The agent's credentials, shaped as `client` takes them."""
    assert answer.status_code == 200, answer.text
    document = answer.json()
    return {
        "AccessKeyId": document["AccessKeyId"],
        "SecretAccessKey": document["SecretAccessKey"],
        "SessionToken": document["Token"],
    }


def wait_until_expired(ssm, seconds: float = 10):
    """Calls DescribeParameters with `ssm`'s short-lived session until AWS
    refuses it as expired (ExpiredTokenException); fails after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            ssm.describe_parameters()
        except ClientError as refused:
            error = refused.response["Error"]
            assert error["Code"] == "ExpiredTokenException", error
            return
        assert time.monotonic() < deadline, "the expired session was still accepted"
        time.sleep(0.1)
