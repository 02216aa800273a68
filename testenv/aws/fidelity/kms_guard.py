"""What KMS decides when SSM asks it to decrypt a SecureString: does the key
exist, may the caller use it, is it usable. moto's SSM never asks."""

from .callers import Caller
from .errors import DecryptRefused
from .kms_authorization import denial, refusal_text
from .kms_keys import find_key

DECRYPT = "kms:Decrypt"


def check_decrypt(caller: Caller, key_id: str, account: str, region: str, context: dict):
    """Raise DecryptRefused unless KMS would decrypt for SSM on `caller`'s
    behalf. `context` holds the request's KMS condition keys."""
    lookup = find_key(key_id, account, region)
    key = lookup.key
    if key is None:
        raise DecryptRefused(
            "InvalidKeyId", "NotFoundException", f"Key '{lookup.requested_arn}' does not exist"
        )
    # An AWS managed key's policy lets every principal of its account use it
    # through the service, and no one else (kms_keys.key_policy): it cannot
    # decrypt parameters shared with other accounts.
    if caller.is_assumed_role:
        reason = denial(caller, key, DECRYPT, context)
        if reason is not None:
            raise DecryptRefused(
                "AccessDeniedException",
                "AccessDeniedException",
                refusal_text(caller, key, DECRYPT, reason),
            )
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
