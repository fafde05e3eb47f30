//! `GET /-/pkggate/why/<ecosystem>/<name>/<version>`: decision, trace, intelligence,
//! findings, policy revision; scoped npm names in every spelling.

use crate::support::*;
use pkggate::config::{Config, RawInputs};
use pkggate::env;
use pkggate_formats::Ecosystem::Npm;
use serde_json::Value;
use std::sync::Arc;

async fn get(url: &str) -> (u16, Value, Option<String>) {
    let r = reqwest::get(url).await.unwrap();
    let status = r.status().as_u16();
    assert_eq!(r.headers()["cache-control"], "no-store", "{url}");
    let id = r
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_string());
    (status, r.json().await.unwrap(), id)
}

#[tokio::test]
async fn why_explains_plain_and_scoped_names() {
    let m = TempMirror::new();
    m.sync(Npm, osv("npm", "sample.zip").to_str().unwrap())
        .await
        .unwrap();
    let policy = m.dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "denylist: [\"@scope/pkg@1.0.0\"]\nrequire_repository_url: true\n",
    )
    .unwrap();
    let mut raw = RawInputs::default();
    for (k, v) in [
        (env::PORT, "0".to_string()),
        (env::MIRROR_DB, m.db_path().display().to_string()),
        (
            env::OSV_BUNDLE_NPM,
            osv("npm", "sample.zip").display().to_string(),
        ),
        (env::PYPI_ENABLED, "false".into()),
        (env::CARGO_ENABLED, "false".into()),
        // Nothing listens: facts come back unknown, the explanation still answers.
        (env::UPSTREAM_NPM, "http://127.0.0.1:1/".into()),
        (
            env::AUDIT_LOG,
            m.dir.path().join("audit.log").display().to_string(),
        ),
        (env::POLICY_FILE, policy.display().to_string()),
    ] {
        raw.env.insert(k.to_string(), v);
    }
    let running = pkggate::server::start(Arc::new(Config::load(&raw).unwrap()))
        .await
        .unwrap();
    let base = format!("http://{}/-/pkggate/why", running.addr);
    let revision =
        pkggate_policy::Policy::from_yaml(&std::fs::read_to_string(&policy).unwrap(), "p")
            .unwrap()
            .revision()
            .to_string();

    // A malicious version: block_malicious with its advisory, after the rules before it.
    let (status, body, id) = get(&format!("{base}/npm/fsevents/1.2.10")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["action"], "block");
    assert_eq!(body["rule"], "block_malicious");
    assert_eq!(body["source"], "MAL-2023-462");
    assert_eq!(body["intel"]["status"], "available");
    assert_eq!(body["findings"][0]["id"], "MAL-2023-462");
    assert_eq!(body["policy_revision"], revision);
    assert_eq!(body["request_id"].as_str(), id.as_deref());
    let rules: Vec<&str> = body["trace"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules.first(), Some(&"internal_namespace"), "{body}");
    assert_eq!(rules.last(), Some(&"block_malicious"), "{body}");
    assert!(
        rules.contains(&"denylist") && rules.contains(&"allowlist"),
        "{body}"
    );

    // A clean version: every rule consulted; the repository rule saw an unknown fact.
    let (_, body, _) = get(&format!("{base}/npm/fsevents/1.2.11")).await;
    assert_eq!(body["action"], "allow", "{body}");
    assert_eq!(body["facts"]["repository_url"], "unknown");
    let trace = body["trace"].as_array().unwrap();
    assert_eq!(trace.last().unwrap()["rule"], "default");
    assert!(
        trace.iter().any(|s| s["rule"] == "require_repository_url"),
        "{body}"
    );

    // Scoped names: `/`, `%2f` and `%2F` spellings.
    for spelling in ["@scope/pkg", "@scope%2fpkg", "@scope%2Fpkg"] {
        let (status, body, _) = get(&format!("{base}/npm/{spelling}/1.0.0")).await;
        assert_eq!(status, 200, "{spelling}: {body}");
        assert_eq!(body["package"], "@scope/pkg", "{spelling}");
        assert_eq!(body["version"], "1.0.0");
        assert_eq!(body["rule"], "denylist", "{spelling}: {body}");
        assert_eq!(body["reason"], "explicit denylist entry: @scope/pkg@1.0.0");
        assert_eq!(body["trace"][1]["outcome"], "matched", "{body}");
    }
    let (_, body, _) = get(&format!("{base}/npm/@scope/pkg/1.0.1")).await;
    assert_eq!(body["action"], "allow", "{body}");

    // Bad requests.
    let (status, _, _) = get(&format!("{base}/maven/x/1.0")).await;
    assert_eq!(status, 400);
    let (status, _, _) = get(&format!("{base}/npm/lodash")).await;
    assert_eq!(status, 400);
    let (status, body, _) = get(&format!("{base}/pypi/requests/2.0.0")).await;
    assert_eq!(status, 404, "{body}");

    // Explanations are not audited.
    running.stop().await.unwrap();
    let audit = std::fs::read_to_string(m.dir.path().join("audit.log")).unwrap_or_default();
    assert!(audit.is_empty(), "{audit}");
}
