//! Values shaped the way apps consume them: template filters, nested JSON
//! properties, base64-decoded binary values, and path imports that pick.

use base64::Engine as _;
use k8s_openapi::api::core::v1::Secret;
use serde_json::json;

use ssm_operator_testenv::Scenario;
use ssm_operator_testenv::manifest::ssm_parameter;
use ssm_operator_testenv::wait::synced_message;

async fn bytes(s: &Scenario, secret: &str, key: &str) -> Vec<u8> {
    let secret: Secret = s.secrets().get(secret).await.unwrap();
    secret.data.unwrap_or_default()[key].0.clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn filters_keep_a_password_with_url_and_json_delimiters_intact() {
    let mut s = Scenario::new("filters").await;
    let (key, _) = s.with_operator().await;
    let name = format!("{}-pw", s.id);
    let password = "p@ss:w/rd?\"&=} {";
    s.put_secure_string(&name, password, &key).await;
    s.apply(&ssm_parameter(
        "app",
        json!({"parameters": [{"name": name, "key": "password"}],
               "target": {"type": "kubernetes.io/dockerconfigjson", "template": {
                   "DATABASE_URL": "postgres://app:{{ password | urlpath }}@db/app",
                   "QUERY": "https://h/login?p={{password|urlquery}}",
                   ".dockerconfigjson": "{\"auths\":{\"r.example\":{\"username\":\"ci\",\"password\":\"{{ password | json }}\",\"auth\":\"{{ password | b64enc }}\"}}}",
                   "ROUND_TRIP": "{{ password | b64enc | b64dec | trim }}",
               }}}),
    ))
    .await;
    s.wait_for_condition("app", "Ready", "True", "Synced").await;
    let data = s.secret_data("app").await;
    assert_eq!(
        data["DATABASE_URL"],
        "postgres://app:p%40ss%3Aw%2Frd%3F%22%26%3D%7D%20%7B@db/app"
    );
    assert_eq!(
        data["QUERY"],
        "https://h/login?p=p%40ss%3Aw%2Frd%3F%22%26%3D%7D+%7B"
    );
    let config: serde_json::Value = serde_json::from_str(&data[".dockerconfigjson"])
        .expect("the API server took it as a dockerconfigjson, and it parses");
    let auth = &config["auths"]["r.example"];
    assert_eq!(auth["password"], password);
    assert_eq!(
        auth["auth"],
        base64::engine::general_purpose::STANDARD.encode(password)
    );
    assert_eq!(data["ROUND_TRIP"], "p@ss:w/rd?\"&=} {");
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_filter_that_cannot_apply_is_invalid_spec_naming_it_and_writes_nothing() {
    let mut s = Scenario::new("filter-fails").await;
    let (key, _) = s.with_operator().await;
    let name = format!("{}-pw", s.id);
    s.put_secure_string(&name, "CANARY-not-base64!", &key).await;
    s.apply(&ssm_parameter(
        "bad",
        json!({"parameters": [{"name": name, "key": "password"}],
               "target": {"template": {"decoded": "{{ password | b64dec }}"}}}),
    ))
    .await;
    let status = s
        .wait_for_condition("bad", "Synced", "False", "InvalidSpec")
        .await;
    let message = synced_message(&status);
    assert!(
        message.contains("b64dec") && message.contains("\"password\""),
        "{message}"
    );
    assert!(!message.contains("CANARY"), "{message}");
    assert!(s.secrets().get_opt("bad").await.unwrap().is_none());
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn decode_base64_writes_the_bytes_of_a_binary_value() {
    let mut s = Scenario::new("decode").await;
    let (key, _) = s.with_operator().await;
    // A DER-like blob: not UTF-8, with a NUL; stored as `base64` wraps it.
    let blob: Vec<u8> = (0..=255u8).rev().chain([0, 0x30, 0x82]).collect();
    let encoded = base64::engine::general_purpose::STANDARD.encode(&blob);
    let wrapped: Vec<String> = encoded
        .as_bytes()
        .chunks(76)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    let keystore = format!("{}-keystore", s.id);
    s.put_secure_string(&keystore, &format!("{}\n", wrapped.join("\n")), &key)
        .await;
    let bundle = format!("{}-bundle", s.id);
    s.put_secure_string(
        &bundle,
        &json!({"tls": {"key": base64::engine::general_purpose::STANDARD.encode([1u8, 2, 255])}})
            .to_string(),
        &key,
    )
    .await;
    s.apply(&ssm_parameter(
        "binary",
        json!({"parameters": [
            {"name": keystore, "key": "keystore.p12", "decode": "Base64"},
            {"name": bundle, "key": "tls.key", "property": "tls.key", "decode": "Base64"},
        ]}),
    ))
    .await;
    s.wait_for_condition("binary", "Ready", "True", "Synced")
        .await;
    assert_eq!(bytes(&s, "binary", "keystore.p12").await, blob);
    assert_eq!(bytes(&s, "binary", "tls.key").await, [1, 2, 255]);
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn property_paths_reach_nested_fields_array_items_and_dotted_names() {
    let mut s = Scenario::new("property-path").await;
    let (key, _) = s.with_operator().await;
    let name = format!("{}-db", s.id);
    let value = json!({"db": {"password": "pw", "hosts": ["a", "b"], "port": 5432},
                       "tls.crt": "CERT"});
    s.put_secure_string(&name, &value.to_string(), &key).await;
    s.apply(&ssm_parameter(
        "nested",
        json!({"parameters": [
            {"name": name, "key": "password", "property": "db.password"},
            {"name": name, "key": "host", "property": "db.hosts.1"},
            {"name": name, "key": "db", "property": "db"},
            {"name": name, "key": "crt", "property": "tls\\.crt"},
        ]}),
    ))
    .await;
    s.wait_for_condition("nested", "Ready", "True", "Synced")
        .await;
    let data = s.secret_data("nested").await;
    assert_eq!(data["password"], "pw");
    assert_eq!(data["host"], "b");
    let db: serde_json::Value = serde_json::from_str(&data["db"]).unwrap();
    assert_eq!(
        db, value["db"],
        "a non-string value is written as JSON text"
    );
    assert_eq!(data["crt"], "CERT");

    s.apply(&ssm_parameter(
        "missing",
        json!({"parameters": [{"name": name, "key": "user", "property": "db.user"}]}),
    ))
    .await;
    let status = s
        .wait_for_condition("missing", "Synced", "False", "InvalidSpec")
        .await;
    assert!(synced_message(&status).contains("\"db.user\""));
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn path_include_and_exclude_pick_names_and_decrypt_only_those() {
    let mut s = Scenario::new("path-pick").await;
    let (key, role) = s.with_operator().await;
    let prefix = format!("/{}/app", s.id);
    for leaf in [
        "db-pass",
        "db-user",
        "db-legacy-pass",
        "api-key",
        "nested/db-deep",
    ] {
        s.put_secure_string(&format!("{prefix}/{leaf}"), leaf, &key)
            .await;
    }
    s.apply(&ssm_parameter(
        "picked",
        json!({"path": {"prefix": prefix, "recursive": true,
                        "include": [format!("{prefix}/db-*"), format!("{prefix}/**/db-deep")],
                        "exclude": [format!("{prefix}/db-legacy-*")]}}),
    ))
    .await;
    let status = s
        .wait_for_condition("picked", "Ready", "True", "Synced")
        .await;
    let data = s.secret_data("picked").await;
    let keys: Vec<&str> = data.keys().map(String::as_str).collect();
    assert_eq!(keys, ["db-deep", "db-pass", "db-user"]);
    assert_eq!(status.parameters.len(), 3);
    assert_eq!(data["db-pass"], "db-pass");
    assert_eq!(
        s.aws_calls("kms:Decrypt", &role).await,
        3,
        "the names left out were never decrypted"
    );
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn extract_makes_a_key_of_every_field_and_follows_the_object_as_it_changes() {
    let mut s = Scenario::new("extract").await;
    let (key, _) = s.with_operator().await;
    let name = format!("{}-db", s.id);
    s.put_secure_string(
        &name,
        &json!({"user": "app", "password": "pw", "port": 5432}).to_string(),
        &key,
    )
    .await;
    s.apply(&ssm_parameter(
        "db",
        json!({"parameters": [{"name": name, "extract": true, "keyPrefix": "db-"}]}),
    ))
    .await;
    s.wait_for_condition("db", "Ready", "True", "Synced").await;
    let data = s.secret_data("db").await;
    let keys: Vec<&str> = data.keys().map(String::as_str).collect();
    assert_eq!(keys, ["db-password", "db-port", "db-user"]);
    assert_eq!(data["db-port"], "5432");

    s.put_secure_string(
        &name,
        &json!({"user": "app", "password": "pw2"}).to_string(),
        &key,
    )
    .await;
    s.force_sync("db").await;
    ssm_operator_testenv::eventually(
        "the Secret follows the object",
        ssm_operator_testenv::DEADLINE,
        || async {
            let data = s.secret_data("db").await;
            (data.get("db-password").map(String::as_str) == Some("pw2")
                && !data.contains_key("db-port"))
            .then_some(())
        },
    )
    .await;
    s.cleanup().await;
}
