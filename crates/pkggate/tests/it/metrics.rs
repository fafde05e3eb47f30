//! `/metrics`: Prometheus names, counters moved by real traffic, state gauges, and the admin
//! guard (loopback only without a token; a bearer token when one is configured).

use crate::cargo_gate::{cargo_env, cargo_env_with};

const OLD: &str = "2020-01-01T00:00:00Z";

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn metrics_follow_traffic_and_state() {
    let e = cargo_env("block_malicious: true\n", &[("metricscrate", "0.2.0")]).await;
    e.fake.publish("metricscrate", "0.1.0", OLD, false);
    e.fake.publish("metricscrate", "0.2.0", OLD, false);
    let client = reqwest::Client::new();
    let scrape = async || {
        let r = client
            .get(format!("{}/metrics", e.base()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/openmetrics-text")
        );
        r.text().await.unwrap()
    };
    let index = r#"pkggate_requests_total{ecosystem="crates.io",kind="index",status="200"}"#;
    let blocks =
        r#"pkggate_decisions_total{ecosystem="crates.io",rule="block_malicious",action="block"}"#;
    let before = scrape().await;
    let (i0, b0) = (
        value(&before, index).unwrap_or(0.0),
        value(&before, blocks).unwrap_or(0.0),
    );
    for _ in 0..3 {
        assert_eq!(
            client
                .get(format!("{}/cargo/me/tr/metricscrate", e.base()))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    let after = scrape().await;
    // Other tests in this process share the registry: counters only grow, by at least ours.
    assert!(value(&after, index).unwrap() >= i0 + 3.0, "{after}");
    assert!(value(&after, blocks).unwrap() >= b0 + 3.0, "{after}");
    for name in [
        "pkggate_request_duration_seconds_bucket",
        "pkggate_upstream_request_duration_seconds_bucket",
        "pkggate_requests_in_flight",
        r#"pkggate_intel_loaded{ecosystem="crates.io"} 1"#,
        "pkggate_intel_records{ecosystem=\"crates.io\"}",
        "pkggate_intel_age_seconds{ecosystem=\"crates.io\"}",
        "pkggate_policy_reload_failures",
        "pkggate_policy_info{revision=",
        "pkggate_audit_queue_depth",
        "pkggate_audit_write_errors",
        r#"pkggate_cache_lookups_total{cache="intel",result="hit"}"#,
        r#"pkggate_cache_lookups_total{cache="intel",result="miss"}"#,
        "# EOF",
    ] {
        assert!(after.contains(name), "missing {name} in:\n{after}");
    }
}

#[tokio::test]
async fn admin_endpoints_need_the_token_when_one_is_set() {
    let e = cargo_env_with("{}\n", &[], &[("PKGGATE_ADMIN_TOKEN", "s3cret")]).await;
    let client = reqwest::Client::new();
    for path in ["/metrics", "/-/pkggate/why/npm/left-pad/1.0.0"] {
        let url = format!("{}{path}", e.base());
        assert_eq!(
            client.get(&url).send().await.unwrap().status(),
            403,
            "{path} without a token"
        );
        assert_eq!(
            client
                .get(&url)
                .bearer_auth("wrong")
                .send()
                .await
                .unwrap()
                .status(),
            403,
            "{path} with a wrong token"
        );
        let ok = client
            .get(&url)
            .bearer_auth("s3cret")
            .send()
            .await
            .unwrap()
            .status();
        assert_ne!(ok, 403, "{path} with the token");
    }
    // Registry traffic never needs the token.
    assert_eq!(
        client
            .get(format!("{}/-/pkggate/health", e.base()))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Without a token, loopback clients are served.
    let open = cargo_env("{}\n", &[]).await;
    assert_eq!(
        client
            .get(format!("{}/metrics", open.base()))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}
