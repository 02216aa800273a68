"""The checks AWS makes on SSM calls and moto does not: IAM authorization of
the caller's role on the real parameter ARNs, and KMS on SecureString reads
with decryption."""

from . import kms_guard, policy, shared_parameters
from .awsrequest import AwsRequest
from .callers import Caller
from .counters import Counters
from .errors import AwsError, DecryptRefused
from .ssm_parameters import (
    PARAMETER_READS,
    account_arn,
    parameter_arn,
    parameters_returned,
    path_arn,
)


def check(request: AwsRequest, caller: Caller, counters: Counters):
    """Raise the AwsError AWS would answer, or return to let moto answer."""
    if caller.is_assumed_role:
        _authorize(request, caller)
        _authorize_cross_account(request, caller)
    if request.action in PARAMETER_READS and request.params.get("WithDecryption") is True:
        _check_decryption(request, caller, counters)


def decrypts_secure_string(request: AwsRequest, caller: Caller) -> bool:
    """Whether the call makes SSM ask KMS to decrypt: a parameter read with
    decryption that returns a SecureString."""
    if request.service != "ssm" or request.action not in PARAMETER_READS:
        return False
    if request.params.get("WithDecryption") is not True:
        return False
    own = parameters_returned(request.action, request.params, caller.account, request.region)
    shared = shared_parameters.requested(request.action, request.params, caller.account)
    returned = own + [s.parameter for s in shared]
    return any(p.parameter_type == "SecureString" for p in returned)


def _resources(request: AwsRequest, account: str) -> list[str]:
    """The ARNs IAM authorizes the action on."""
    params, region = request.params, request.region
    if "Parameter" in request.action:
        if "Path" in params:
            return [path_arn(params["Path"], account, region)]
        if "Names" in params:
            return [parameter_arn(name, account, region) for name in params["Names"] or []]
        if "Name" in params:
            return [parameter_arn(params["Name"], account, region)]
    return [account_arn(account, region)]


def _authorize(request: AwsRequest, caller: Caller):
    documents = caller.policy_documents()
    context = caller.condition_context(request.region)
    for resource in _resources(request, caller.account):
        decision = policy.evaluate(documents, request.operation, resource, context)
        if decision is policy.Decision.ALLOW:
            continue
        reason = (
            "with an explicit deny in an identity-based policy"
            if decision is policy.Decision.EXPLICIT_DENY
            else f"because no identity-based policy allows the {request.operation} action"
        )
        raise AwsError(
            "AccessDeniedException",
            f"User: {caller.session_arn} is not authorized to perform: "
            f"{request.operation} on resource: {resource} {reason}",
        )


def _authorize_cross_account(request: AwsRequest, caller: Caller):
    """Another account's parameter needs its owner's share (see
    shared_parameters)."""
    if request.action not in ("GetParameter", "GetParameters"):
        return
    names = request.params.get("Names") or [request.params.get("Name", "")]
    for name in names:
        if shared_parameters.unshared_foreign(name, caller.account):
            resource = parameter_arn(name, caller.account, request.region)
            raise AwsError(
                "AccessDeniedException",
                f"User: {caller.session_arn} is not authorized to perform: "
                f"{request.operation} on resource: {resource} because no resource-based "
                f"policy allows the {request.operation} action",
            )


def _check_decryption(request: AwsRequest, caller: Caller, counters: Counters):
    """One KMS Decrypt per SecureString returned; the first refusal fails the
    whole call, as on AWS."""
    own = parameters_returned(request.action, request.params, caller.account, request.region)
    # A parameter shared from another account is decrypted with its key
    # there, by SSM of the parameter's region.
    shared = shared_parameters.requested(request.action, request.params, caller.account)
    returned = [(p, request.region) for p in own] + [(s.parameter, s.region) for s in shared]
    for parameter, region in returned:
        if parameter.parameter_type != "SecureString":
            continue
        context = caller.condition_context(request.region) | {
            "kms:ViaService": f"ssm.{region}.amazonaws.com",
            "kms:CallerAccount": caller.account,
            "kms:EncryptionContext:PARAMETER_ARN": parameter_arn(
                parameter.name, parameter.account_id, region
            ),
        }
        try:
            kms_guard.check_decrypt(caller, parameter.keyid, parameter.account_id, region, context)
        except DecryptRefused as refused:
            counters.add("kms:Decrypt", caller.name, refused.kms_code)
            raise
        counters.add("kms:Decrypt", caller.name, "ok")
