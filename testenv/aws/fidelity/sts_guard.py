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
    target = moto_state.find_role(target_arn)
    trusted = (
        target is not None
        and policy.evaluate(
            [moto_state.trust_policy(target)],
            "sts:AssumeRole",
            target_arn,
            trust_context,
            {"AWS": {caller.role_arn, caller.session_arn, caller.root_arn}},
        )
        is policy.Decision.ALLOW
    )
    if identity is not policy.Decision.ALLOW or not trusted:
        raise AwsError(
            "AccessDenied",
            f"User: {caller.session_arn} is not authorized to perform: sts:AssumeRole "
            f"on resource: {target_arn}",
            403,
        )
