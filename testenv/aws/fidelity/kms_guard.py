"""What KMS decides when SSM asks it to decrypt a SecureString: does the key
exist, may the caller use it, is it usable. moto's SSM never asks."""

import threading
from dataclasses import dataclass

from . import moto_state, policy
from .callers import Caller
from .errors import DecryptRefused
from .policy import Decision

DECRYPT = "kms:Decrypt"

# Keys behind these aliases are AWS managed: every principal of the account
# may use them through the service, without any grant.
AWS_MANAGED_ALIAS_PREFIX = "alias/aws/"
# moto creates an AWS managed key on its first use; one creation at a time.
_key_creation = threading.Lock()


@dataclass(frozen=True)
class KeyLookup:
    key: object | None  # moto's Key
    # How KMS names the key when it does not exist: the ARN of the key id or alias.
    requested_arn: str


def find_key(key_id: str, account: str, region: str) -> KeyLookup:
    """Resolve a KeyId as SSM stores it: key id, key ARN, alias or alias ARN."""
    arn_parts = key_id.split(":", 5)
    if len(arn_parts) == 6 and arn_parts[0] == "arn":
        _, _, _, region, account, resource = arn_parts
    elif key_id.startswith("alias/"):
        resource = key_id
    else:
        resource = f"key/{key_id}"
    requested_arn = f"arn:{moto_state.PARTITION}:kms:{region}:{account}:{resource}"
    backend = moto_state.kms_backend(account, region)
    if resource.startswith("alias/"):
        with _key_creation:
            # Also creates the AWS managed key of a reserved alias, as AWS does.
            resolved = backend.get_key_id_from_alias(resource)
        key = backend.keys.get(resolved) if resolved else None
    else:
        key = backend.keys.get(resource.removeprefix("key/"))
    return KeyLookup(key, requested_arn)


def is_aws_managed(key) -> bool:
    return any(alias.startswith(AWS_MANAGED_ALIAS_PREFIX) for alias in key.aliases)


def check_decrypt(caller: Caller, key_id: str, account: str, region: str, context: dict):
    """Raise DecryptRefused unless KMS would decrypt for SSM on `caller`'s
    behalf. `context` holds the request's KMS condition keys."""
    lookup = find_key(key_id, account, region)
    key = lookup.key
    if key is None:
        raise DecryptRefused(
            "InvalidKeyId", "NotFoundException", f"Key '{lookup.requested_arn}' does not exist"
        )
    # An AWS managed key's policy trusts its own account only: it cannot
    # decrypt parameters shared with other accounts.
    if caller.is_assumed_role and (not is_aws_managed(key) or key.account_id != caller.account):
        _authorize(caller, key, context)
    elif caller.is_assumed_role:
        # An AWS managed key's policy allows every principal of its account
        # through the service, but "an explicit deny in any policy overrides
        # any allows" (IAM User Guide, "Policy evaluation logic").
        identity = policy.evaluate(caller.policy_documents(), DECRYPT, key.arn, context)
        if identity is Decision.EXPLICIT_DENY:
            _deny(caller, key, "with an explicit deny in an identity-based policy")
    if key.key_state == "Disabled":
        raise DecryptRefused("InvalidKeyId", "DisabledException", f"{key.arn} is disabled.")
    if key.key_state != "Enabled":
        raise DecryptRefused(
            "InvalidKeyId", "KMSInvalidStateException", f"{key.arn} is {_state_words(key)}."
        )


# Key states in which KMS refuses Decrypt with KMSInvalidStateException (AWS
# KMS Developer Guide, "Key states of AWS KMS keys": Decrypt is refused in
# PendingDeletion, PendingReplicaDeletion, PendingImport, Unavailable —
# custom key store disconnected — and Creating; "the request was rejected
# because the state of the specified resource is not valid for this request"
# is the exception's documented meaning). The message text is known for
# PendingDeletion only ("<key ARN> is pending deletion."); for the others
# AWS's exact text is not documented, and this layer answers in the same
# form with the state in words ("… is pending import.").
STATE_WORDS = {
    "PendingDeletion": "pending deletion",
    "PendingReplicaDeletion": "pending replica deletion",
    "PendingImport": "pending import",
    "Unavailable": "unavailable",
    "Creating": "creating",
    "Updating": "updating",
}
KEY_STATES = {"Enabled", "Disabled", *STATE_WORDS}


def _state_words(key) -> str:
    return STATE_WORDS.get(key.key_state, key.key_state.lower())


def set_key_state(key_arn: str, state: str):
    """Puts a key in a state moto's API cannot reach: imported key material
    that expired or was deleted (PendingImport), a custom key store that was
    disconnected (Unavailable), a replica being deleted."""
    if state not in KEY_STATES:
        raise ValueError(f"state must be one of {sorted(KEY_STATES)}")
    parts = key_arn.split(":", 5)
    if len(parts) != 6 or parts[2] != "kms" or not parts[5].startswith("key/"):
        raise ValueError("key must be a key ARN such as arn:aws:kms:<region>:<account>:key/<id>")
    lookup = find_key(key_arn, parts[4], parts[3])
    if lookup.key is None:
        raise ValueError(f"no key {key_arn}")
    lookup.key.key_state = state


def _authorize(caller: Caller, key, context: dict):
    """KMS authorization: the key policy decides, and a statement allowing the
    account root delegates the decision to the caller's IAM policies. For a
    key of another account, both must allow: its key policy (naming the
    caller or the caller's account root) and the caller's IAM policies."""
    key_policy = [moto_state.parse_policy(key.policy)]

    def key_policy_allows_or_denies(*principal_arns):
        return policy.evaluate(key_policy, DECRYPT, key.arn, context, {"AWS": set(principal_arns)})

    caller_arns = (caller.role_arn, caller.session_arn)
    if key_policy_allows_or_denies(*caller_arns, caller.root_arn) is Decision.EXPLICIT_DENY:
        _deny(caller, key, "with an explicit deny in a resource-based policy")
    identity = policy.evaluate(caller.policy_documents(), DECRYPT, key.arn, context)
    if identity is Decision.EXPLICIT_DENY:
        _deny(caller, key, "with an explicit deny in an identity-based policy")
    same_account = key.account_id == caller.account
    if same_account and key_policy_allows_or_denies(*caller_arns) is Decision.ALLOW:
        return
    if key_policy_allows_or_denies(*caller_arns, caller.root_arn) is not Decision.ALLOW:
        _deny(caller, key, "because no resource-based policy allows the kms:Decrypt action")
    if identity is not Decision.ALLOW:
        _deny(caller, key, "because no identity-based policy allows the kms:Decrypt action")


def _deny(caller: Caller, key, reason: str):
    raise DecryptRefused(
        "AccessDeniedException",
        "AccessDeniedException",
        f"User: {caller.session_arn} is not authorized to perform: kms:Decrypt "
        f"on resource: {key.arn} {reason}",
    )
