"""The EKS Pod Identity agent's credentials endpoint, on the layer's port.

"When Amazon EKS starts a new pod that uses a service account with an EKS
Pod Identity association", the Pod gets AWS_CONTAINER_CREDENTIALS_FULL_URI
(http://169.254.170.23/v1/credentials) and AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE
(a service account token projected with audience pods.eks.amazonaws.com);
the SDK's container credentials provider asks the agent, which calls EKS Auth
AssumeRoleForPodIdentity (EKS User Guide, "Understand how EKS Pod Identity
works"). Here the agent is `GET /_pod-identity/v1/credentials` (optionally
`?cluster=<name>`, the cluster the agent serves; without it, the service
account's association in any cluster), the token in the `Authorization`
header as the SDK sends it. AWS's agent also refuses calls not addressed to
169.254.170.23 or [fd00:ec2::23]; this one answers on loopback.

Every request counts as `eks-auth:AssumeRoleForPodIdentity`, the caller
being the role of the token's association (`anonymous` if it has none) and
the outcome `ok`, EKS Auth's error code, or for the agent's own refusals
(which never reach EKS Auth) their HTTP status. The agent's credential cache
is not modelled: every request calls EKS Auth."""

import json
import time
import uuid

from werkzeug.wrappers import Request, Response

from .awsrequest import AwsRequest
from .counters import Counters
from .eks_auth import OPERATION, SESSION_SECONDS, EksAuth, EksAuthError, PodCredentials
from .errors import AwsError
from .faults import Faults
from .pod_identity_associations import DEFAULT_REGION
from .service_account_tokens import unverified_claims, unverified_claims_error
from .session_tags import SessionTags
from .sessions import Sessions

PREFIX = "/_pod-identity/"
CREDENTIALS_PATH = "/_pod-identity/v1/credentials"
ANONYMOUS = "anonymous"


class AgentRefusal(Exception):
    """What the agent answers instead of credentials.

    Not in AWS's documentation. AWS's agent (aws/eks-pod-identity-agent,
    pkg/errors/errors.go, and its credentials handler) answers with Go's
    http.Error: a text/plain body; for an EKS Auth error, EKS Auth's HTTP
    status and "[<request id>]: (<code>): <message>, fault: client" ("server"
    for 5xx); for its own validation of the request, 400 and its own text."""

    def __init__(self, status: int, text: str, outcome: str):
        super().__init__(text)
        self.status = status
        self.text = text
        self.outcome = outcome

    @classmethod
    def of_eks_auth(cls, code: str, message: str, status: int) -> "AgentRefusal":
        fault = "server" if status >= 500 else "client"
        text = f"[{uuid.uuid4()}]: ({code}): {message}, fault: {fault}"
        return cls(status, text, code)

    @classmethod
    def of_agent(cls, text: str) -> "AgentRefusal":
        return cls(400, text, "400")


class PodIdentityAgent:
    def __init__(
        self,
        eks_auth: EksAuth,
        sessions: Sessions,
        session_tags: SessionTags,
        counters: Counters,
        faults: Faults,
    ):
        self._eks_auth = eks_auth
        self._sessions = sessions
        self._session_tags = session_tags
        self._counters = counters
        self._faults = faults

    def __call__(self, environ, start_response):
        request = Request(environ)
        if request.path.rstrip("/") != CREDENTIALS_PATH:
            response = Response(f"no {request.path}\n", status=404, mimetype="text/plain")
        elif request.method != "GET":
            response = Response(f"no {request.method}\n", status=405, mimetype="text/plain")
        else:
            response = self._credentials(request)
        return response(environ, start_response)

    def _credentials(self, request: Request) -> Response:
        token = request.headers.get("Authorization", "")
        cluster = request.args.get("cluster") or None
        claims = unverified_claims(token) if token else None
        association = self._eks_auth.association_for(claims, cluster)
        caller = association.role_arn if association else ANONYMOUS
        region = association.region if association else DEFAULT_REGION
        try:
            credentials = self._fetch(token, claims, cluster, caller, region)
        except AgentRefusal as refused:
            self._counters.add(OPERATION, caller, refused.outcome)
            return Response(
                refused.text + "\n",
                status=refused.status,
                headers={"X-Content-Type-Options": "nosniff"},
                content_type="text/plain; charset=utf-8",
            )
        self._counters.add(OPERATION, caller, "ok")
        self._sessions.remember(credentials.access_key_id, credentials.expiration)
        self._session_tags.record(credentials.access_key_id, credentials.tags)
        return Response(json.dumps(_answer(credentials)), mimetype="application/json")

    def _fetch(
        self, token: str, claims: dict | None, cluster: str | None, caller: str, region: str
    ) -> PodCredentials:
        _validate(token, claims)
        call = AwsRequest("eks-auth", "AssumeRoleForPodIdentity", region, "json")
        try:
            fault = self._faults.apply(call, caller, lambda: False)
        except AwsError as refused:
            # An injected fault: EKS Auth failing the call, with its status
            # for the codes it models.
            status = EKS_AUTH_STATUS_OF_FAULTS.get(refused.code, refused.status)
            raise AgentRefusal.of_eks_auth(refused.code, refused.message, status) from None
        seconds = fault.seconds if fault is not None and fault.kind == "short_lived" else None
        try:
            return self._eks_auth.assume_role_for_pod_identity(
                token, claims or {}, cluster, SESSION_SECONDS if seconds is None else seconds
            )
        except EksAuthError as refused:
            raise AgentRefusal.of_eks_auth(refused.code, refused.message, refused.status) from None


# The fault kinds' codes that EKS Auth has too, with its status for them
# (eks_auth.STATUS): a throttled EKS Auth answers 429.
EKS_AUTH_STATUS_OF_FAULTS = {"ThrottlingException": 429}


def _validate(token: str, claims: dict | None):
    """The agent's own checks before it calls EKS Auth
    (aws/eks-pod-identity-agent, internal/validation/request.go): a token is
    there, parses as a JWT, and passes golang-jwt's claim validation (exp,
    nbf). The texts are the agent's; the parse error after its prefix is
    PyJWT's, not golang-jwt's."""
    if not token:
        raise AgentRefusal.of_agent("Service account token cannot be empty")
    if claims is None:
        reason = unverified_claims_error(token) or "the payload is not a JSON object"
        raise AgentRefusal.of_agent(f"Service account token cannot be parsed: {reason}")
    now = time.time()
    expires, not_before = claims.get("exp"), claims.get("nbf")
    if isinstance(expires, (int, float)) and now >= expires:
        reason = "token is expired"
    elif isinstance(not_before, (int, float)) and now < not_before:
        reason = "token is not valid yet"
    else:
        return
    raise AgentRefusal.of_agent(
        f"Service account token failed basic claim validations: token has invalid claims: {reason}"
    )


def _answer(credentials: PodCredentials) -> dict:
    """What the agent answers the SDK (aws/eks-pod-identity-agent,
    pkg/credentials/model.go: AccessKeyId, SecretAccessKey, Token, AccountId,
    Expiration in RFC 3339)."""
    return {
        "AccessKeyId": credentials.access_key_id,
        "SecretAccessKey": credentials.secret_access_key,
        "Token": credentials.session_token,
        "AccountId": credentials.account_id,
        "Expiration": credentials.expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
