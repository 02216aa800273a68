"""KMS calls an assumed role makes itself (not through SSM): the key policy
and the role's IAM policies authorize them as for SSM's Decrypt
(kms_authorization.py). moto authorizes nothing.

Only DescribeKey is checked ("Required permissions: kms:DescribeKey (key
policy)", KMS API Reference, DescribeKey); every other direct KMS action is
left to moto, unchecked.

moto looks every KeyId up in the caller's own account, so that it finds no
key of another account, even by its ARN; the layer answers DescribeKey of
such a key itself, from the owner account's KMS ("Cross-account use: Yes. To
perform this operation with a KMS key in a different Amazon Web Services
account, specify the key ARN or alias ARN", KMS API Reference, DescribeKey)."""

from .awsrequest import AwsRequest
from .callers import Caller
from .errors import AwsError
from .kms_authorization import denial, refusal_text
from .kms_keys import find_key

CHECKED = {"DescribeKey"}


def check(request: AwsRequest, caller: Caller):
    """Raise the AwsError KMS would answer, or return to let moto answer."""
    if not caller.is_assumed_role or request.action not in CHECKED:
        return
    action = request.operation
    lookup = find_key(str(request.params.get("KeyId", "")), caller.account, request.region)
    if lookup.key is None or lookup.key.region != request.region:
        # moto answers NotFoundException itself (KMS is regional: a key ARN
        # of another region is not found either). For a missing key of
        # another account, what AWS answers is not documented.
        return
    # An alias names its key: "When an alias is the value of a resource
    # element, the policy applies to the alias resource, not to any KMS key
    # that might be associated with it" (KMS Developer Guide, "Use aliases to
    # control access to KMS keys"), so the key's ARN is the resource whatever
    # names it. The alias used is `kms:RequestAlias` (ibid.).
    context = caller.condition_context(request.region) | {"kms:CallerAccount": caller.account}
    if lookup.alias is not None:
        context["kms:RequestAlias"] = lookup.alias
    reason = denial(caller, lookup.key, action, context)
    if reason is not None:
        raise AwsError("AccessDeniedException", refusal_text(caller, lookup.key, action, reason))


def foreign_key(request: AwsRequest, caller: Caller):
    """moto's Key of another account that a DescribeKey names by key ARN or
    alias ARN, in the request's region; None for any other request."""
    if request.service != "kms" or request.action != "DescribeKey":
        return None
    key_id = str(request.params.get("KeyId", ""))
    if not key_id.startswith("arn:"):
        return None
    key = find_key(key_id, caller.account, request.region).key
    if key is None or key.account_id == caller.account or key.region != request.region:
        return None
    return key
