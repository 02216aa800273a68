"""KMS authorization of an assumed role's use of a key: the key policy
decides, and a statement allowing the account root delegates the decision to
the caller's IAM policies ("Allows access to the AWS account and enables IAM
policies", KMS Developer Guide, "Default key policy"). For a key of another
account, both must allow: its key policy (naming the caller or the caller's
account root) and the caller's IAM policies. Grants are not modelled."""

from . import policy
from .callers import Caller
from .kms_keys import key_policy
from .policy import Decision


def denial(caller: Caller, key, action: str, context: dict) -> str | None:
    """Why KMS refuses `action` on `key` to `caller`, in the words that end
    its AccessDeniedException ("… because no identity-based policy allows the
    kms:Decrypt action"); None if it allows it. `context` holds the request's
    condition keys."""
    key_policies = [key_policy(key)]

    def key_policy_decision(*principal_arns):
        return policy.evaluate(key_policies, action, key.arn, context, {"AWS": set(principal_arns)})

    caller_arns = (caller.role_arn, caller.session_arn)
    if key_policy_decision(*caller_arns, caller.root_arn) is Decision.EXPLICIT_DENY:
        return "with an explicit deny in a resource-based policy"
    identity = policy.evaluate(caller.policy_documents(), action, key.arn, context)
    if identity is Decision.EXPLICIT_DENY:
        return "with an explicit deny in an identity-based policy"
    same_account = key.account_id == caller.account
    if same_account and key_policy_decision(*caller_arns) is Decision.ALLOW:
        return None
    if key_policy_decision(*caller_arns, caller.root_arn) is not Decision.ALLOW:
        return f"because no resource-based policy allows the {action} action"
    if identity is not Decision.ALLOW:
        return f"because no identity-based policy allows the {action} action"
    return None


def refusal_text(caller: Caller, key, action: str, reason: str) -> str:
    """KMS's AccessDeniedException message."""
    return (
        f"User: {caller.session_arn} is not authorized to perform: {action} "
        f"on resource: {key.arn} {reason}"
    )
