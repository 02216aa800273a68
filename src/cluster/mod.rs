//! ClusterSsmParameter: one Secret in many namespaces.
//!
//! A ClusterSsmParameter keeps an SsmParameter of its name in every
//! namespace it chooses ([`choose`]), its spec the template ([`children`]);
//! those SsmParameters do the reading and writing as any other, with two
//! differences:
//! - they read with the operator's own identity (or a role it allows for
//!   ClusterSsmParameters) whatever the namespace — but only while they are
//!   exactly what their ClusterSsmParameter keeps there ([`Fanout`]),
//!   so that a tenant can neither forge one nor edit one into another read;
//! - they refresh on one beat, so that their reads go out together and the
//!   batcher asks AWS once for all of them.
//!
//! The status gathers theirs ([`status`]).

pub mod children;
pub mod choose;
pub mod status;
pub mod write;

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};

use crate::api::{ClusterSsmParameter, SsmParameter};
use crate::reconcile::ReconcileError;
use crate::reconcile::tenancy::{Keeper, Keepers};
use futures::future::BoxFuture;

/// The caches of the ClusterSsmParameter controller.
#[derive(Clone)]
pub struct Caches {
    pub owners: Store<ClusterSsmParameter>,
    pub namespaces: Store<PartialObjectMeta<Namespace>>,
    /// The labelled SsmParameters, in every namespace.
    pub children: Store<SsmParameter>,
}

impl Caches {
    /// Every namespace, as [`choose`] looks at them.
    fn namespaces(&self) -> Vec<choose::Namespace> {
        (self.namespaces.state().iter())
            .map(|ns| choose::Namespace::of(&ns.metadata))
            .collect()
    }

    /// The labelled SsmParameters of `owner`'s name.
    fn children_of(&self, owner: &ClusterSsmParameter) -> Vec<Arc<SsmParameter>> {
        let name = owner.name_any();
        (self.children.state().into_iter())
            .filter(|c| c.name_any() == name)
            .collect()
    }
}

/// The ClusterSsmParameter controller's caches, once it runs: shared with
/// the SsmParameter reconciles, which ask it who keeps an SsmParameter.
#[derive(Default)]
pub struct Fanout(RwLock<Option<Caches>>);

impl Fanout {
    /// The controller's caches, from now on.
    pub fn set(&self, caches: Caches) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Some(caches);
    }

    fn caches(&self) -> Option<Caches> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Who keeps `child`, by the controller's caches.
    async fn keeper_of(&self, child: &SsmParameter) -> Keeper {
        let Some((name, _)) = children::owner_of(child) else {
            return Keeper::Nobody;
        };
        let Some(caches) = self.caches() else {
            let why =
                "this operator serves no ClusterSsmParameters (it watches only some namespaces)";
            return unkept(name, why);
        };
        // A fresh operator's caches list first.
        if caches.owners.wait_until_ready().await.is_err()
            || caches.namespaces.wait_until_ready().await.is_err()
        {
            return unkept(name, "the operator is stopping");
        }
        let owner = caches.owners.get(&ObjectRef::new(name));
        let namespace = ObjectRef::new(&child.namespace().unwrap_or_default());
        let namespace =
            (caches.namespaces.get(&namespace)).map(|ns| choose::Namespace::of(&ns.metadata));
        verdict(child, owner, namespace.as_ref())
    }
}

/// Who keeps `child`, given the ClusterSsmParameter its controller
/// reference names (if it exists) and its namespace: that one, if the
/// same uid, choosing the namespace, with the child's spec as template.
pub fn verdict(
    child: &SsmParameter,
    owner: Option<Arc<ClusterSsmParameter>>,
    namespace: Option<&choose::Namespace>,
) -> Keeper {
    let Some((name, uid)) = children::owner_of(child) else {
        return Keeper::Nobody;
    };
    let Some(owner) = owner else {
        return unkept(name, "it does not exist");
    };
    if owner.uid().as_deref() != Some(uid) {
        return unkept(name, "the reference is to another object of that name");
    }
    let chosen = namespace.map(|ns| choose::chosen(&owner, std::slice::from_ref(ns)));
    if !matches!(chosen, Some(Ok(chosen)) if !chosen.is_empty()) {
        return unkept(name, "it does not choose this namespace");
    }
    if child.spec != owner.spec.template || child.name_any() != owner.name_any() {
        return unkept(name, "its spec is not the template");
    }
    Keeper::Kept(owner)
}

