//! One tenant cannot take the operator down: a template that would render
//! gigabytes and a path of 5,000 parameters are refused at their bounds,
//! while other objects applied next to them become Ready in seconds and the
//! operator's memory stays small; a start lists the SsmParameters in pages.

use std::time::{Duration, Instant};

use futures::{StreamExt, stream};
use serde_json::json;

use ssm_operator_testenv::manifest::ssm_parameter;
use ssm_operator_testenv::{Scenario, eventually};

const PATH_PARAMETERS: usize = 5_000;
const NEIGHBOURS: usize = 20;
/// The chart's default memory limit.
const MEMORY_LIMIT_MIB: f64 = 256.0;

#[tokio::test(flavor = "multi_thread")]
async fn a_template_bomb_and_a_5000_parameter_path_leave_20_neighbours_ready_in_seconds() {
    let mut s = Scenario::new("bounds").await;
    let (key, role) = s.with_operator().await;
    let value = "v".repeat(4096);
    let pw = format!("{}-pw", s.id);
    s.put_secure_string(&pw, &value, &key).await;
    let prefix = format!("/{}/big", s.id);
    let started = Instant::now();
    stream::iter(0..PATH_PARAMETERS)
        .for_each_concurrent(32, |i| {
            let (s, prefix) = (&s, &prefix);
            async move { s.aws.put_string(&format!("{prefix}/p{i}"), "x").await }
        })
        .await;
    println!(
        "put {PATH_PARAMETERS} parameters in {:?}",
        started.elapsed()
    );

    // 50 templates at the schema's 8192 characters, each 630 copies of a
    // 4 KiB value through b64enc (5.3 KiB): about 170 MB if rendered.
    let bomb = "{{pw|b64enc}}".repeat(8192 / "{{pw|b64enc}}".len());
    let templates: serde_json::Map<String, serde_json::Value> =
        (0..50).map(|i| (format!("t{i}"), json!(bomb))).collect();
    s.apply(&ssm_parameter(
        "bomb",
        json!({"parameters": [{"name": pw, "key": "pw"}], "target": {"template": templates}}),
    ))
    .await;
    s.apply(&ssm_parameter(
        "huge-path",
        json!({"path": {"prefix": prefix}}),
    ))
    .await;
    let applied = Instant::now();
    for i in 0..NEIGHBOURS {
        s.apply(&ssm_parameter(
            &format!("neighbour-{i}"),
            json!({"parameters": [{"name": pw, "key": "pw"}]}),
        ))
        .await;
    }
    for i in 0..NEIGHBOURS {
        s.wait_for_condition(&format!("neighbour-{i}"), "Ready", "True", "Synced")
            .await;
    }
    println!(
        "{NEIGHBOURS} neighbours Ready {:?} after they were applied",
        applied.elapsed()
    );

    let bomb = s
        .wait_for_condition("bomb", "Synced", "False", "SecretTooLarge")
        .await;
    let huge = s
        .wait_for_condition("huge-path", "Synced", "False", "InvalidSpec")
        .await;
    let message = &huge
        .conditions
        .iter()
        .find(|c| c.type_ == "Synced")
        .unwrap()
        .message;
    assert!(message.contains("more than 1000 parameters"), "{message}");
    assert!(s.secrets().get_opt("bomb").await.unwrap().is_none());
    assert!(s.secrets().get_opt("huge-path").await.unwrap().is_none());
    assert!(!bomb.conditions.iter().any(|c| c.message.contains("vvvv")));

    // Refused for good: no further listing of the path until its spec changes.
    let listed = || s.aws_calls("ssm:GetParametersByPath", &role);
    let before = listed().await;
    s.force_sync("neighbour-0").await;
    eventually(
        "another reconcile of a neighbour",
        ssm_operator_testenv::DEADLINE,
        || async { (s.finished_reconciles("neighbour-0", "Synced") >= 2).then_some(()) },
    )
    .await;
    assert_eq!(listed().await, before, "the refused path was listed again");

    let peak = s.operator().peak_rss_mib().expect("the operator runs");
    println!("operator peak RSS {peak:.1} MiB");
    assert!(
        peak < MEMORY_LIMIT_MIB,
        "peak RSS {peak:.1} MiB over the chart's limit"
    );
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_force_sync_flood_costs_a_read_per_ten_seconds_and_a_neighbour_is_ready_in_seconds() {
    let mut s = Scenario::new("flood").await;
    let (key, role) = s.with_operator().await;
    let pw = format!("{}-pw", s.id);
    s.put_secure_string(&pw, "x", &key).await;
    s.apply(&ssm_parameter(
        "flooded",
        json!({"parameters": [{"name": pw, "key": "pw"}]}),
    ))
    .await;
    s.wait_for_condition("flooded", "Ready", "True", "Synced")
        .await;
    let reads = || s.aws_calls("ssm:GetParameters", &role);
    let before = reads().await;
    let started = Instant::now();
    for _ in 0..200 {
        s.force_sync("flooded").await;
    }
    let flooded_for = started.elapsed();
    s.apply(&ssm_parameter(
        "neighbour",
        json!({"parameters": [{"name": pw, "key": "pw"}]}),
    ))
    .await;
    s.wait_for_condition("neighbour", "Ready", "True", "Synced")
        .await;
    println!(
        "neighbour Ready {:?} after 200 force-syncs of another object",
        started.elapsed() - flooded_for
    );
    let spent = reads().await - before;
    // The burst, one per 10 s of flood, the neighbour's read (each read is at
    // most two calls: a version probe and the decrypting read).
    let allowed = 2 * (5 + flooded_for.as_secs() / 10 + 1) + 2;
    println!(
        "200 force-syncs in {flooded_for:?} cost {spent} GetParameters calls (at most {allowed})"
    );
    assert!(
        spent <= allowed,
        "{spent} GetParameters calls for a flood of {flooded_for:?}"
    );
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_drift_fight_is_repaired_at_a_limited_rate_and_told_as_secret_conflict() {
    use base64::Engine;
    let mut s = Scenario::new("fight").await;
    let (key, _role) = s.with_operator().await;
    let pw = format!("{}-pw", s.id);
    s.put_secure_string(&pw, "from-aws", &key).await;
    s.apply(&ssm_parameter(
        "fought",
        json!({"parameters": [{"name": pw, "key": "pw"}]}),
    ))
    .await;
    s.wait_for_condition("fought", "Ready", "True", "Synced")
        .await;
    let repairs_before = s.operator_secret_writes().len();

    // Another controller sets the key back to its own value four times a
    // second, for a bounded 30 s.
    let tampered = base64::engine::general_purpose::STANDARD.encode("tampered");
    let fight = Duration::from_secs(30);
    let started = Instant::now();
    let mut edits = 0;
    let mut told = None;
    let mut pace = tokio::time::interval(Duration::from_millis(250));
    while started.elapsed() < fight {
        pace.tick().await;
        s.put_secret_as(
            "other-controller",
            json!({"metadata": {"name": "fought"}, "data": {"pw": tampered}}),
        )
        .await;
        edits += 1;
        if told.is_none() {
            let conflict = s.status("fought").await.and_then(|st| {
                st.conditions
                    .into_iter()
                    .find(|c| c.type_ == "Synced" && c.reason == "SecretConflict")
            });
            told = conflict.map(|c| (c.message, started.elapsed()));
        }
    }
    let (message, told_after) = told.expect("the fight was told as SecretConflict");
    assert!(
        message.contains("keeps being changed by another writer"),
        "{message}"
    );

    // Once the other writer stops, the Secret is restored and Synced again.
    s.wait_for_condition("fought", "Synced", "True", "Synced")
        .await;
    ssm_operator_testenv::eventually(
        "the Secret restored from AWS",
        ssm_operator_testenv::DEADLINE,
        || async {
            (s.secret_value("fought", "pw").await.as_deref() == Some("from-aws")).then_some(())
        },
    )
    .await;
    let repairs = s.operator_secret_writes().len() - repairs_before;
    // The burst, one per 10 s of fight, the repair after it stopped.
    let allowed = 5 + fight.as_secs() as usize / 10 + 2;
    println!(
        "{edits} edits by another writer in {fight:?}: {repairs} repairs (at most {allowed}), told as SecretConflict after {told_after:?}"
    );
    assert!(repairs <= allowed, "{repairs} repairs of {edits} edits");
    assert!(
        repairs >= 6,
        "the fight went on past the burst: {repairs} repairs"
    );
    s.cleanup().await;
}

/// A page of the operator's lists.
const LIST_PAGE: usize = ssm_operator::runtime::client::LIST_PAGE as usize;

/// A start lists the SsmParameters in pages, so that no one answer holds
/// them all. The list may take any version, but not as `resourceVersion=0`
/// beside the limit: the API server serves that whole from its watch cache
/// and ignores the limit (kube leaves the `0` out of a paged list).
#[tokio::test(flavor = "multi_thread")]
async fn a_start_lists_ssm_parameters_in_pages_not_in_one_answer() {
    let mut s = Scenario::new("paged-list").await;
    stream::iter(0..=LIST_PAGE)
        .for_each_concurrent(16, |i| {
            let s = &s;
            async move {
                let name = format!("/{}/p{i}", s.id);
                s.apply(&ssm_parameter(
                    &format!("p{i}"),
                    json!({"parameters": [{"name": name}]}),
                ))
                .await;
            }
        })
        .await;
    s.with_operator().await;
    let last = format!("p{LIST_PAGE}");
    s.wait_for_condition(&last, "Synced", "False", "ParameterNotFound")
        .await;

    let lists = s.operator_lists("ssmparameters");
    assert!(!lists.is_empty(), "no list of SsmParameters was audited");
    let first = &lists[0];
    assert!(
        first.contains(&format!("limit={LIST_PAGE}")) && !first.contains("resourceVersion=0"),
        "the first list is not a page: {first}"
    );
    assert!(
        lists.iter().any(|uri| uri.contains("continue=")),
        "{} SsmParameters came in one answer: {lists:?}",
        LIST_PAGE + 1
    );
    s.cleanup().await;
}
