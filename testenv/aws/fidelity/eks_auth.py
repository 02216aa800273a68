"""EKS Auth's AssumeRoleForPodIdentity, the call the EKS Pod Identity agent
makes for a Pod: it checks the Pod's service account token, finds the
service account's Pod Identity association, and assumes the association's
role as the service principal pods.eks.amazonaws.com, with session tags
naming the cluster, namespace, service account and Pod. moto does not serve
EKS Auth; the session is issued by moto's STS, so that its access key makes
the caller that role (callers.py)."""

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from . import moto_state, policy
from .pod_identity_associations import Association, Associations
from .service_account_tokens import TokenSignatures

OPERATION = "eks-auth:AssumeRoleForPodIdentity"
# The projected token's audience (EKS User Guide, "Understand how EKS Pod
# Identity works": `serviceAccountToken: audience: pods.eks.amazonaws.com`);
# the answer's `audience` "is always pods.eks.amazonaws.com" (EKS API
# Reference, AssumeRoleForPodIdentity).
AUDIENCE = "pods.eks.amazonaws.com"
# The principal a Pod Identity role trusts, for "sts:AssumeRole" and
# "sts:TagSession" (EKS User Guide, "Create IAM role with trust policy
# required by EKS Pod Identity").
SERVICE_PRINCIPAL = "pods.eks.amazonaws.com"
# How long the credentials last is not documented. "If the association
# includes only an EKS Pod Identity role and no Target IAM Role, the cached
# credentials last for 6 hours" (EKS User Guide, "Access AWS Resources using
# EKS Pod Identity Target IAM Roles", Caching considerations), and the agent
# keeps credentials no longer than their expiration
# (aws/eks-pod-identity-agent, internal/credsretriever/refreshing_cache.go):
# they last 6 hours here. Whether EKS Auth's session is bound by the role's
# MaxSessionDuration is not documented; it is not applied.
SESSION_SECONDS = 6 * 3600
# "RoleSessionName … Maximum length of 64" (STS API Reference, AssumeRole).
MAX_SESSION_NAME = 64

# EKS Auth's errors and their HTTP status (its service model, as botocore
# ships it: data/eks-auth/2023-11-26/service-2.json). The messages EKS Auth
# sends with them are not documented: the layer sends each exception's
# description from that model.
STATUS = {
    "AccessDeniedException": 400,
    "ExpiredTokenException": 400,
    "InternalServerException": 500,
    "InvalidParameterException": 400,
    "InvalidRequestException": 400,
    "InvalidTokenException": 400,
    "ResourceNotFoundException": 404,
    "ServiceUnavailableException": 503,
    "ThrottlingException": 429,
}
DESCRIPTIONS = {
    "AccessDeniedException": "You don't have permissions to perform the requested operation.",
    "ExpiredTokenException": "The specified Kubernetes service account token is expired.",
    "InvalidTokenException": "The specified Kubernetes service account token is invalid.",
    "ResourceNotFoundException": "The specified resource could not be found.",
}


class EksAuthError(Exception):
    def __init__(self, code: str, message: str | None = None):
        self.code = code
        self.message = message or DESCRIPTIONS.get(code, code)
        super().__init__(f"{code}: {self.message}")

    @property
    def status(self) -> int:
        return STATUS.get(self.code, 400)


@dataclass(frozen=True)
class PodCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str
    account_id: str
    expiration: datetime
    session_arn: str
    # The session tags, all transitive ({} with disableSessionTags).
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Pod:
    """Who the token says asks: namespace, service account, Pod."""

    namespace: str
    service_account: str
    pod_name: str
    pod_uid: str | None


def pod_of(claims: dict) -> Pod | None:
    """The subject `system:serviceaccount:<namespace>:<name>`, or the same
    names in the token's `kubernetes.io` claim (where Kubernetes puts the
    namespace, service account and, for a token projected into a Pod, the
    Pod). A token without the Pod claim is answered as if the Pod were named
    after its service account: what EKS Auth does then is not documented."""
    kubernetes = claims.get("kubernetes.io")
    kubernetes = kubernetes if isinstance(kubernetes, dict) else {}
    subject = claims.get("sub")
    parts = subject.split(":") if isinstance(subject, str) else []
    if len(parts) == 4 and parts[:2] == ["system", "serviceaccount"]:
        namespace, service_account = parts[2], parts[3]
    else:
        account = kubernetes.get("serviceaccount")
        namespace = kubernetes.get("namespace")
        service_account = account.get("name") if isinstance(account, dict) else None
    if not (isinstance(namespace, str) and isinstance(service_account, str)):
        return None
    pod = kubernetes.get("pod")
    pod = pod if isinstance(pod, dict) else {}
    name, uid = pod.get("name"), pod.get("uid")
    return Pod(
        namespace,
        service_account,
        name if isinstance(name, str) and name else service_account,
        uid if isinstance(uid, str) and uid else None,
    )


