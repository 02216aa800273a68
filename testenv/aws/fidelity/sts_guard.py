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
            _check_duration_range(request)
            self._web_identity.check(request.params)
            _check_max_session_duration(request)
        elif request.action == "AssumeRole":
            _check_duration_range(request)
            if caller.is_assumed_role:
                _check_role_chaining(request, caller)
                _check_chained_duration(request)
            _check_max_session_duration(request)


# "DurationSeconds … Valid Range: Minimum value of 900. Maximum value of
# 43200." (STS API Reference, AssumeRole and AssumeRoleWithWebIdentity).
MIN_DURATION, MAX_DURATION = 900, 43200
# "If you do not specify a value for DurationSeconds, it defaults to 3600
# seconds" (ibid.).
DEFAULT_DURATION = 3600
# "Role chaining limits your AWS CLI or AWS API role session to a maximum of
# one hour" (IAM User Guide, "Methods to assume a role").
CHAINED_MAX_DURATION = 3600


def _duration(request: AwsRequest) -> int:
    try:
        return int(request.params.get("DurationSeconds", DEFAULT_DURATION))
    except ValueError:
        return DEFAULT_DURATION


def _check_duration_range(request: AwsRequest):
    """Out of the parameter's range: AWS's input validation answers before
    anything else is looked at, in its usual "1 validation error detected"
    form."""
    duration = _duration(request)
    if duration < MIN_DURATION:
        bound = f"greater than or equal to {MIN_DURATION}"
    elif duration > MAX_DURATION:
        bound = f"less than or equal to {MAX_DURATION}"
    else:
        return
    raise AwsError(
        "ValidationError",
        f"1 validation error detected: Value '{duration}' at 'durationSeconds' "
        f"failed to satisfy constraint: Member must have value {bound}",
        400,
    )


def _check_chained_duration(request: AwsRequest):
    """A role assumed with an assumed role's credentials. The text is the one
    AWS answers: "The requested DurationSeconds exceeds the 1 hour session
    limit for roles assumed by role chaining." Whether AWS checks it before or
    after the trust policy is not documented; here it comes after."""
    if _duration(request) > CHAINED_MAX_DURATION:
        raise AwsError(
            "ValidationError",
            "The requested DurationSeconds exceeds the 1 hour session limit for roles "
            "assumed by role chaining.",
            400,
        )


def _check_max_session_duration(request: AwsRequest):
    """A session longer than the role allows (its MaxSessionDuration, 1 hour
    unless set): "The requested DurationSeconds exceeds the MaxSessionDuration
    set for this role." (the text AWS answers)."""
    role = moto_state.find_role(request.params.get("RoleArn", ""))
    if role is None:
        return
    limit = int(getattr(role, "max_session_duration", None) or DEFAULT_DURATION)
    if _duration(request) > limit:
        raise AwsError(
            "ValidationError",
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
            400,
        )


def _check_role_chaining(request: AwsRequest, caller: Caller):
    """An assumed role assuming another: its own policies must allow
    sts:AssumeRole on the target, and the target's trust policy must trust it.
    A session with transitive session tags (EKS Pod Identity's) passes them
    on, which takes sts:TagSession as well."""
    target_arn = request.params.get("RoleArn", "")
    # "the new session inherits any transitive session tags from the calling
    # session" (STS API Reference, AssumeRole, Tags): the request carries them,
    # as trust policies of roles chained from Pod Identity sessions test them
    # ("aws:RequestTag/eks-cluster-arn" … in EKS User Guide, "Access AWS
    # Resources using EKS Pod Identity Target IAM Roles").
    context = caller.condition_context(request.region) | {
        f"aws:RequestTag/{key}": value for key, value in caller.session_tags
    }
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
    # "In addition to the action that matches the API operation, you must have
    # the following permissions-only action in your policy: sts:TagSession"
    # (IAM User Guide, "Pass session tags in AWS STS", Permissions required to
    # add session tags). That inherited transitive tags need it too, in the
    # target's trust policy, is AWS's answer to a chain from an EKS Pod
    # Identity session ("is not authorized to perform: sts:TagSession on
    # resource: <role ARN>", mattrobinsonsre/terrapod#1546); the IAM User
    # Guide's "Chaining roles with session tags" does not say it. As for
    # sts:AssumeRole, the layer asks both the caller's policies and the
    # target's trust (AWS needs the caller's own grant at least where the
    # trust names the account root, ibid.).
    if caller.session_tags and (
        policy.evaluate(caller.policy_documents(), "sts:TagSession", target_arn, context)
        is not policy.Decision.ALLOW
        or not trusts("sts:TagSession")
    ):
        raise AwsError(
            "AccessDenied",
            f"User: {caller.session_arn} is not authorized to perform: sts:TagSession "
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