fn unkept(name: &str, why: &str) -> Keeper {
    Keeper::Unkept(format!(
        "not what ClusterSsmParameter {name} keeps in this namespace: {why}"
    ))
}

impl Keepers for Fanout {
    fn keeper<'a>(&'a self, obj: &'a SsmParameter) -> BoxFuture<'a, Keeper> {
        Box::pin(self.keeper_of(obj))
    }
}

/// One ClusterSsmParameter's reconcile: the SsmParameters it keeps brought
/// in line with the namespaces it chooses, then its status from theirs.
pub async fn reconcile(
    owner: Arc<ClusterSsmParameter>,
    ctx: Arc<ClusterContext>,
) -> Result<Action, ReconcileError> {
    // Its SsmParameters go with it (garbage collection, by their references).
    if owner.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let caches = &ctx.caches;
    let kept = caches.children_of(&owner);
    let next = match choose::chosen(&owner, &caches.namespaces()) {
        Ok(chosen) => {
            let changes = children::changes(&owner, &chosen, &kept);
            let conflicts = write::apply(&ctx.client, changes).await?;
            gather(&owner, &chosen, &kept, &conflicts)
        }
        Err(why) => status::next(owner.status.as_ref(), Err((&owner, why)), &now()),
    };
    if owner.status.as_ref() != Some(&next) {
        write::status(&ctx.client, &owner, &next).await?;
    }
    Ok(Action::await_change())
}

fn gather(
    owner: &ClusterSsmParameter,
    chosen: &BTreeSet<String>,
    kept: &[Arc<SsmParameter>],
    conflicts: &[String],
) -> crate::api::ClusterSsmParameterStatus {
    let observed = status::Observed {
        owner,
        chosen,
        children: kept,
        conflicts,
    };
    status::next(owner.status.as_ref(), Ok(observed), &now())
}

fn now() -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Time {
    crate::reconcile::status::now()
}

/// What every ClusterSsmParameter reconcile shares.
pub struct ClusterContext {
    pub client: kube::Client,
    pub caches: Caches,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn owner(uid: &str) -> Arc<ClusterSsmParameter> {
        Arc::new(
            serde_json::from_value(json!({
                "apiVersion": "ssm-operator.io/v1alpha1", "kind": "ClusterSsmParameter",
                "metadata": {"name": "ca", "uid": uid},
                "spec": {"namespaces": ["team-a"], "template": {"parameters": [{"name": "/ca"}]}},
            }))
            .unwrap(),
        )
    }

    fn namespace(name: &str) -> choose::Namespace {
        choose::Namespace {
            name: name.to_owned(),
            ..Default::default()
        }
    }

    fn why(keeper: Keeper) -> String {
        match keeper {
            Keeper::Unkept(why) => why,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn only_what_its_owner_keeps_in_its_namespace_is_kept() {
        let owner = owner("u1");
        let kept = children::desired(&owner, "team-a");
        let team_a = namespace("team-a");
        assert!(matches!(
            verdict(&kept, Some(owner.clone()), Some(&team_a)),
            Keeper::Kept(_)
        ));

        let plain = crate::testing::ssm_parameter("ca", json!({"parameters": [{"name": "/ca"}]}));
        assert!(matches!(verdict(&plain, None, None), Keeper::Nobody));
        assert!(why(verdict(&kept, None, Some(&team_a))).ends_with("it does not exist"));
        let namesake = self::owner("u2");
        assert!(why(verdict(&kept, Some(namesake), Some(&team_a))).contains("another object"));
        let elsewhere = children::desired(&owner, "team-b");
        let team_b = namespace("team-b");
        let refused = why(verdict(&elsewhere, Some(owner.clone()), Some(&team_b)));
        assert!(
            refused.contains("does not choose this namespace"),
            "{refused}"
        );
        let mut edited = kept.clone();
        edited.spec.refresh_interval = Some("10s".into());
        let refused = why(verdict(&edited, Some(owner), Some(&team_a)));
        assert_eq!(
            refused,
            "not what ClusterSsmParameter ca keeps in this namespace: its spec is not the template"
        );
    }
}
