"""AWS error responses, in the shape each protocol's SDK parser expects."""

import json
import uuid
from http import HTTPStatus
from xml.sax.saxutils import escape

# The query protocol's error body carries the service's XML namespace.
QUERY_NAMESPACES = {
    "sts": "https://sts.amazonaws.com/doc/2011-06-15/",
    "iam": "https://iam.amazonaws.com/doc/2010-05-08/",
}


def new_request_id() -> str:
    return str(uuid.uuid4())


def status_line(status: int) -> str:
    return f"{status} {HTTPStatus(status).phrase}"


def json_headers(request, request_id: str | None = None) -> list[tuple[str, str]]:
    """The headers of an answer of the JSON protocol."""
    return [
        ("Content-Type", f"application/x-amz-json-{request.json_version}"),
        ("x-amzn-RequestId", request_id or new_request_id()),
    ]


class AwsError(Exception):
    """An error the layer answers instead of moto."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status

    def render(self, request) -> tuple[int, list[tuple[str, str]], bytes]:
        """Status, headers and body for `request`'s protocol."""
        request_id = new_request_id()
        if request.protocol == "json":
            return self._render_json(request, request_id)
        return self._render_query(request, request_id)

    def _render_json(self, request, request_id):
        body = json.dumps({"__type": self.code, "message": self.message}).encode()
        headers = json_headers(request, request_id) + [("x-amzn-ErrorType", self.code)]
        return self.status, headers, body

    def _render_query(self, request, request_id):
        namespace = QUERY_NAMESPACES.get(request.service, QUERY_NAMESPACES["sts"])
        fault = "Receiver" if self.status >= 500 else "Sender"
        body = (
            f'<ErrorResponse xmlns="{namespace}">'
            f"<Error><Type>{fault}</Type><Code>{escape(self.code)}</Code>"
            f"<Message>{escape(self.message)}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]
        return self.status, headers, body


def kms_detail(kms_code: str, kms_status: int = 400) -> str:
    """The suffix SSM appends when KMS refused a decryption on its behalf."""
    return (
        f"(Service: AWSKMS; Status Code: {kms_status}; Error Code: {kms_code}; "
        f"Request ID: {new_request_id()}; Proxy: null)"
    )


class DecryptRefused(AwsError):
    """KMS refused to decrypt a SecureString for SSM. SSM answers `code`, while
    KMS's own error code (what the call to KMS ended with) is `kms_code`."""

    def __init__(
        self, code: str, kms_code: str, message: str, status: int = 400, kms_status: int = 400
    ):
        super().__init__(code, f"{message} {kms_detail(kms_code, kms_status)}", status)
        self.kms_code = kms_code


def error_code_of(status: int, body: bytes) -> str:
    """The AWS error code in a (moto) error response, for the counters."""
    text = body.decode("utf-8", "replace")
    try:
        error_type = json.loads(text).get("__type", "")
        # JSON error types may be qualified: "namespace#Code".
        return error_type.split("#")[-1] or str(status)
    except (ValueError, AttributeError):
        pass
    start = text.find("<Code>")
    end = text.find("</Code>", start)
    if start >= 0 and end > start:
        return text[start + len("<Code>") : end]
    return str(status)


def throttling(request) -> AwsError:
    # Query-protocol services (STS, IAM) name it Throttling, JSON ones ThrottlingException.
    code = "Throttling" if request.protocol == "query" else "ThrottlingException"
    return AwsError(code, "Rate exceeded")


def service_unavailable() -> AwsError:
    return AwsError(
        "ServiceUnavailable",
        "The request has failed due to a temporary failure of the server.",
        503,
    )


def internal_failure(request) -> AwsError:
    # SSM models its own name for it (GetParameterError::InternalServerError).
    code = "InternalServerError" if request.service == "ssm" else "InternalFailure"
    return AwsError(
        code,
        "The request processing has failed because of an unknown error, exception or failure.",
        500,
    )


# The texts below are AWS's own where a public report shows them; where none
# does, the comment says what the text is instead.

# "The security token included in the request is expired": SSM's answer
# (ExpiredTokenException) in guardian/ssm-scala#33, IAM's (ExpiredToken) in
# aws-samples/aws-iot-twinmaker-samples#147.
EXPIRED_SESSION = "The security token included in the request is expired"
# SSM's JSON body in CrowdStrike/falcon-scripts#126; the query services name
# it SignatureDoesNotMatch (aws/aws-cli#135).
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)
# No public report shows an IDPCommunicationError body: this is the error's
# description in the STS API reference (and every SDK's docs).
IDP_UNREACHABLE = (
    "The request could not be fulfilled because the identity provider (IDP) that was asked "
    "to verify the incoming identity token could not be reached. This is often a transient "
    "error caused by network conditions."
)
# KMS's own throttling text (repost.aws/knowledge-center/kms-throttlingexception-error;
# aws/aws-dynamodb-encryption-java#6).
KMS_RATE_EXCEEDED = (
    "You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls."
)
# No public report shows a KMSInternalException body: this is the exception's
# description in the KMS API reference.
KMS_INTERNAL = (
    "The request was rejected because an internal exception occurred. The request can be retried."
)
# SSM's InvalidNextToken description in the SSM API reference (no report of
# the body found).
INVALID_NEXT_TOKEN = "The specified token isn't valid."


def expired_session(request) -> AwsError:
    """Credentials past their expiry: JSON services say ExpiredTokenException,
    query services ExpiredToken (its HTTP status there, 400, is a guess: the
    reports found do not show it)."""
    code = "ExpiredToken" if request.protocol == "query" else "ExpiredTokenException"
    return AwsError(code, EXPIRED_SESSION)


def invalid_signature(request) -> AwsError:
    if request.protocol == "query":
        return AwsError("SignatureDoesNotMatch", SIGNATURE_MISMATCH, 403)
    return AwsError("InvalidSignatureException", SIGNATURE_MISMATCH)


def idp_communication_error() -> AwsError:
    return AwsError("IDPCommunicationError", IDP_UNREACHABLE)


def kms_throttled(code: str | None = None) -> DecryptRefused:
    """KMS throttled the Decrypt SSM made for the caller. What SSM itself
    answers then is not documented and no public report shows it: by default
    ThrottlingException carrying KMS's text (the shape SSM uses for every
    other KMS failure: its own code, KMS's message and Error Code); `code`
    tries another wrapping (InvalidKeyId, AccessDeniedException, …)."""
    code = code or "ThrottlingException"
    status = 500 if code in SERVER_ERRORS else 400
    return DecryptRefused(code, "ThrottlingException", KMS_RATE_EXCEEDED, status)


def kms_internal(code: str | None = None) -> DecryptRefused:
    """KMS failed internally on the Decrypt SSM made for the caller. SSM's own
    answer is not documented either: by default InternalServerError (500),
    SSM's modelled server error; `code` tries another wrapping."""
    code = code or "InternalServerError"
    status = 500 if code in SERVER_ERRORS else 400
    return DecryptRefused(code, "KMSInternalException", KMS_INTERNAL, status, kms_status=500)


SERVER_ERRORS = {"InternalServerError", "InternalFailure", "ServiceUnavailable"}


def invalid_next_token() -> AwsError:
    return AwsError("InvalidNextToken", INVALID_NEXT_TOKEN)
