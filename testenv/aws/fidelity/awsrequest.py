"""What an incoming HTTP request asks of AWS: service, action, region, signer
and parameters, for the JSON 1.0/1.1 and query protocols."""

import io
import json
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from werkzeug.wsgi import get_input_stream

# X-Amz-Target prefixes of the JSON-protocol services the layer serves.
TARGET_SERVICES = {
    "AmazonSSM": "ssm",
    "TrentService": "kms",
    "AWSSecurityTokenServiceV20110615": "sts",
}
# STS actions that the SDKs send unsigned.
UNSIGNED_STS_ACTIONS = {"AssumeRoleWithWebIdentity", "AssumeRoleWithSAML"}
# Where moto puts unsigned requests too.
UNSIGNED_REGION = "us-east-1"


@dataclass(frozen=True)
class Signature:
    access_key: str
    region: str
    service: str


@dataclass
class AwsRequest:
    service: str
    action: str
    region: str
    protocol: str  # "json" or "query"
    json_version: str = "1.1"
    signature: Signature | None = None
    params: dict = field(default_factory=dict)
    # moto's own way to pick the account of a request, honoured here too.
    account_header: str | None = None

    @property
    def operation(self) -> str:
        """The IAM action name, e.g. `ssm:GetParameters`."""
        return f"{self.service}:{self.action}"

    @property
    def access_key(self) -> str | None:
        return self.signature.access_key if self.signature else None

    @classmethod
    def from_environ(cls, environ) -> "AwsRequest | None":
        """Parse the request; None if it is not an AWS API call."""
        body = _buffer_body(environ)
        signature = _parse_signature(environ.get("HTTP_AUTHORIZATION", ""))
        account_header = environ.get("HTTP_X_MOTO_ACCOUNT_ID")
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        content_type = environ.get("CONTENT_TYPE", "")
        if target or content_type.startswith("application/x-amz-json"):
            prefix, _, action = target.partition(".")
            service = signature.service if signature else TARGET_SERVICES.get(prefix)
            if not (service and action):
                return None
            return cls(
                service,
                action,
                signature.region if signature else UNSIGNED_REGION,
                "json",
                _json_version(content_type),
                signature,
                _json_object(body),
                account_header,
            )
        params = _form(environ.get("QUERY_STRING", ""))
        if content_type.startswith("application/x-www-form-urlencoded"):
            params.update(_form(body.decode("utf-8", "replace")))
        action = params.get("Action")
        if not action:
            return None
        if signature:
            service, region = signature.service, signature.region
        elif action in UNSIGNED_STS_ACTIONS:
            service, region = "sts", UNSIGNED_REGION
        else:
            return None
        return cls(
            service,
            action,
            region,
            "query",
            signature=signature,
            params=params,
            account_header=account_header,
        )


def _buffer_body(environ) -> bytes:
    """Read the body and put it back, so that moto can read it again."""
    body = get_input_stream(environ).read()
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def _parse_signature(authorization: str) -> Signature | None:
    # AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/ssm/aws4_request, SignedHeaders=..., Signature=...
    if not authorization.startswith("AWS4-HMAC-SHA256"):
        return None
    for part in authorization[len("AWS4-HMAC-SHA256") :].split(","):
        name, _, value = part.strip().partition("=")
        if name == "Credential":
            scope = value.split("/")
            if len(scope) == 5:
                return Signature(access_key=scope[0], region=scope[2], service=scope[3].lower())
    return None


def _json_version(content_type: str) -> str:
    prefix = "application/x-amz-json-"
    if content_type.startswith(prefix):
        return content_type[len(prefix) :].split(";")[0].strip()
    return "1.1"


def _json_object(body: bytes) -> dict:
    try:
        parsed = json.loads(body or b"{}")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _form(text: str) -> dict:
    return {name: values[-1] for name, values in parse_qs(text, keep_blank_values=True).items()}
