//! Which AWS identity an SsmParameter reads with, and whether its namespace
//! may use it.
//!
//! The operator must never become the deputy through which one namespace
//! reads what only another namespace's role may read. So: a ServiceAccount
//! identity is always one of the SsmParameter's own namespace (the API has no
//! namespace field for it); a chained role needs the Namespace's own consent
//! (an annotation only cluster admins should be able to write); and the
//! operator's own identity can be limited to the platform's namespaces.

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::Api;
use kube::{Client, ResourceExt};

use futures::future::BoxFuture;
use kube::Resource;

use crate::api::{ClusterSsmParameter, SsmParameter, SyncError};
use crate::aws::{Identity, IdentitySource};
use crate::names::{ALLOW_SSM_PARAMETERS, ALLOWED_ROLE_ARNS, ROLE_ARN_ANNOTATION};
use crate::reconcile::halt::Halt;

/// The operator's multi-tenancy settings.
#[derive(Clone, Debug)]
pub struct Tenancy {
    /// Whether `identity.serviceAccountName` may be used at all.
    pub service_account_identities: bool,
    /// Globs of the namespaces that may use the operator's own identity.
    pub operator_identity_namespaces: Vec<String>,
    /// Globs of the role ARNs ClusterSsmParameters may chain to.
    pub cluster_role_arns: Vec<String>,
}

/// The identity `obj` reads with, or why it may not read.
pub async fn resolve(
    obj: &SsmParameter,
    tenancy: &Tenancy,
    client: &Client,
    keepers: &dyn Keepers,
) -> Result<Identity, Halt> {
    let namespace = obj.namespace().unwrap_or_default();
    match keepers.keeper(obj).await {
        Keeper::Nobody => {}
        Keeper::Kept(owner) => return kept(obj, &owner, tenancy),
        Keeper::Unkept(why) => {
            return Err(Halt::from(SyncError::RoleNotAllowed {
                role: "a ClusterSsmParameter's identity".to_owned(),
                namespace,
                remedy: format!("this SsmParameter is {why}"),
            }));
        }
    }
    let wanted = obj.spec.identity.clone().unwrap_or_default();
    let source = match &wanted.service_account_name {
        None if tenancy
            .operator_identity_namespaces
            .iter()
            .any(|g| glob_match(g, &namespace)) =>
        {
            IdentitySource::Operator
        }
        None => {
            return Err(Halt::from(SyncError::RoleNotAllowed {
                role: "the operator's own identity".to_owned(),
                namespace,
                remedy: "name a ServiceAccount in identity.serviceAccountName, or have the operator's admin list the namespace in --operator-identity-namespaces (chart value operatorIdentityNamespaces)".to_owned(),
            }));
        }
        Some(_) if !tenancy.service_account_identities => {
            return Err(Halt::from(SyncError::ServiceAccountNotFound {
                detail: "identity.serviceAccountName is turned off in this operator (--service-account-identities=false)"
                    .to_owned(),
            }));
        }
        Some(name) => IdentitySource::ServiceAccount {
            namespace: namespace.clone(),
            name: name.clone(),
            role_arn: service_account_role(client, &namespace, name).await?,
        },
    };
    if let Some(role) = &wanted.role_arn {
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let found = match namespaces.get_opt(&namespace).await {
            // A namespaced install may not read Namespaces: no consent then.
            Err(kube::Error::Api(e)) if e.code == 403 => None,
            other => other?,
        };
        let allowed = found
            .and_then(|ns| ns.annotations().get(ALLOWED_ROLE_ARNS).cloned())
            .unwrap_or_default();
        if !allowed
            .split(',')
            .map(str::trim)
            .any(|glob| !glob.is_empty() && glob_match(glob, role))
        {
            return Err(Halt::from(SyncError::RoleNotAllowed {
                role: format!("role {role}"),
                namespace,
                remedy: format!(
                    "a cluster admin may allow it with the Namespace annotation {ALLOWED_ROLE_ARNS}"
                ),
            }));
        }
    }
    let chained_for = wanted
        .role_arn
        .is_some()
        .then(|| obj.namespace().unwrap_or_default());
    Ok(Identity {
        source,
        chained_role: wanted.role_arn,
        chained_for,
    })
}

/// Who keeps an SsmParameter.
#[derive(Debug)]
pub enum Keeper {
    /// It claims no ClusterSsmParameter.
    Nobody,
    /// It is exactly what this ClusterSsmParameter keeps in its namespace.
    Kept(std::sync::Arc<ClusterSsmParameter>),
    /// It claims one, but is not what that one keeps there: why.
    Unkept(String),
}

/// Tells who keeps an SsmParameter (the ClusterSsmParameter controller,
/// [`crate::cluster`]).
pub trait Keepers: Send + Sync {
    fn keeper<'a>(&'a self, obj: &'a SsmParameter) -> BoxFuture<'a, Keeper>;
}

