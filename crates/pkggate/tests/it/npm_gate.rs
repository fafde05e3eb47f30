//! The npm adapter against a fake upstream: metadata gate, artifact gate, service endpoints
//! and bad input.

use crate::npm_fake::*;
use crate::support::eventually;
use std::time::Duration;

fn versions_of(doc: &serde_json::Value) -> Vec<String> {
    doc["versions"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

#[tokio::test]
async fn packument_is_filtered_in_both_forms_and_every_spelling() {
    let h = Harness::start(DEFAULT_POLICY, &[("@sc/gamma", &["2.0.0", "3.0.0-beta.1"])]).await;
    h.add(
        "@sc/gamma",
        &[
            Ver::new("1.0.0", NOW - 300 * DAY),
            Ver::new("1.1.0", NOW - 200 * DAY).script("postinstall", "node x.js"),
            Ver::new("10.0.0-rc.1", NOW - 150 * DAY),
            Ver::new("2.0.0", NOW - 100 * DAY),
            Ver::new("3.0.0-beta.1", NOW - 50 * DAY),
        ],
        &[
            ("latest", "2.0.0"),
            ("beta", "3.0.0-beta.1"),
            ("rc", "10.0.0-rc.1"),
        ],
    );
    let mut bodies = Vec::new();
    for spelling in [
        "/@sc%2fgamma",
        "/@sc%2Fgamma",
        "/@sc/gamma",
        "/%40sc%2fgamma",
    ] {
        let (status, hdrs, body) = get(&format!("{}{spelling}", h.base), &[]).await;
        assert_eq!(
            status,
            200,
            "{spelling}: {}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(hdrs["x-pkggate-blocked-versions"], "2");
        assert_eq!(hdrs["content-type"], "application/json");
        assert_eq!(hdrs["vary"], "Accept, Accept-Encoding");
        assert_eq!(hdrs["cache-control"], "public, max-age=300");
        bodies.push(body);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "identical bodies");
    let doc = json_of(&bodies[0]);
    assert_eq!(versions_of(&doc), ["1.0.0", "1.1.0", "10.0.0-rc.1"]);
    // latest retargeted to the highest stable by semver; the beta tag dropped; rc kept.
    assert_eq!(doc["dist-tags"]["latest"], "1.1.0");
    assert!(doc["dist-tags"].get("beta").is_none());
    assert_eq!(doc["dist-tags"]["rc"], "10.0.0-rc.1");
    assert_tags_consistent(&doc);
    // time: removed versions gone, created/modified kept, kept timestamps exact.
    let time = doc["time"].as_object().unwrap();
    assert!(time.get("2.0.0").is_none() && time.get("3.0.0-beta.1").is_none());
    assert_eq!(time["1.0.0"], iso(NOW - 300 * DAY));
    assert!(time.contains_key("created") && time.contains_key("modified"));
    // Unknown fields and readme preserved, tarballs rewritten, integrity untouched.
    assert_eq!(doc["unknownTopLevel"]["kept"], true);
    assert_eq!(doc["readme"], "# synthetic");
    let dist = &doc["versions"]["1.0.0"]["dist"];
    assert_eq!(
        dist["tarball"],
        format!("{}/@sc/gamma/-/gamma-1.0.0.tgz", h.base)
    );
    let upstream_doc = json_of(&h.upstream.docs.lock().unwrap()["@sc/gamma"].0);
    let up_dist = &upstream_doc["versions"]["1.0.0"]["dist"];
    for k in ["integrity", "shasum", "signatures"] {
        assert_eq!(dist[k], up_dist[k], "{k} unchanged");
    }

    // Abbreviated: the client's form, corgi content type, no time/readme, modified present.
    let (status, hdrs, body) = get(&format!("{}/@sc%2Fgamma", h.base), &[("accept", CORGI)]).await;
    assert_eq!(status, 200);
    assert_eq!(hdrs["content-type"], "application/vnd.npm.install-v1+json");
    assert_eq!(hdrs["x-pkggate-blocked-versions"], "2");
    let corgi = json_of(&body);
    assert!(corgi.get("time").is_none() && corgi.get("readme").is_none());
    assert!(corgi["modified"].is_string());
    assert_eq!(corgi["dist-tags"]["latest"], "1.1.0");
    assert_eq!(corgi["versions"]["1.1.0"]["hasInstallScript"], true);
    assert_eq!(
        corgi["versions"]["1.0.0"]["dist"]["tarball"],
        format!("{}/@sc/gamma/-/gamma-1.0.0.tgz", h.base)
    );
    assert_tags_consistent(&corgi);
    assert_ne!(hdrs["etag"], {
        let (_, full_h, _) = get(&format!("{}/@sc/gamma", h.base), &[]).await;
        full_h["etag"].clone()
    });

    // Double encoding is refused, never decoded twice.
    let (status, _, body) = get(&format!("{}/@sc%252fgamma", h.base), &[]).await;
    assert!(status == 400 || status == 404, "{status}");
    assert!(json_of(&body)["error"].is_string());
    h.stop().await;
}

#[tokio::test]
async fn validators_compression_head_and_policy_changes() {
    let h = Harness::start(DEFAULT_POLICY, &[]).await;
    h.add(
        "alpha",
        &[
            Ver::new("1.0.0", NOW - 300 * DAY),
            Ver::new("1.1.0", NOW - 2 * DAY),
        ],
        &[("latest", "1.1.0")],
    );
    let url = format!("{}/alpha", h.base);
    let (status, hdrs, body) = get(&url, &[]).await;
    assert_eq!(status, 200);
    let etag = hdrs["etag"].to_str().unwrap().to_string();
    assert!(etag.starts_with('"'));
    // Same answer again: same strong ETag; If-None-Match → 304 with the ETag.
    let (_, hdrs2, body2) = get(&url, &[]).await;
    assert_eq!(hdrs2["etag"], etag.as_str());
    assert_eq!(body, body2);
    let (status, hdrs3, body3) = get(&url, &[("if-none-match", &etag)]).await;
    assert_eq!(status, 304);
    assert!(body3.is_empty());
    assert_eq!(hdrs3["etag"], etag.as_str());
    assert!(hdrs3["cache-control"].to_str().unwrap().contains("max-age"));

    // gzip only when listed; a different ETag per encoding.
    let (status, gh, gz) = get(&url, &[("accept-encoding", "zstd,gzip,deflate")]).await;
    assert_eq!(status, 200);
    assert_eq!(gh["content-encoding"], "gzip");
    assert_ne!(gh["etag"], etag.as_str());
    let mut plain = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut plain).unwrap();
    assert_eq!(plain, body);
    for ae in ["br", "identity", "zstd", "gzip;q=0"] {
        let (_, hh, _) = get(&url, &[("accept-encoding", ae)]).await;
        assert!(hh.get("content-encoding").is_none(), "{ae}");
    }

    // HEAD: same status and Content-Length, no body.
    let head = client().head(&url).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()["content-length"],
        body.len().to_string().as_str()
    );
    assert!(head.bytes().await.unwrap().is_empty());

    // A policy change that removes 1.1.0 changes the body and the ETag; the old ETag no
    // longer revalidates.
    h.set_policy("min_package_age_days: 7\n");
    let (status, hdrs4, body4) = get(&url, &[("if-none-match", &etag)]).await;
    assert_eq!(status, 200);
    assert_ne!(hdrs4["etag"], etag.as_str());
    let doc = json_of(&body4);
    assert_eq!(versions_of(&doc), ["1.0.0"]);
    assert_eq!(doc["dist-tags"]["latest"], "1.0.0");
    assert_eq!(hdrs4["x-pkggate-blocked-versions"], "1");
    // Back to the first policy: 1.1.0 returns.
    h.set_policy(DEFAULT_POLICY);
    let (_, _, body5) = get(&url, &[]).await;
    assert_eq!(versions_of(&json_of(&body5)), ["1.0.0", "1.1.0"]);
    h.stop().await;
}

#[tokio::test]
async fn version_and_tag_documents_are_filtered() {
    let h = Harness::start(DEFAULT_POLICY, &[("beta-pkg", &["2.0.0"])]).await;
    h.add(
        "beta-pkg",
        &[
            Ver::new("1.0.0", NOW - 9 * DAY),
            Ver::new("2.0.0", NOW - 8 * DAY),
        ],
        &[("latest", "2.0.0")],
    );
    let (status, _, body) = get(&format!("{}/beta-pkg/1.0.0", h.base), &[]).await;
    assert_eq!(status, 200);
    let v = json_of(&body);
    assert_eq!(v["version"], "1.0.0");
    assert_eq!(
        v["dist"]["tarball"],
        format!("{}/beta-pkg/-/beta-pkg-1.0.0.tgz", h.base)
    );
    let (status, _, _) = get(&format!("{}/beta-pkg/2.0.0", h.base), &[]).await;
    assert_eq!(status, 404);
    let (status, _, body) = get(&format!("{}/beta-pkg/latest", h.base), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(json_of(&body)["version"], "1.0.0");
    let (status, _, _) = get(&format!("{}/beta-pkg/nope", h.base), &[]).await;
    assert_eq!(status, 404);
    h.stop().await;
}

#[tokio::test]
async fn every_version_blocked_is_403_with_the_reason() {
    let h = Harness::start(DEFAULT_POLICY, &[("evil", &["1.0.0", "1.0.1"])]).await;
    h.add(
        "evil",
        &[
            Ver::new("1.0.0", NOW - 9 * DAY),
            Ver::new("1.0.1", NOW - 8 * DAY),
        ],
        &[("latest", "1.0.1")],
    );
    for accept in ["application/json", CORGI] {
        let (status, hdrs, body) = get(&format!("{}/evil", h.base), &[("accept", accept)]).await;
        assert_eq!(status, 403);
        assert_eq!(hdrs["cache-control"], "no-store");
        let b = json_of(&body);
        let err = b["error"].as_str().unwrap();
        assert!(
            err.starts_with("blocked_by_pkggate: block_malicious MAL-2026-"),
            "{err}"
        );
        assert_eq!(b["rule"], "block_malicious");
    }
    let (status, _, _) = get(&format!("{}/evil/latest", h.base), &[]).await;
    assert_eq!(status, 403);
    h.stop().await;
}

#[tokio::test]
async fn blocked_tarball_never_reaches_upstream_in_any_spelling() {
    let h = Harness::start(
        DEFAULT_POLICY,
        &[("@sc/evil", &["1.0.0"]), ("x", &["2.0.0-beta-2"])],
    )
    .await;
    h.add(
        "@sc/evil",
        &[Ver::new("1.0.0", NOW - 9 * DAY)],
        &[("latest", "1.0.0")],
    );
    h.add(
        "x",
        &[Ver::new("2.0.0-beta-2", NOW - 9 * DAY)],
        &[("latest", "2.0.0-beta-2")],
    );
    for path in [
        "/@sc/evil/-/evil-1.0.0.tgz",
        "/@sc%2fevil/-/evil-1.0.0.tgz",
        "/@sc%2Fevil/-/evil-1.0.0.tgz",
        "/x/-/x-2.0.0-beta-2.tgz",
    ] {
        for method in [reqwest::Method::GET, reqwest::Method::HEAD] {
            let r = client()
                .request(method.clone(), format!("{}{path}", h.base))
                .header("accept", CORGI)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 403, "{method} {path}");
            assert_eq!(r.headers()["cache-control"], "no-store");
            if method == reqwest::Method::GET {
                let b: serde_json::Value = r.json().await.unwrap();
                assert_eq!(b["rule"], "block_malicious");
                assert!(
                    b["version"] == "1.0.0" || b["version"] == "2.0.0-beta-2",
                    "{b}"
                );
            }
        }
    }
    assert_eq!(h.upstream.total_hits(), 0, "upstream never contacted");
    let events = h.audit.take();
    assert!(events.iter().any(|e| e.action == "block"
        && e.request_kind == "tarball"
        && e.package == "x"
        && e.version == "2.0.0-beta-2"));
    h.stop().await;
}

#[tokio::test]
async fn allowed_tarballs_stream_verified_and_tampered_ones_abort() {
    let h = Harness::start(DEFAULT_POLICY, &[]).await;
    let s = h.add(
        "@sc/good",
        &[
            Ver::new("1.0.0", NOW - 9 * DAY),
            Ver::new("1.0.1", NOW - 8 * DAY).tampered(),
        ],
        &[("latest", "1.0.1")],
    );
    let want = s.tarballs[0].1.clone();
    let series = r#"pkggate_artifact_bytes_total{ecosystem="npm"} "#;
    let sent = || {
        pkggate::metrics::render_registry()
            .lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.parse::<f64>().ok()))
            .unwrap_or(0.0)
    };
    let sent_before = sent();
    for path in ["/@sc/good/-/good-1.0.0.tgz", "/@sc%2fgood/-/good-1.0.0.tgz"] {
        // yarn 1 sends the corgi Accept on tarballs: never a 406.
        let (status, hdrs, body) = get(&format!("{}{path}", h.base), &[("accept", CORGI)]).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(body, want, "identical bytes");
        assert!(hdrs.get("content-encoding").is_none());
    }
    // Bytes sent are counted (the registry is shared by the tests: at least ours).
    assert!(sent() >= sent_before + 2.0 * want.len() as f64);
    let head = client()
        .head(format!("{}/@sc/good/-/good-1.0.0.tgz", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()["content-length"],
        want.len().to_string().as_str()
    );

    // Tampered: the transfer fails, the client never gets the whole body, an audit line says so.
    // (A small body fails before the head is even flushed; a large one mid-body.)
    let r = client()
        .get(format!("{}/@sc/good/-/good-1.0.1.tgz", h.base))
        .send()
        .await;
    if let Ok(r) = r {
        assert_eq!(r.status(), 200);
        assert!(r.bytes().await.is_err(), "the body must not complete");
    }
    let ev = eventually(
        "the integrity audit line",
        Duration::from_secs(10),
        async || {
            h.audit
                .events
                .lock()
                .unwrap()
                .iter()
                .find(|e| e.rule == "integrity_mismatch")
                .cloned()
        },
    )
    .await;
    assert_eq!(ev.action, "block");
    assert_eq!(ev.package, "@sc/good");
    assert_eq!(ev.version, "1.0.1");
    h.stop().await;
}