def session_name(cluster: str, pod_name: str) -> str:
    """ "The role session name part of the value follows this format:
    eks-clustername-podname-random UUID" (EKS API Reference, AssumedRoleUser).
    Whether and how EKS shortens a name longer than STS's 64 characters is
    not documented: here the cluster and Pod part is cut, the UUID kept whole."""
    suffix = f"-{uuid.uuid4()}"
    return f"eks-{cluster}-{pod_name}"[: MAX_SESSION_NAME - len(suffix)] + suffix


def session_tags(association: Association, pod: Pod) -> dict[str, str]:
    """The tags EKS Pod Identity adds (EKS User Guide, "Grant Pods access to
    AWS resources based on tags", Enable or disable session tags): none if
    the association disables them. Without a Pod UID in the token the
    `kubernetes-pod-uid` tag is left out (undocumented case)."""
    if association.disable_session_tags:
        return {}
    tags = {
        "eks-cluster-arn": association.cluster_arn,
        "eks-cluster-name": association.cluster,
        "kubernetes-namespace": pod.namespace,
        "kubernetes-service-account": pod.service_account,
        "kubernetes-pod-name": pod.pod_name,
    }
    if pod.pod_uid is not None:
        tags["kubernetes-pod-uid"] = pod.pod_uid
    return tags


class EksAuth:
    def __init__(self, signatures: TokenSignatures, associations: Associations):
        self._signatures = signatures
        self._associations = associations

    def association_for(self, claims: dict | None, cluster: str | None) -> Association | None:
        """The association the token's subject has (signature not checked)."""
        pod = pod_of(claims) if claims else None
        if pod is None:
            return None
        return self._associations.find(pod.namespace, pod.service_account, cluster)

    def assume_role_for_pod_identity(
        self, token: str, claims: dict, cluster: str | None, seconds: float = SESSION_SECONDS
    ) -> PodCredentials:
        """Credentials of the association's role for the Pod the token names,
        lasting `seconds`; raise EksAuthError as EKS Auth refuses. Which error
        EKS Auth answers for which defect is not documented beyond each
        exception's description; the checks run in this order."""
        if not self._signatures.verify(token):
            raise EksAuthError("InvalidTokenException")
        audiences = claims.get("aud", [])
        audiences = [audiences] if isinstance(audiences, str) else audiences
        if not isinstance(audiences, list) or AUDIENCE not in audiences:
            raise EksAuthError("InvalidTokenException")
        expires = claims.get("exp")
        if not isinstance(expires, (int, float)):
            raise EksAuthError("InvalidTokenException")
        if time.time() >= expires:
            raise EksAuthError("ExpiredTokenException")
        pod = pod_of(claims)
        association = self.association_for(claims, cluster)
        if pod is None or association is None:
            raise EksAuthError("ResourceNotFoundException")
        tags = session_tags(association, pod)
        _check_trust(association, tags)
        session = moto_state.issue_session(
            association.role_arn,
            session_name(association.cluster, pod.pod_name),
            association.region,
            int(SESSION_SECONDS),
        )
        return PodCredentials(
            access_key_id=session.access_key_id,
            secret_access_key=session.secret_access_key,
            session_token=session.session_token,
            account_id=session.account_id,
            expiration=datetime.now(UTC) + timedelta(seconds=seconds),
            session_arn=session.arn,
            tags=tags,
        )


def _check_trust(association: Association, tags: dict[str, str]):
    """The role must exist and trust pods.eks.amazonaws.com for
    sts:AssumeRole and, when tags are added, sts:TagSession ("EKS Pod
    Identity uses TagSession to include session tags in the requests to AWS
    STS", EKS User Guide, "Create IAM role with trust policy required by EKS
    Pod Identity"). Whether a role trusted without sts:TagSession works for
    an association with disableSessionTags is not documented; here it does.
    The tags are the request's `aws:RequestTag/<key>` (ibid.: "When the Pod
    Identity IAM Role is assumed, it sends the following Request Tags")."""
    role = moto_state.find_role(association.role_arn)
    if role is None:
        raise EksAuthError("AccessDeniedException")
    trust = [moto_state.trust_policy(role)]
    context = {f"aws:RequestTag/{key}": value for key, value in tags.items()}
    principals = {"Service": {SERVICE_PRINCIPAL}}
    actions = ["sts:AssumeRole", "sts:TagSession"] if tags else ["sts:AssumeRole"]
    for action in actions:
        decision = policy.evaluate(trust, action, association.role_arn, context, principals)
        if decision is not policy.Decision.ALLOW:
            raise EksAuthError("AccessDeniedException")
