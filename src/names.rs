//! Every name the operator owns in the cluster and in AWS: field managers,
//! the Event reporter, labels, annotations, the STS audience.

/// Field manager of every write the operator makes.
pub const FIELD_MANAGER: &str = "ssm-operator";

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

/// SsmParameter annotation: a new value makes the operator read AWS now.
pub const FORCE_SYNC_ANNOTATION: &str = "ssm-operator.io/force-sync";

/// Pod-template annotation whose new value rolls the workload.
pub const RESTARTED_AT: &str = "ssm-operator.io/restartedAt";

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
