"""EKS Pod Identity associations: which IAM role a cluster's service account
gets. On AWS they are made with EKS's CreatePodIdentityAssociation, which moto
does not serve; here the control endpoint `PUT /_fidelity/pod-identity-association`
makes them (one per cluster, namespace and service account, as on EKS)."""

import re
import threading
from dataclasses import dataclass

from . import moto_state
from .callers import ROLE_ARN

# "clusterName … Length Constraints: Minimum length of 1. Maximum length of
# 100. Pattern: [0-9A-Za-z][A-Za-z0-9\-_]*" (EKS API Reference,
# AssumeRoleForPodIdentity).
CLUSTER_NAME = re.compile(r"[0-9A-Za-z][A-Za-z0-9\-_]{0,99}")
# Where the association's cluster is, for its ARN (the eks-cluster-arn tag):
# the layer's default region, unless the association says otherwise.
DEFAULT_REGION = "us-east-1"
REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d")


@dataclass(frozen=True)
class Association:
    cluster: str
    namespace: str
    service_account: str
    role_arn: str
    disable_session_tags: bool = False
    region: str = DEFAULT_REGION

    @property
    def account(self) -> str:
        # "The EKS Pod Identity role must be in your EKS cluster's account"
        # (EKS User Guide, "Access AWS Resources using EKS Pod Identity
        # Target IAM Roles").
        return moto_state.account_in_arn(self.role_arn) or ""

    @property
    def cluster_arn(self) -> str:
        return f"arn:{moto_state.PARTITION}:eks:{self.region}:{self.account}:cluster/{self.cluster}"

    def to_json(self) -> dict:
        return {
            "cluster": self.cluster,
            "namespace": self.namespace,
            "serviceAccount": self.service_account,
            "roleArn": self.role_arn,
            "disableSessionTags": self.disable_session_tags,
            "region": self.region,
        }

    @classmethod
    def from_json(cls, body: dict) -> "Association":
        """The association a control request describes; ValueError if invalid."""
        cluster = body.get("cluster")
        if not isinstance(cluster, str) or not CLUSTER_NAME.fullmatch(cluster):
            raise ValueError("cluster must be an EKS cluster name ([0-9A-Za-z][A-Za-z0-9-_]*)")
        names = {}
        for field in ("namespace", "serviceAccount"):
            value = body.get(field)
            # The subject system:serviceaccount:<namespace>:<name> is split on colons.
            if not isinstance(value, str) or not value or ":" in value:
                raise ValueError(f"{field} must be a Kubernetes name")
            names[field] = value
        role_arn = body.get("roleArn")
        if not isinstance(role_arn, str) or not ROLE_ARN.fullmatch(role_arn):
            raise ValueError(
                "roleArn must be a role ARN such as arn:aws:iam::123456789012:role/name"
            )
        disable = body.get("disableSessionTags", False)
        if not isinstance(disable, bool):
            raise ValueError("disableSessionTags must be true or false")
        region = body.get("region", DEFAULT_REGION)
        if not isinstance(region, str) or not REGION.fullmatch(region):
            raise ValueError("region must be a region name such as us-east-1")
        return cls(cluster, names["namespace"], names["serviceAccount"], role_arn, disable, region)


class Associations:
    def __init__(self):
        self._lock = threading.Lock()
        self._associations: dict[tuple[str, str, str], Association] = {}

    def put(self, association: Association):
        """Adds it, or replaces the one of the same cluster, namespace and
        service account (which then counts as the newest)."""
        key = (association.cluster, association.namespace, association.service_account)
        with self._lock:
            self._associations.pop(key, None)
            self._associations[key] = association

    def clear(self):
        with self._lock:
            self._associations.clear()

    def all(self) -> list[Association]:
        with self._lock:
            return list(self._associations.values())

    def find(
        self, namespace: str, service_account: str, cluster: str | None = None
    ) -> Association | None:
        """The association of a service account: in `cluster`, or if none is
        named, in any cluster (the newest, if several clusters have one)."""
        for association in reversed(self.all()):
            if (association.namespace, association.service_account) != (
                namespace,
                service_account,
            ):
                continue
            if cluster is None or association.cluster == cluster:
                return association
        return None
