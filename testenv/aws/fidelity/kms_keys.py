"""KMS keys as the layer finds them in moto: a KeyId resolved to its key, and
the key policy KMS decides with."""

import threading
from dataclasses import dataclass

from . import moto_state

# Keys behind these aliases are AWS managed.
AWS_MANAGED_ALIAS_PREFIX = "alias/aws/"
# moto creates an AWS managed key on its first use; one creation at a time.
_key_creation = threading.Lock()


@dataclass(frozen=True)
class KeyLookup:
    key: object | None  # moto's Key
    # How KMS names the key when it does not exist: the ARN of the key id or alias.
    requested_arn: str
    # The alias the KeyId named (alias name or alias ARN), if it named one.
    alias: str | None = None


def find_key(key_id: str, account: str, region: str) -> KeyLookup:
    """Resolve a KeyId as SSM stores it or KMS takes it: key id, key ARN,
    alias name or alias ARN. A key ARN or alias ARN names its own account
    and region ("To specify a KMS key in a different Amazon Web Services
    account, you must use the key ARN or alias ARN", KMS API Reference,
    DescribeKey)."""
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
            # Also creates the AWS managed key of a reserved alias, as AWS
            # does: "If you specify a predefined Amazon Web Services alias (an
            # Amazon Web Services alias with no key ID), KMS associates the
            # alias with an Amazon Web Services managed key" (KMS API
            # Reference, DescribeKey, KeyId).
            resolved = backend.get_key_id_from_alias(resource)
        key = backend.keys.get(resolved) if resolved else None
        return KeyLookup(key, requested_arn, resource)
    return KeyLookup(backend.keys.get(resource.removeprefix("key/")), requested_arn)


def key_policy(key) -> dict:
    """The key policy KMS decides with: the key's own, or for an AWS managed
    key the one its service gives it.

    moto gives an AWS managed key the default key policy of a customer
    managed key (its account root allowed kms:*). On AWS, "The policies of
    AWS managed keys are created and managed by the AWS service that created
    the KMS key in your account" (KMS Developer Guide, "Change a key
    policy"); their content is not documented there. The one modelled here
    is what GetKeyPolicy answers for AWS managed keys as public copies show
    it (e.g. alias/aws/ebs, "auto-ebs-2", in Ansible's kms_key_info sample):
    every principal of the account through the service, and the account
    (delegating to its IAM policies) for direct access to the key's
    metadata. alias/aws/ssm's own policy has not been seen; it is assumed to
    follow the same form."""
    managed = next((a for a in key.aliases if a.startswith(AWS_MANAGED_ALIAS_PREFIX)), None)
    if managed is None:
        return moto_state.parse_policy(key.policy)
    service = managed.removeprefix(AWS_MANAGED_ALIAS_PREFIX)
    account = key.account_id
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": f"Allow access through {service} for all principals in the account "
                f"that are authorized to use {service}",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": [
                    "kms:Encrypt",
                    "kms:Decrypt",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:CreateGrant",
                    "kms:DescribeKey",
                ],
                "Resource": "*",
                "Condition": {
                    "StringEquals": {
                        "kms:CallerAccount": account,
                        "kms:ViaService": f"{service}.{key.region}.amazonaws.com",
                    }
                },
            },
            {
                "Sid": "Allow direct access to key metadata to the account",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{moto_state.PARTITION}:iam::{account}:root"},
                "Action": ["kms:Describe*", "kms:Get*", "kms:List*", "kms:RevokeGrant"],
                "Resource": "*",
            },
        ],
    }