#[tokio::test]
async fn tarballs_without_a_digest_follow_unknown_file_hash() {
    for (policy, status, action) in [
        ("{}", 200, "allow"),
        ("unknown_file_hash: block", 403, "block"),
    ] {
        let h = Harness::start(policy, &[]).await;
        let s = h.add(
            "nodigest",
            &[Ver::new("1.0.0", NOW - 9 * DAY).no_digest()],
            &[("latest", "1.0.0")],
        );
        let (got, _, body) = get(&format!("{}/nodigest/-/nodigest-1.0.0.tgz", h.base), &[]).await;
        assert_eq!(got, status, "{policy}");
        if status == 200 {
            assert_eq!(body, s.tarballs[0].1);
        } else {
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert!(
                v["error"].as_str().unwrap().contains("integrity_unknown"),
                "{v}"
            );
        }
        let ev = eventually(
            "the integrity_unknown line",
            Duration::from_secs(10),
            async || {
                h.audit
                    .events
                    .lock()
                    .unwrap()
                    .iter()
                    .find(|e| e.rule == "integrity_unknown")
                    .cloned()
            },
        )
        .await;
        assert_eq!((ev.action.as_str(), ev.version.as_str()), (action, "1.0.0"));
        h.stop().await;
    }
}

#[tokio::test]
async fn lockfile_tarball_without_packument_is_decided_with_the_age_rule() {
    let h = Harness::start("min_package_age_days: 7\n", &[]).await;
    let s = h.add(
        "young",
        &[
            Ver::new("1.0.0", NOW - 30 * DAY),
            Ver::new("1.1.0", NOW - 2 * DAY),
        ],
        &[("latest", "1.1.0")],
    );
    let (status, hdrs, body) = get(&format!("{}/young/-/young-1.1.0.tgz", h.base), &[]).await;
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    assert_eq!(hdrs["cache-control"], "no-store");
    let b = json_of(&body);
    assert_eq!(b["rule"], "min_package_age_days");
    assert_eq!(b["reason"], "version published 2d ago, minimum is 7d");
    assert_eq!(h.upstream.tarball_hits(), 0);
    assert_eq!(
        h.upstream.hits("/young"),
        1,
        "the document was fetched once"
    );
    let (status, _, body) = get(&format!("{}/young/-/young-1.0.0.tgz", h.base), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(body, s.tarballs[0].1);
    assert_eq!(h.upstream.hits("/young"), 1, "facts came from the cache");
    // The abbreviated document a pnpm/yarn/bun client asks for is decided with the full
    // document's facts.
    let (status, _, body) = get(&format!("{}/young", h.base), &[("accept", CORGI)]).await;
    assert_eq!(status, 200);
    let corgi = json_of(&body);
    assert_eq!(versions_of(&corgi), ["1.0.0"]);
    assert_eq!(corgi["dist-tags"]["latest"], "1.0.0");
    h.stop().await;
}

#[tokio::test]
async fn install_script_rule_on_full_abbreviated_and_mirror_upstreams() {
    let (up, up_base) = FakeNpm::start().await;
    let h = Harness::start_with(up, up_base, "deny_lifecycle_scripts: true\n", &[], &[]).await;
    h.add(
        "scripted",
        &[
            Ver::new("1.0.0", NOW - 30 * DAY),
            Ver::new("1.1.0", NOW - 20 * DAY).script("postinstall", "node evil.js"),
            Ver::new("1.2.0", NOW - 10 * DAY).script("test", "jest"),
        ],
        &[("latest", "1.1.0")],
    );
    for accept in ["application/json", CORGI] {
        let (status, _, body) = get(&format!("{}/scripted", h.base), &[("accept", accept)]).await;
        assert_eq!(status, 200);
        let doc = json_of(&body);
        assert_eq!(versions_of(&doc), ["1.0.0", "1.2.0"], "{accept}");
        assert_eq!(doc["dist-tags"]["latest"], "1.2.0");
    }
    let (status, _, body) = get(&format!("{}/scripted/-/scripted-1.1.0.tgz", h.base), &[]).await;
    assert_eq!(status, 403);
    assert_eq!(
        json_of(&body)["reason"],
        "declares lifecycle scripts: ['postinstall']"
    );
    // A mirror that ignores the abbreviated Accept and sends no ETag: corgi derived here,
    // with hasInstallScript.
    h.set_policy(DEFAULT_POLICY);
    h.upstream
        .mirror
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let (status, hdrs, body) = get(&format!("{}/scripted", h.base), &[("accept", CORGI)]).await;
    assert_eq!(status, 200);
    assert_eq!(hdrs["content-type"], "application/vnd.npm.install-v1+json");
    let corgi = json_of(&body);
    assert!(corgi.get("time").is_none() && corgi.get("readme").is_none());
    assert_eq!(corgi["versions"]["1.1.0"]["hasInstallScript"], true);
    assert!(corgi["versions"]["1.2.0"].get("hasInstallScript").is_none());
    assert_eq!(corgi["modified"], iso(NOW - 10 * DAY));
    // Stable ETag without an upstream ETag (content hash).
    let (_, hdrs2, _) = get(&format!("{}/scripted", h.base), &[("accept", CORGI)]).await;
    assert_eq!(hdrs["etag"], hdrs2["etag"]);
    h.stop().await;
}

#[tokio::test]
async fn upstream_errors_and_bad_documents() {
    let (up, up_base) = FakeNpm::start().await;
    let h = Harness::start_with(
        up,
        up_base,
        DEFAULT_POLICY,
        &[],
        &[(pkggate::env::MAX_DOCUMENT_BYTES, "200000")],
    )
    .await;
    h.upstream
        .add_raw("broken", b"{\"name\":\"broken\",\"versions\":{".to_vec());
    h.upstream.add_raw("notjson", b"<html>oops</html>".to_vec());
    h.upstream.add_raw(
        "empty",
        br#"{"name":"empty","dist-tags":{},"versions":{},"time":{}}"#.to_vec(),
    );
    h.upstream.add_raw("liar", br#"{"name":"other","dist-tags":{"latest":"1.0.0"},"versions":{"1.0.0":{"name":"other","version":"1.0.0"}}}"#.to_vec());
    let big = format!(
        r#"{{"name":"huge","versions":{{"1.0.0":{{"name":"huge","version":"1.0.0","readme":"{}"}}}}}}"#,
        "x".repeat(300_000)
    );
    h.upstream.add_raw("huge", big.into_bytes());
    for name in ["broken", "notjson", "liar", "huge"] {
        let (status, hdrs, body) = get(&format!("{}/{name}", h.base), &[]).await;
        assert_eq!(status, 502, "{name}");
        assert_eq!(hdrs["cache-control"], "no-store");
        let err = json_of(&body)["error"].as_str().unwrap().to_string();
        assert!(err.starts_with("upstream_error:"), "{name}: {err}");
    }
    for name in ["missing-pkg", "empty"] {
        let (status, hdrs, body) = get(&format!("{}/{name}", h.base), &[]).await;
        assert_eq!(status, 404, "{name}");
        assert_eq!(hdrs["cache-control"], "no-store");
        assert_eq!(json_of(&body), serde_json::json!({"error": "Not found"}));
    }
    // Hostile paths: 400 (or 404), JSON, and nothing reaches upstream.
    let before = h.upstream.total_hits();
    for path in [
        "/..%2f..%2fetc%2fpasswd",
        "/%2e%2e/x",
        "/a/%2e%2e/-/x.tgz",
        "/x/-/y-1.0.0.tgz",
        "/@s%252fn",
        "/a%5cb",
        "//x",
    ] {
        // Raw request lines: an HTTP client library would normalise `%2e%2e` itself.
        let (status, body) = raw_get(&h.base, path).await;
        assert!(status == 400 || status == 404, "{path}: {status}");
        assert!(json_of(&body)["error"].is_string(), "{path}");
    }
    assert_eq!(h.upstream.total_hits(), before);
    // An unreachable upstream: 502 JSON.
    let dead = Harness::start_with(
        FakeNpm::default(),
        "http://127.0.0.1:1".into(),
        DEFAULT_POLICY,
        &[],
        &[],
    )
    .await;
    let (status, hdrs, _) = get(&format!("{}/anything", dead.base), &[]).await;
    assert_eq!(status, 502);
    assert_eq!(hdrs["retry-after"], "10");
    dead.stop().await;
    h.stop().await;
}

#[tokio::test]
async fn ten_thousand_versions_and_odd_versions() {
    let h = Harness::start(DEFAULT_POLICY, &[("many", &["0.0.9999", "0.0.5000"])]).await;
    let mut versions = serde_json::Map::new();
    let mut time = serde_json::Map::new();
    for i in 0..10_000 {
        let v = format!("0.0.{i}");
        versions.insert(
            v.clone(),
            serde_json::json!({"name": "many", "version": v, "dist": {"tarball": format!("{}/many/-/many-{v}.tgz", h.upstream_base), "shasum": "00"}}),
        );
        time.insert(v, serde_json::json!(iso(NOW - 100 * DAY)));
    }
    // Legacy non-semver and escaped keys.
    versions.insert(
        "\u{e9}-1.0".into(),
        serde_json::json!({"name": "many", "version": "\u{e9}-1.0"}),
    );
    versions.insert(
        "v2-legacy".into(),
        serde_json::json!({"name": "many", "version": "v2-legacy"}),
    );
    let doc = serde_json::json!({"name": "many", "dist-tags": {"latest": "0.0.9999"}, "versions": versions, "time": time});
    h.upstream
        .add_raw("many", serde_json::to_vec(&doc).unwrap());
    let started = std::time::Instant::now();
    let (status, hdrs, body) = get(&format!("{}/many", h.base), &[]).await;
    assert_eq!(status, 200);
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(hdrs["x-pkggate-blocked-versions"], "2");
    let out = json_of(&body);
    assert_eq!(out["versions"].as_object().unwrap().len(), 10_000);
    assert_eq!(out["dist-tags"]["latest"], "0.0.9998");
    assert!(out["versions"].get("\u{e9}-1.0").is_some());
    assert_tags_consistent(&out);
    let (status, _, body) = get(&format!("{}/many", h.base), &[("accept", CORGI)]).await;
    assert_eq!(status, 200);
    assert_eq!(
        json_of(&body)["versions"].as_object().unwrap().len(),
        10_000
    );
    h.stop().await;
}

#[tokio::test]
async fn service_endpoints_writes_and_credentials() {
    let h = Harness::start(DEFAULT_POLICY, &[]).await;
    h.add(
        "alpha",
        &[Ver::new("1.0.0", NOW - 9 * DAY)],
        &[("latest", "1.0.0")],
    );
    let c = client();
    let r = c.get(format!("{}/-/ping", h.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({})
    );
    let r = c.get(format!("{}/-/whoami", h.base)).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .get(format!("{}/-/v1/search?text=x&size=20", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["total"], 1);
    // Writes are refused locally.
    for (m, p) in [
        ("PUT", "/alpha"),
        ("DELETE", "/alpha/-rev/1-abc"),
        ("PUT", "/-/package/alpha/dist-tags/beta"),
        ("PUT", "/-/user/org.couchdb.user:bob"),
        ("POST", "/-/v1/login"),
        ("POST", "/alpha"),
    ] {
        let r = c
            .request(m.parse().unwrap(), format!("{}{p}", h.base))
            .header("authorization", "Bearer secret-token")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405, "{m} {p}");
        assert_eq!(r.headers()["cache-control"], "no-store");
        let b: serde_json::Value = r.json().await.unwrap();
        assert!(b["error"].as_str().unwrap().contains("refused"), "{b}");
    }
    // Audit: gzip body forwarded as sent, with its Content-Encoding.
    let raw = br#"{"alpha":["1.0.0"]}"#;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut enc, raw).unwrap();
    let gz = enc.finish().unwrap();
    let r = c
        .post(format!("{}/-/npm/v1/security/advisories/bulk", h.base))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .header("authorization", "Bearer secret-token")
        .body(gz.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.json::<serde_json::Value>().await.unwrap()["fake-audited"].is_array());
    {
        let bodies = h.upstream.audit_bodies.lock().unwrap();
        let (hh, b) = bodies.last().unwrap();
        assert_eq!(b, &gz);
        assert_eq!(hh["content-encoding"], "gzip");
    }
    // Upstream refuses (410): an empty report, never a failed install.
    *h.upstream.audit_status.lock().unwrap() = 410;
    for p in [
        "/-/npm/v1/security/audits",
        "/-/npm/v1/security/audits/quick",
        "/-/npm/v1/security/advisories/bulk",
    ] {
        let r = c
            .post(format!("{}{p}", h.base))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{p}");
        assert_eq!(
            r.json::<serde_json::Value>().await.unwrap(),
            serde_json::json!({})
        );
    }
    // Credentials never reach upstream.
    for p in ["/alpha", "/alpha/-/alpha-1.0.0.tgz"] {
        let r = c
            .get(format!("{}{p}", h.base))
            .header("authorization", "Bearer secret-token")
            .header("cookie", "session=1")
            .header("npm-otp", "123456")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{p}");
    }
    let log = h.upstream.log.lock().unwrap().clone();
    assert!(!log.is_empty());
    for (_, path, hh) in log.iter() {
        for k in ["authorization", "cookie", "npm-otp"] {
            assert!(hh.get(k).is_none(), "{k} forwarded on {path}");
        }
    }
    h.stop().await;
}

#[tokio::test]
async fn concurrent_requests_for_an_uncached_document_make_one_upstream_fetch() {
    let h = Harness::start(DEFAULT_POLICY, &[]).await;
    h.upstream.add_raw("next", fixture("next"));
    h.upstream
        .holding
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let url = format!("{}/next", h.base);
        tasks.push(tokio::spawn(async move {
            let r = client().get(url).send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.bytes().await.unwrap().len())
        }));
    }
    // Release the upstream once the first request is waiting there.
    eventually(
        "pkggate to ask upstream",
        Duration::from_secs(30),
        async || (h.upstream.hits("/next") >= 1).then_some(()),
    )
    .await;
    h.upstream.hold.0.add_permits(1000);
    let mut sizes = Vec::new();
    for t in tasks {
        let (status, len) = t.await.unwrap();
        assert_eq!(status, 200);
        sizes.push(len);
    }
    assert!(sizes.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(h.upstream.hits("/next"), 1, "single-flight");
    // One decision, but every request has its audit lines, under its own request id.
    let ids: std::collections::HashSet<String> = eventually(
        "a summary line per request",
        Duration::from_secs(10),
        async || {
            let ids: std::collections::HashSet<String> = h
                .audit
                .events
                .lock()
                .unwrap()
                .iter()
                .filter(|e| e.package == "next" && e.rule == "summary")
                .map(|e| e.request_id.clone())
                .collect();
            (ids.len() >= 100).then_some(ids)
        },
    )
    .await;
    assert_eq!(ids.len(), 100);
    h.stop().await;
}

#[tokio::test]
async fn recorded_documents_pass_through_intact() {
    let h = Harness::start(DEFAULT_POLICY, &[("express", &["4.17.1"])]).await;
    let raw = fixture("express");
    h.upstream.add_raw("express", raw.clone());
    let up: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    let (status, hdrs, body) = get(&format!("{}/express", h.base), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(hdrs["x-pkggate-blocked-versions"], "1");
    let doc = json_of(&body);
    assert_eq!(
        doc["versions"].as_object().unwrap().len() + 1,
        up["versions"].as_object().unwrap().len()
    );
    assert!(doc["versions"].get("4.17.1").is_none());
    assert_eq!(doc["dist-tags"]["latest"], up["dist-tags"]["latest"]);
    assert_tags_consistent(&doc);
    let (status, _, body) = get(&format!("{}/express", h.base), &[("accept", CORGI)]).await;
    assert_eq!(status, 200);
    assert_tags_consistent(&json_of(&body));
    h.stop().await;
}
