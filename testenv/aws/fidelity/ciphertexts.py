"""What a SecureString read without decryption returns: the ciphertext, not
moto's `kms:<KeyId>:<plaintext>` that would leak the value.

Each parameter version is encrypted once, with moto's KMS and the encryption
context SSM uses (PARAMETER_ARN), so KMS Decrypt of the returned blob gives
the value back. Where KMS cannot encrypt it (the key does not exist, the value
is over KMS's 4 KB), the blob is random bytes: still opaque and stable."""

import base64
import json
import os
import threading
import weakref

from moto.core.exceptions import JsonRESTError, ServiceException

from . import moto_state
from .kms_keys import find_key
from .ssm_parameters import find_version, parameter_arn, plaintext

# Responses that carry parameter values, and where.
VALUE_CARRYING_READS = {
    "GetParameter": "Parameter",
    "GetParameters": "Parameters",
    "GetParametersByPath": "Parameters",
    "GetParameterHistory": "Parameters",
}
KMS_PLAINTEXT_LIMIT = 4096


class Ciphertexts:
    def __init__(self):
        self._lock = threading.Lock()
        # Keyed by moto's Parameter object (one per version), so that a moto
        # reset or a new version never reuses a blob.
        self._blobs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def hide_values(self, action: str, body: bytes, account: str, region: str) -> bytes:
        """Rewrite a read's JSON response so that SecureStrings carry ciphertext."""
        field = VALUE_CARRYING_READS[action]
        response = json.loads(body)
        entries = response.get(field)
        entries = [entries] if isinstance(entries, dict) else entries or []
        for entry in entries:
            if entry.get("Type") != "SecureString":
                continue
            parameter = find_version(entry["Name"], entry["Version"], account, region)
            if parameter is not None:
                entry["Value"] = self.blob(parameter, region)
        return json.dumps(response).encode()

    def blob(self, parameter, region: str) -> str:
        with self._lock:
            if parameter not in self._blobs:
                self._blobs[parameter] = base64.b64encode(self._encrypt(parameter, region)).decode()
            return self._blobs[parameter]

    @staticmethod
    def _encrypt(parameter, region: str) -> bytes:
        value = plaintext(parameter).encode()
        key = find_key(parameter.keyid, parameter.account_id, region).key
        if key is None or len(value) > KMS_PLAINTEXT_LIMIT:
            return os.urandom(len(value) + 64)
        context = {"PARAMETER_ARN": parameter_arn(parameter.name, parameter.account_id, region)}
        try:
            blob, _ = moto_state.kms_backend(key.account_id, key.region).encrypt(
                key.id, value, context
            )
        except (ServiceException, JsonRESTError):
            return os.urandom(len(value) + 64)
        return blob