/// Where no ClusterSsmParameter is served: an SsmParameter claiming one
/// is not kept.
pub struct NoKeepers;

impl Keepers for NoKeepers {
    fn keeper<'a>(&'a self, obj: &'a SsmParameter) -> BoxFuture<'a, Keeper> {
        let keeper = match claimed_keeper(obj) {
            None => Keeper::Nobody,
            Some((name, _)) => Keeper::Unkept(format!(
                "not kept by ClusterSsmParameter {name}: this operator serves none"
            )),
        };
        Box::pin(std::future::ready(keeper))
    }
}

/// The ClusterSsmParameter `obj` says it is kept by (its controller
/// reference): its name and uid.
pub fn claimed_keeper(obj: &SsmParameter) -> Option<(&str, &str)> {
    let kind = ClusterSsmParameter::kind(&());
    let api_version = ClusterSsmParameter::api_version(&());
    obj.owner_references()
        .iter()
        .find(|r| r.controller == Some(true) && r.kind == kind && r.api_version == api_version)
        .map(|r| (r.name.as_str(), r.uid.as_str()))
}

/// The identity of an SsmParameter a ClusterSsmParameter keeps: the
/// operator's own, chained to a role only if the operator allows that role
/// for ClusterSsmParameters (a cluster admin's object: no namespace's
/// consent applies).
fn kept(
    obj: &SsmParameter,
    owner: &ClusterSsmParameter,
    tenancy: &Tenancy,
) -> Result<Identity, Halt> {
    let role = owner
        .spec
        .template
        .identity
        .as_ref()
        .and_then(|i| i.role_arn.clone());
    if let Some(role) = &role
        && !tenancy
            .cluster_role_arns
            .iter()
            .any(|glob| glob_match(glob, role))
    {
        return Err(Halt::from(SyncError::RoleNotAllowed {
            role: format!("role {role}"),
            namespace: obj.namespace().unwrap_or_default(),
            remedy: format!(
                "ClusterSsmParameter {} may chain to it only if the operator's admin allows it with --cluster-role-arns (chart value clusterRoleArns)",
                owner.name_any()
            ),
        }));
    }
    Ok(Identity {
        source: IdentitySource::Operator,
        chained_for: role.is_some().then(|| obj.namespace().unwrap_or_default()),
        chained_role: role,
    })
}

/// The role ARN annotated on ServiceAccount `namespace/name`, if its owner
/// consented: whoever may create SsmParameters in a namespace must not
/// borrow every annotated ServiceAccount there without `serviceaccounts/token`
/// rights of their own.
async fn service_account_role(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<String, Halt> {
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let Some(account) = accounts.get_opt(name).await? else {
        return Err(Halt::from(SyncError::ServiceAccountNotFound {
            detail: format!("ServiceAccount {namespace}/{name} not found"),
        }));
    };
    if account
        .annotations()
        .get(ALLOW_SSM_PARAMETERS)
        .map(String::as_str)
        != Some("true")
    {
        return Err(Halt::from(SyncError::ServiceAccountNotFound {
            detail: format!(
                "ServiceAccount {namespace}/{name} has not opted in: annotate it with {ALLOW_SSM_PARAMETERS}: \"true\" to let SsmParameters read AWS as it"
            ),
        }));
    }
    let role = account.annotations().get(ROLE_ARN_ANNOTATION).cloned();
    Ok(role.ok_or_else(|| SyncError::ServiceAccountNotFound {
        detail: format!(
            "ServiceAccount {namespace}/{name} has no {ROLE_ARN_ANNOTATION} annotation"
        ),
    })?)
}

/// `*` matches any run of characters, `?` any one; everything else itself.
pub fn glob_match(glob: &str, text: &str) -> bool {
    let (glob, text): (Vec<char>, Vec<char>) = (glob.chars().collect(), text.chars().collect());
    // Classic wildcard matching with backtracking to the last `*`.
    let (mut g, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match glob.get(g) {
            Some('*') => {
                star = Some((g, t));
                g += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                g += 1;
                t += 1;
            }
            _ => match star {
                Some((sg, st)) => {
                    g = sg + 1;
                    t = st + 1;
                    star = Some((sg, st + 1));
                }
                None => return false,
            },
        }
    }
    glob[g..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_shell_patterns() {
        assert!(glob_match("*", "anything"));
        assert!(glob_match(
            "arn:aws:iam::111122223333:role/team-a-*",
            "arn:aws:iam::111122223333:role/team-a-reader"
        ));
        assert!(!glob_match(
            "arn:aws:iam::111122223333:role/team-a-*",
            "arn:aws:iam::111122223333:role/team-b-reader"
        ));
        assert!(glob_match("platform-?", "platform-1"));
        assert!(!glob_match("platform-?", "platform-12"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
        assert!(!glob_match("", "x"));
    }
}
