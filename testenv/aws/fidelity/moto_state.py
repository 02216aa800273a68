"""Access to moto's backends and models: moto is pinned exactly, and the layer
reads moto's state (not its API) mainly through this module."""

import json
import os
from urllib.parse import unquote

from moto.iam.models import get_account_id_from, iam_backends
from moto.kms.models import kms_backends
from moto.ssm.models import ssm_backends
from moto.sts.models import sts_backends

# The layer serves the commercial partition only, like the rest of the tests.
PARTITION = "aws"


def account_of(access_key: str | None, account_header: str | None) -> str:
    """The account moto serves a request from, by moto's own precedence."""
    if "MOTO_ACCOUNT_ID" in os.environ:
        return os.environ["MOTO_ACCOUNT_ID"]
    if account_header:
        return account_header
    return get_account_id_from(access_key or "")


def assumed_role_session(account: str, access_key: str):
    """moto's AssumedRole whose temporary credentials use `access_key`, if any.
    moto's STS records every session it issued (AssumeRole,
    AssumeRoleWithWebIdentity) in the role account's backend."""
    return sts_backends[account][PARTITION].get_assumed_role_from_access_key(access_key)


def issue_session(role_arn: str, session_name: str, region: str, duration: int):
    """A session of the role issued by moto's STS as AssumeRole issues one
    (the role need not exist), so that its access key identifies the role
    like any other: moto's AssumedRole (`access_key_id`, `secret_access_key`,
    `session_token`, `arn`, `account_id`)."""
    account = account_in_arn(role_arn) or get_account_id_from("")
    return sts_backends[account][PARTITION].assume_role(
        region_name=region,
        role_session_name=session_name,
        role_arn=role_arn,
        policy=None,
        duration=duration,
        external_id=None,
    )


def iam_backend(account: str):
    return iam_backends[account][PARTITION]


def ssm_backend(account: str, region: str):
    return ssm_backends[account][region]


def kms_backend(account: str, region: str):
    return kms_backends[account][region]


def find_role(role_arn: str):
    """moto's Role with this ARN (path included), or None."""
    account = account_in_arn(role_arn)
    if account is None:
        return None
    for role in iam_backend(account).get_roles():
        if role.arn == role_arn:
            return role
    return None


def role_policy_documents(role) -> list[dict]:
    """The identity-based policies of a role: its inline policies and the
    default version of each attached managed policy."""
    documents = list(role.policies.values())
    for policy in role.managed_policies.values():
        for version in policy.versions:
            if version.version_id == policy.default_version_id:
                documents.append(version.document)
    return [parse_policy(document) for document in documents]


def trust_policy(role) -> dict:
    return parse_policy(role.assume_role_policy_document)


def find_oidc_provider(account: str, issuer_host_path: str):
    """The IAM OIDC provider registered for an issuer (URL without scheme).
    moto stores a provider's URL without its scheme, as AWS names it in ARNs."""
    for provider in iam_backend(account).open_id_providers.values():
        if provider.url.rstrip("/") == issuer_host_path.rstrip("/"):
            return provider
    return None


def account_in_arn(arn: str) -> str | None:
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or not parts[4]:
        return None
    return parts[4]


def parse_policy(document) -> dict:
    """A policy document as moto stores it: a JSON string, sometimes
    URL-encoded (as the IAM query API carries it), or already parsed."""
    if isinstance(document, dict):
        return document
    for text in (document, unquote(document)):
        try:
            parsed = json.loads(text)
        except (TypeError, ValueError):
            continue
        if isinstance(parsed, dict):
            return parsed
    return {}
