"""The checks AWS makes on STS calls and moto does not."""

from . import moto_state, policy
from .awsrequest import AwsRequest
from .callers import Caller
from .errors import AwsError
from .web_identity import WebIdentityVerifier


class StsGuard:
    def __init__(self, web_identity: WebIdentityVerifier):
        self._web_identity = web_identity

    def check(self, request: AwsRequest, caller: Caller):
        """Raise the AwsError STS would answer, or return to let moto answer."""
        if request.action == "AssumeRoleWithWebIdentity":
            self._web_identity.check(request.params)
        elif request.action == "AssumeRole" and caller.is_assumed_role:
            _check_role_chaining(request, caller)


def _check_role_chaining(request: AwsRequest, caller: Caller):
    """An assumed role assuming another: its own policies must allow
    sts:AssumeRole on the target, and the target's trust policy must trust it."""
    target_arn = request.params.get("RoleArn", "")
    context = caller.condition_context(request.region)
    identity = policy.evaluate(caller.policy_documents(), "sts:AssumeRole", target_arn, context)
    # "sts:RoleSessionName: compare the session name that a principal
    # specifies when assuming a role with the session name specified in the
    # policy" (IAM User Guide, "IAM and AWS STS condition context keys");
    # trust policies use it to tie a role to the sessions that may use it.
    trust_context = {**context, "sts:RoleSessionName": request.params.get("RoleSessionName", "")}
    source_identity = request.params.get("SourceIdentity")
    if source_identity is not None:
        trust_context["sts:SourceIdentity"] = source_identity
    target = moto_state.find_role(target_arn)

    def trusts(action: str) -> bool:
        return target is not None and policy.evaluate(
            [moto_state.trust_policy(target)],
            action,
            target_arn,
            trust_context,
            {"AWS": {caller.role_arn, caller.session_arn, caller.root_arn}},
        ) is policy.Decision.ALLOW

    if identity is not policy.Decision.ALLOW or not trusts("sts:AssumeRole"):
        raise AwsError(
            "AccessDenied",
            f"User: {caller.session_arn} is not authorized to perform: sts:AssumeRole "
            f"on resource: {target_arn}",
            403,
        )
    # "To set a source identity, the role's trust policy must allow the
    # sts:SetSourceIdentity action" (IAM User Guide, "Monitor and control
    # actions taken with assumed roles"). AWS answers AccessDenied; its exact
    # message for this case is not documented: this one follows the
    # sts:AssumeRole refusal's form.
    if source_identity is not None and not trusts("sts:SetSourceIdentity"):
        raise AwsError(
            "AccessDenied",
            f"User: {caller.session_arn} is not authorized to perform: sts:SetSourceIdentity "
            f"on resource: {target_arn}",
            403,
        )
