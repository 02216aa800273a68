//! Who owns what in a Secret: each SsmParameter its own keys (its own field
//! manager), a merge only where the Secret allows it, and Secrets written by
//! the single field manager of earlier versions taken over without a key lost.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use serde_json::{Value, json};

use ssm_operator_testenv::manifest::ssm_parameter;
use ssm_operator_testenv::{DEADLINE, Scenario, eventually};

async fn data(s: &Scenario, secret: &str) -> BTreeMap<String, String> {
    s.secret_data(secret).await
}

/// The field managers of Secret `name` that own data keys, with those keys.
async fn data_owners(s: &Scenario, name: &str) -> BTreeMap<String, Vec<String>> {
    let secret: Secret = s.secrets().get(name).await.unwrap();
    secret
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| {
            let fields = m.fields_v1?.0;
            let keys: Vec<String> = fields["f:data"]
                .as_object()?
                .keys()
                .map(|k| k.trim_start_matches("f:").to_owned())
                .collect();
            Some((m.manager?, keys))
        })
        .collect()
}

fn merging(parameters: Value, target: &str) -> Value {
    json!({"parameters": parameters, "target": {"name": target, "creationPolicy": "Merge", "deletionPolicy": "Delete"}})
}

#[tokio::test(flavor = "multi_thread")]
async fn two_merges_into_one_secret_keep_each_others_keys_and_delete_removes_only_their_own() {
    let mut s = Scenario::new("two-merges").await;
    let (key, _) = s.with_operator().await;
    let (a, b) = (format!("{}-a", s.id), format!("{}-b", s.id));
    s.put_secure_string(&a, "A", &key).await;
    s.put_secure_string(&b, "B", &key).await;
    s.put_secret_as("someone-else",
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "shared", "annotations": {"ssm-operator.io/merge-from": "first, second"}},
            "stringData": {"theirs": "T"},
        }),
    )
    .await;
    s.apply(&ssm_parameter(
        "first",
        merging(json!([{"name": a, "key": "a"}]), "shared"),
    ))
    .await;
    s.apply(&ssm_parameter(
        "second",
        merging(json!([{"name": b, "key": "b"}]), "shared"),
    ))
    .await;
    s.wait_for_condition("first", "Ready", "True", "Synced")
        .await;
    s.wait_for_condition("second", "Ready", "True", "Synced")
        .await;
    // Each refresh of either must leave the other's key in place.
    s.force_sync("first").await;
    s.force_sync("second").await;
    let want = BTreeMap::from([
        ("a".to_owned(), "A".to_owned()),
        ("b".to_owned(), "B".to_owned()),
        ("theirs".to_owned(), "T".to_owned()),
    ]);
    eventually(
        "both keys and theirs in the shared Secret",
        DEADLINE,
        || async {
            let d = data(&s, "shared").await;
            (d == want).then_some(())
        },
    )
    .await;
    let owners = data_owners(&s, "shared").await;
    let uid = |name: &str| {
        let s = &s;
        let name = name.to_owned();
        async move {
            s.ssm_parameters()
                .get(&name)
                .await
                .unwrap()
                .metadata
                .uid
                .unwrap()
        }
    };
    assert_eq!(
        owners[&format!("ssm-operator/{}", uid("first").await)],
        ["a"]
    );
    assert_eq!(
        owners[&format!("ssm-operator/{}", uid("second").await)],
        ["b"]
    );

    // AWS says `a` is gone: under Delete, first removes its key, only.
    s.aws.ssm.delete_parameter().name(&a).send().await.unwrap();
    s.force_sync("first").await;
    eventually("key a to be removed", DEADLINE, || async {
        let d = data(&s, "shared").await;
        (!d.contains_key("a")).then_some(d)
    })
    .await;
    s.force_sync("second").await;
    s.wait_for_event("first", "Deleted").await;
    assert_eq!(
        data(&s, "shared").await,
        BTreeMap::from([
            ("b".to_owned(), "B".to_owned()),
            ("theirs".to_owned(), "T".to_owned())
        ])
    );
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn merge_into_a_secret_that_does_not_list_it_writes_nothing() {
    let mut s = Scenario::new("merge-refused").await;
    let (key, _) = s.with_operator().await;
    let a = format!("{}-a", s.id);
    s.put_secure_string(&a, "A", &key).await;
    s.put_secret_as("someone-else",
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "theirs", "annotations": {"ssm-operator.io/merge-from": "somebody-else"}},
            "stringData": {"theirs": "T"},
        }),
    )
    .await;
    let before = s.secrets().get("theirs").await.unwrap();
    s.apply(&ssm_parameter(
        "grabby",
        merging(json!([{"name": a, "key": "a"}]), "theirs"),
    ))
    .await;
    let status = s
        .wait_for_condition("grabby", "Synced", "False", "SecretConflict")
        .await;
    let message = ssm_operator_testenv::wait::synced_message(&status);
    assert!(message.contains("ssm-operator.io/merge-from"), "{message}");
    s.apply(&ssm_parameter(
        "nowhere",
        merging(json!([{"name": a, "key": "a"}]), "missing"),
    ))
    .await;
    s.wait_for_condition("nowhere", "Synced", "False", "SecretConflict")
        .await;
    let after = s.secrets().get("theirs").await.unwrap();
    assert_eq!(
        after.metadata.resource_version,
        before.metadata.resource_version
    );
    assert!(s.secrets().get_opt("missing").await.unwrap().is_none());
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_written_by_the_old_shared_field_manager_are_taken_over_without_losing_keys() {
    let mut s = Scenario::new("takeover").await;
    let key = s.create_key().await;
    let (pw, user) = (format!("{}-pw", s.id), format!("{}-user", s.id));
    s.put_secure_string(&pw, "P", &key).await;
    s.put_secure_string(&user, "U", &key).await;
    // As the previous version left them: an owned Secret and a merged one,
    // every field of ours under the one manager `ssm-operator`.
    let owned = s.apply(&ssm_parameter(
        "owned",
        json!({"parameters": [{"name": pw, "key": "password"}, {"name": user, "key": "username"}]}),
    ))
    .await;
    s.put_secret_as("ssm-operator",
        json!({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {
                "name": "owned",
                "labels": {"ssm-operator.io/managed": "true", "app.kubernetes.io/managed-by": "ssm-operator"},
                "annotations": {"ssm-operator.io/owner": "owned"},
                "ownerReferences": [{"apiVersion": "ssm-operator.io/v1alpha1", "kind": "SsmParameter", "name": "owned", "uid": owned.metadata.uid, "controller": true}],
            },
            "stringData": {"password": "P", "username": "U"},
        }),
    )
    .await;
    s.put_secret_as(
        "someone-else",
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "shared", "annotations": {"ssm-operator.io/merge-from": "merged"}},
            "stringData": {"theirs": "T"},
        }),
    )
    .await;
    s.put_secret_as("ssm-operator",
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "shared", "labels": {"ssm-operator.io/managed": "true"}, "annotations": {"ssm-operator.io/owner": "merged"}},
            "stringData": {"password": "P", "username": "U"},
        }),
    )
    .await;
    s.apply(&ssm_parameter(
        "merged",
        json!({"parameters": [{"name": pw, "key": "password"}, {"name": user, "key": "username"}],
               "target": {"name": "shared", "creationPolicy": "Merge"}}),
    ))
    .await;

    let policy = ssm_operator_testenv::aws::setup::read_prefix_policy(&s.id, &key);
    let role = s.create_operator_role(&policy).await;
    s.start_operator(&role).await;
    s.wait_for_condition("owned", "Ready", "True", "Synced")
        .await;
    s.wait_for_condition("merged", "Ready", "True", "Synced")
        .await;
    eventually("the old manager to own no key", DEADLINE, || async {
        let owned = data_owners(&s, "owned").await;
        let shared = data_owners(&s, "shared").await;
        (!owned.contains_key("ssm-operator") && !shared.contains_key("ssm-operator")).then_some(())
    })
    .await;
    assert_eq!(data(&s, "owned").await.len(), 2);
    assert_eq!(data(&s, "shared").await.len(), 3);

    // Owned alone now, a key the spec drops goes; theirs stays.
    for (name, target) in [
        ("owned", json!({})),
        (
            "merged",
            json!({"name": "shared", "creationPolicy": "Merge"}),
        ),
    ] {
        s.apply(&ssm_parameter(
            name,
            json!({"parameters": [{"name": pw, "key": "password"}], "target": target}),
        ))
        .await;
    }
    eventually("username to go from both", DEADLINE, || async {
        let (owned, shared) = (data(&s, "owned").await, data(&s, "shared").await);
        (!owned.contains_key("username") && !shared.contains_key("username")).then_some(())
    })
    .await;
    assert_eq!(
        data(&s, "shared").await,
        BTreeMap::from([
            ("password".to_owned(), "P".to_owned()),
            ("theirs".to_owned(), "T".to_owned())
        ])
    );
    assert_eq!(
        data(&s, "owned").await,
        BTreeMap::from([("password".to_owned(), "P".to_owned())])
    );
    s.cleanup().await;
}
