"""Who signed a request.

Credentials that moto's STS issued (AssumeRole, AssumeRoleWithWebIdentity,
and for the EKS Pod Identity agent) make the caller that assumed role,
checked against the role's policies. Any other access key is an unrestricted
administrator: the tests use one to set things up. moto gives static keys
its default account, so a test sets up another account by assuming that
account's `OrganizationAccountAccessRole` (the administrator role AWS
Organizations creates in member accounts): its sessions are administrators
of that account too, whether the role exists or not.

Sessions that carry session tags (EKS Pod Identity's, and those chained from
them) have them as principal tags: "When you use the session credentials to
make a subsequent request, the request context includes the aws:PrincipalTag
context key" (IAM User Guide, "Pass session tags in AWS STS"). The role's own
IAM tags, principal tags too on AWS, are not modelled."""

import re
from dataclasses import dataclass

from . import moto_state
from .awsrequest import AwsRequest

ADMIN = "admin"
ADMINISTRATOR_ROLE = "OrganizationAccountAccessRole"
# How the counters name an assumed role's calls: its role ARN, path included.
ROLE_ARN = re.compile(r"arn:aws[\w-]*:iam::\d{12}:role/[\w+=,.@/-]+")


@dataclass(frozen=True)
class Caller:
    account: str
    # What the counters call this caller: the role ARN of an assumed role,
    # "admin", or for unsigned calls the role asked for.
    name: str
    role_arn: str | None = None
    session_arn: str | None = None
    # The session's transitive tags (the only session tags the layer
    # knows, session_tags.py), as (key, value) pairs.
    session_tags: tuple[tuple[str, str], ...] = ()

    @property
    def is_assumed_role(self) -> bool:
        return self.role_arn is not None

    @property
    def root_arn(self) -> str:
        return f"arn:{moto_state.PARTITION}:iam::{self.account}:root"

    def condition_context(self, region: str) -> dict[str, str]:
        """The global condition keys AWS sets for this caller's requests."""
        context = {"aws:RequestedRegion": region, "aws:PrincipalAccount": self.account}
        if self.is_assumed_role:
            context["aws:PrincipalArn"] = self.role_arn
            context["aws:PrincipalType"] = "AssumedRole"
        for key, value in self.session_tags:
            context[f"aws:PrincipalTag/{key}"] = value
        return context

    def policy_documents(self) -> list[dict]:
        """The caller role's identity-based policies (none if it was deleted)."""
        role = moto_state.find_role(self.role_arn)
        return moto_state.role_policy_documents(role) if role else []


def identify(request: AwsRequest, session_tags: dict[str, str] | None = None) -> Caller:
    """The caller of `request`; `session_tags`: the tags the layer knows its
    session carries."""
    account = moto_state.account_of(request.access_key, request.account_header)
    if request.access_key is None:
        return Caller(account, request.params.get("RoleArn") or "anonymous")
    session = moto_state.assumed_role_session(account, request.access_key)
    if session is None or session.role_arn.rpartition("/")[2] == ADMINISTRATOR_ROLE:
        return Caller(account, ADMIN)
    return Caller(
        account=session.account_id,
        name=session.role_arn,
        role_arn=session.role_arn,
        session_arn=session.arn,
        session_tags=tuple((session_tags or {}).items()),
    )
