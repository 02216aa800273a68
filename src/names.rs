//! Every name the operator owns in the cluster and in AWS: field managers,
//! the Event reporter, labels, annotations, the STS audience.

/// Field manager of the operator's writes other than Secrets: status,
/// rollouts, finalizers, Leases. Secrets written before 0.4 carry it too.
pub const FIELD_MANAGER: &str = "ssm-operator";

/// Field manager of the Secret writes of the SsmParameter with this uid: two
/// SsmParameters merging into one Secret own their keys separately.
pub fn secret_field_manager(uid: &str) -> String {
    format!("{FIELD_MANAGER}/{uid}")
}

/// The `reportingController` of the operator's Events.
pub const REPORTER: &str = "ssm-operator";

/// Label on every Secret the operator writes to; the operator watches
/// Secrets through it, by metadata only.
pub const WATCH_LABEL: &str = "ssm-operator.io/managed";
/// Label on the Secrets the operator owns outright (not on merged ones).
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "ssm-operator";
/// Annotation naming the SsmParameter that writes the Secret.
pub const OWNER_ANNOTATION: &str = "ssm-operator.io/owner";

/// Secret annotation: the SsmParameters (comma-separated names, or `*`)
/// allowed to merge their keys into it.
pub const MERGE_FROM_ANNOTATION: &str = "ssm-operator.io/merge-from";
/// Secret types nothing is ever merged into: they are credentials of the
/// cluster itself.
pub const UNMERGEABLE_SECRET_TYPES: [&str; 2] = [
    "kubernetes.io/service-account-token",
    "bootstrap.kubernetes.io/token",
];

/// Finalizer on SsmParameters whose Secrets carry an ownerReference: when the
/// CRD itself is being deleted, the operator takes that reference off before
/// the object goes, so that garbage collection never deletes users' Secrets.
pub const FINALIZER: &str = "ssm-operator.io/orphan-on-crd-deletion";
/// The SsmParameter CRD, whose deletion the operator watches out for.
pub const CRD_NAME: &str = "ssmparameters.ssm-operator.io";

/// Label on the SsmParameters a ClusterSsmParameter keeps, naming it.
pub const CLUSTER_LABEL: &str = "ssm-operator.io/cluster-ssm-parameter";
/// The ClusterSsmParameter CRD: its deletion deletes the SsmParameters
/// kept for it, whose Secrets are then orphaned as for [`CRD_NAME`].
pub const CLUSTER_CRD_NAME: &str = "clusterssmparameters.ssm-operator.io";

/// SsmParameter annotation: a new value makes the operator read AWS now.
pub const FORCE_SYNC_ANNOTATION: &str = "ssm-operator.io/force-sync";

/// Pod-template annotation: when the operator last restarted the workload.
pub const RESTARTED_AT: &str = "ssm-operator.io/restartedAt";
/// Prefix of the pod-template annotations that hold, per SsmParameter, the
/// fingerprint of the data the workload was last restarted for.
pub const ROLLOUT_ANNOTATION_PREFIX: &str = "rollout.ssm-operator.io";

/// Namespace annotation: comma-separated globs of role ARNs its SsmParameters
/// may assume with `identity.roleArn`.
pub const ALLOWED_ROLE_ARNS: &str = "ssm-operator.io/allowed-role-arns";
/// ServiceAccount annotation: `"true"` is its owner's consent that
/// SsmParameters of its namespace read AWS as it.
pub const ALLOW_SSM_PARAMETERS: &str = "ssm-operator.io/allow-ssmparameters";
/// ServiceAccount annotation naming its IAM role (as on EKS).
pub const ROLE_ARN_ANNOTATION: &str = "eks.amazonaws.com/role-arn";

/// Audience of the web identity tokens exchanged with STS (as IRSA's).
pub const STS_AUDIENCE: &str = "sts.amazonaws.com";
