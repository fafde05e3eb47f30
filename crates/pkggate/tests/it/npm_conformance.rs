//! The npm conformance cases of the protocol notes (§5: cases 1–27, and 51–55 as they apply
//! to npm) that `npm_gate`, `npm_probe`, `compat` and the unit tests do not pin already,
//! driven over HTTP as a client would, against the fake upstream of `npm_fake.rs` or the
//! scripted one of `raw_http.rs`. Each test names its cases; where the notes allow several
//! answers, each is accepted.

use crate::npm_fake::*;
use crate::raw_http::*;
use crate::support::eventually;
use bytes::Bytes;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

fn no_follow() -> reqwest::Client {
    reqwest::Client::builder()
        .no_gzip()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Any method, redirects not followed: status, headers, body.
async fn send(method: &str, url: &str, hdrs: &[(&str, &str)]) -> (u16, HeaderMap, Vec<u8>) {
    let mut r = no_follow().request(method.parse().unwrap(), url);
    for (k, v) in hdrs {
        r = r.header(*k, *v);
    }
    let resp = r
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e:?}"));
    let status = resp.status().as_u16();
    let h = resp.headers().clone();
    let body = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
    (status, h, body)
}

fn hdr(h: &HeaderMap, k: &str) -> String {
    h.get(k)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

fn keys(v: &Value) -> Vec<String> {
    v.as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// `name@1.0.0`, published 30 days ago, tagged `latest`.
fn old(h: &Harness, name: &str) -> Synthetic {
    h.add(
        name,
        &[Ver::new("1.0.0", NOW - 30 * DAY)],
        &[("latest", "1.0.0")],
    )
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

fn gunzip(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(b)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// Cases 7 and 8 (and the formats of §4): publish times in every format the registries use
/// are read (a 7-day minimum age removes exactly the young versions); kept versions keep
/// their upstream strings byte for byte, removed ones leave `time`, `created`/`modified` are
/// unchanged; an abbreviated document's `modified` is upstream's, derived or passed through.
#[tokio::test]
async fn case07_08_times_are_read_in_every_format_and_kept_exactly() {
    let h = Harness::start("min_package_age_days: 7\n", &[]).await;
    // (version, upstream time, kept at NOW = 2026-06-01T00:00:00Z)
    let rows: &[(&str, &str, bool)] = &[
        ("1.0.0", "2015-03-24T00:12:24.039Z", true),
        ("1.1.0", "2026-01-30T16:14:51.287000+00:00", true),
        ("1.2.0", "2026-02-01T00:00:00Z", true),
        ("1.3.0", "2026-03-01T01:00:00.1+01:00", true),
        ("1.4.0", "2026-05-24T23:59:59Z", true),
        ("2.0.0", "2026-05-30T00:00:00.000Z", false),
        ("2.1.0", "2026-05-30T12:00:00.123456+00:00", false),
        ("2.2.0", "2026-05-31T00:00:00Z", false),
        ("2.3.0", "2026-05-31T02:00:00+02:00", false),
        ("2.4.0", "2026-05-26T00:00:00.123456789Z", false),
    ];
    let (created, modified) = (
        "2015-03-24T00:12:24.039Z",
        "2026-05-31T10:11:12.131400+00:00",
    );
    let mut versions = serde_json::Map::new();
    let mut time = serde_json::Map::new();
    time.insert("created".into(), json!(created));
    time.insert("modified".into(), json!(modified));
    for (v, t, _) in rows {
        let tarball = format!("{}/timed/-/timed-{v}.tgz", h.upstream_base);
        versions.insert(
            v.to_string(),
            json!({"name": "timed", "version": v, "dist": {"tarball": tarball}}),
        );
        time.insert(v.to_string(), json!(t));
    }
    let doc = json!({"name": "timed", "dist-tags": {"latest": "2.4.0"}, "versions": versions, "time": time});
    h.upstream
        .add_raw("timed", serde_json::to_vec(&doc).unwrap());
    let mut kept: Vec<String> = rows
        .iter()
        .filter(|r| r.2)
        .map(|r| r.0.to_string())
        .collect();
    kept.sort();
    for accept in ["application/json", CORGI] {
        let (status, _, body) = get(&format!("{}/timed", h.base), &[("accept", accept)]).await;
        assert_eq!(status, 200, "{accept}");
        let out = json_of(&body);
        let mut got = keys(&out["versions"]);
        got.sort();
        assert_eq!(got, kept, "{accept}");
        assert_eq!(out["dist-tags"]["latest"], "1.4.0", "{accept}");
        if accept == CORGI {
            assert_eq!(
                out["modified"], modified,
                "derived corgi: upstream's modified"
            );
            assert!(out.get("time").is_none());
            continue;
        }
        let t = &out["time"];
        assert_eq!(
            (&t["created"], &t["modified"]),
            (&json!(created), &json!(modified))
        );
        for (v, want, keep) in rows {
            if *keep {
                assert_eq!(t[*v], *want, "time of {v} changed");
            } else {
                assert!(t.get(*v).is_none(), "time of removed {v} kept");
            }
        }
    }

    // An abbreviated document passed through from upstream keeps upstream's `modified` even
    // when the version that set it is removed.
    let p = Harness::start(DEFAULT_POLICY, &[("passed", &["2.0.0"])]).await;
    let s = p.add(
        "passed",
        &[
            Ver::new("1.0.0", NOW - 30 * DAY),
            Ver::new("2.0.0", NOW - 3 * DAY),
        ],
        &[("latest", "2.0.0")],
    );
    let (status, hh, body) = get(&format!("{}/passed", p.base), &[("accept", CORGI)]).await;
    assert_eq!(status, 200);
    assert_eq!(hdr(&hh, "x-pkggate-blocked-versions"), "1");
    assert_eq!(json_of(&body)["modified"], json_of(&s.corgi)["modified"]);
    p.stop().await;
    h.stop().await;
}

/// Case 9: in both forms, from a full or an abbreviated upstream, every kept version's
/// `dist.tarball` points at pkggate and every other `dist` member (integrity, shasum,
/// signatures, attestations, npm-signature, counts) is upstream's exactly; also in
/// `/<name>/<version>`.
#[tokio::test]
async fn case09_dist_members_other_than_tarball_are_upstreams() {
    let h = Harness::start(DEFAULT_POLICY, &[("@sc/signed", &["2.0.0"])]).await;
    let up = h.upstream_base.clone();
    let dist = |v: &str| {
        json!({
            "tarball": format!("{up}/@sc/signed/-/signed-{v}.tgz"),
            "integrity": format!("sha512-{v}+/AAAA=="),
            "shasum": "0123456789abcdef0123456789abcdef01234567",
            "fileCount": 3, "unpackedSize": 1234,
            "signatures": [{"keyid": "SHA256:k", "sig": format!("MEUC{v}/+=")}],
            "attestations": {"url": format!("{up}/-/npm/v1/attestations/@sc%2fsigned@{v}"),
                             "provenance": {"predicateType": "https://slsa.dev/provenance/v1"}},
            "npm-signature": "-----BEGIN PGP SIGNATURE-----\nx\n-----END PGP SIGNATURE-----",
        })
    };
    let versions = |extra: Value| -> serde_json::Map<String, Value> {
        ["1.0.0", "1.1.0", "2.0.0"]
            .iter()
            .map(|v| {
                let mut m = json!({"name": "@sc/signed", "version": v, "dist": dist(v)});
                m.as_object_mut()
                    .unwrap()
                    .extend(extra.as_object().unwrap().clone());
                (v.to_string(), m)
            })
            .collect()
    };
    let full = json!({"name": "@sc/signed", "dist-tags": {"latest": "2.0.0"},
                      "versions": versions(json!({"readme": "r"})), "time": {"modified": iso(NOW - 9 * DAY)}});
    let corgi = json!({"name": "@sc/signed", "dist-tags": {"latest": "2.0.0"},
                       "versions": versions(json!({})), "modified": iso(NOW - 9 * DAY)});
    h.upstream.docs.lock().unwrap().insert(
        "@sc/signed".into(),
        (
            Bytes::from(serde_json::to_vec(&full).unwrap()),
            Some(Bytes::from(serde_json::to_vec(&corgi).unwrap())),
        ),
    );
    let check = |what: &str, v: &str, served: &Value| {
        let mut want = dist(v);
        want["tarball"] = json!(format!("{}/@sc/signed/-/signed-{v}.tgz", h.base));
        assert_eq!(served, &want, "{what}: dist of {v}");
    };
    for mirror in [false, true] {
        h.upstream.mirror.store(mirror, Ordering::SeqCst);
        for accept in ["application/json", CORGI] {
            let what = format!("mirror={mirror} {accept}");
            let (status, _, body) =
                get(&format!("{}/@sc%2fsigned", h.base), &[("accept", accept)]).await;
            assert_eq!(status, 200, "{what}");
            let doc = json_of(&body);
            assert_eq!(keys(&doc["versions"]), ["1.0.0", "1.1.0"], "{what}");
            for (v, m) in doc["versions"].as_object().unwrap() {
                check(&what, v, &m["dist"]);
            }
        }
    }
    let (status, _, body) = get(&format!("{}/@sc/signed/1.1.0", h.base), &[]).await;
    assert_eq!(status, 200);
    check("version document", "1.1.0", &json_of(&body)["dist"]);
    h.stop().await;
}

/// Cases 4, 5, 12 and 26: after filtering, in both forms, `latest` goes to the highest kept
/// stable version by loose semver (else the highest prerelease; invalid versions never win),
/// other tags of removed versions are dropped or retargeted within their channel, no tag
/// points at a missing version, and `/<name>/<tag>` resolves exactly as the document says
/// (404 for a dropped tag or a removed version).
#[tokio::test]
async fn case04_05_12_26_dist_tags_after_filtering() {
    type Row = (
        &'static str,
        &'static [&'static str],
        &'static [(&'static str, &'static str)],
        &'static [(&'static str, &'static [&'static str])],
    );
    // (name, versions, upstream tags, tag → allowed targets, "" = may be absent)
    let rows: &[Row] = &[
        (
            "tags-a",
            &["1.0.0", "1.1.0", "2.0.0-rc.1", "2.0.0"],
            &[
                ("latest", "2.0.0"),
                ("next", "2.0.0-rc.1"),
                ("stable", "2.0.0"),
            ],
            &[
                ("latest", &["1.1.0"]),
                ("next", &["2.0.0-rc.1"]),
                ("stable", &["", "1.1.0"]),
            ],
        ),
        (
            "tags-b",
            &["1.0.0", "2.0.0-beta.1", "2.0.0-beta.2"],
            &[("latest", "1.0.0"), ("beta", "2.0.0-beta.2")],
            &[
                ("latest", &["2.0.0-beta.1"]),
                ("beta", &["", "2.0.0-beta.1"]),
            ],
        ),
        (
            "tags-loose",
            &["1.5.0", "v2.0.0", "3.0.0"],
            &[("latest", "3.0.0")],
            &[("latest", &["v2.0.0"])],
        ),
        (
            "tags-legacy",
            &["0.9.0", "banana", "1.0.0"],
            &[("latest", "1.0.0")],
            &[("latest", &["0.9.0"])],
        ),
    ];
    let mal: &[(&str, &[&str])] = &[
        ("tags-a", &["2.0.0"]),
        ("tags-b", &["1.0.0", "2.0.0-beta.2"]),
        ("tags-loose", &["3.0.0"]),
        ("tags-legacy", &["1.0.0"]),
    ];
    let h = Harness::start(DEFAULT_POLICY, mal).await;
    let mut problems = Vec::new();
    for (name, versions, tags, want) in rows {
        let vers: Vec<Ver> = versions
            .iter()
            .map(|v| Ver::new(v, NOW - 30 * DAY))
            .collect();
        h.add(name, &vers, tags);
        let removed = mal.iter().find(|m| m.0 == *name).unwrap().1;
        for accept in ["application/json", CORGI] {
            let (status, _, body) = get(&format!("{}/{name}", h.base), &[("accept", accept)]).await;
            assert_eq!(status, 200, "{name} {accept}");
            let doc = json_of(&body);
            assert_tags_consistent(&doc);
            let served = doc["dist-tags"].as_object().unwrap().clone();
            for (tag, allowed) in *want {
                let got = served.get(*tag).and_then(Value::as_str).unwrap_or("");
                if !allowed.contains(&got) {
                    problems.push(format!(
                        "{name} {accept}: {tag} -> {got:?}, want {allowed:?}"
                    ));
                }
            }
            for tag in served.keys() {
                if !want.iter().any(|w| w.0 == tag.as_str()) {
                    problems.push(format!("{name} {accept}: unexpected tag {tag}"));
                }
            }
            if accept == CORGI {
                continue;
            }
            for (tag, _) in *tags {
                let (status, _, body) = get(&format!("{}/{name}/{tag}", h.base), &[]).await;
                match served.get(*tag) {
                    Some(target) if status != 200 || json_of(&body)["version"] != *target => {
                        problems.push(format!("/{name}/{tag}: {status}, want {target}"))
                    }
                    None if status != 404 => {
                        problems.push(format!("/{name}/{tag}: {status} for a dropped tag"))
                    }
                    _ => {}
                }
            }
            for v in removed {
                let (status, _, _) = get(&format!("{}/{name}/{v}", h.base), &[]).await;
                if status != 404 {
                    problems.push(format!("/{name}/{v}: {status} for a removed version"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    h.stop().await;
}

/// Cases 14, 54 and 1: each variant (full or abbreviated, identity or gzip) varies on
/// `Accept` and has its own strong ETag; `If-None-Match` with it is a 304 carrying it, with
/// another variant's it is a 200; a policy change makes every old ETag fail to revalidate
/// (pnpm's cached-abbreviated-doc bypass) and changes `/<name>/<version>` too.
#[tokio::test]
async fn case14_54_validators_per_variant_and_policy_changes() {
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
    let variants: Vec<Vec<(&str, &str)>> = vec![
        vec![],
        vec![("accept", CORGI)],
        vec![("accept-encoding", "gzip")],
        vec![("accept", CORGI), ("accept-encoding", "gzip, deflate")],
    ];
    let mut etags = Vec::new();
    for v in &variants {
        let (status, hh, _) = get(&url, v).await;
        assert_eq!(status, 200, "{v:?}");
        let vary = hdr(&hh, "vary").to_ascii_lowercase();
        assert!(
            vary.split(',').any(|x| x.trim() == "accept"),
            "{v:?}: Vary {vary:?}"
        );
        let e = hdr(&hh, "etag");
        assert!(
            e.starts_with('"') && e.ends_with('"'),
            "{v:?}: strong ETag {e:?}"
        );
        etags.push(e);
    }
    let mut distinct = etags.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), variants.len(), "{etags:?}");
    for (i, v) in variants.iter().enumerate() {
        for (j, e) in etags.iter().enumerate() {
            let listed = format!("\"other\", {e}");
            let mut hh = v.clone();
            hh.push(("if-none-match", &listed));
            let (status, rh, body) = get(&url, &hh).await;
            if i == j {
                assert_eq!(status, 304, "{v:?} with its own ETag");
                assert_eq!(hdr(&rh, "etag"), *e);
                assert!(body.is_empty());
                assert!(!hdr(&rh, "cache-control").is_empty());
            } else {
                assert_eq!(status, 200, "{v:?} with the ETag of {:?}", variants[j]);
            }
        }
    }
    let vurl = format!("{url}/1.1.0");
    let (status, vh, _) = get(&vurl, &[]).await;
    assert_eq!(status, 200);
    let vetag = hdr(&vh, "etag");
    let (status, _, _) = get(&vurl, &[("if-none-match", &vetag)]).await;
    assert_eq!(status, 304);

    h.set_policy("min_package_age_days: 7\n");
    for (v, old) in variants.iter().zip(&etags) {
        let mut hh = v.clone();
        hh.push(("if-none-match", old));
        let (status, rh, body) = get(&url, &hh).await;
        assert_eq!(status, 200, "{v:?}: the old ETag still revalidates");
        assert_ne!(hdr(&rh, "etag"), *old, "{v:?}");
        let body = if hdr(&rh, "content-encoding") == "gzip" {
            gunzip(&body)
        } else {
            body
        };
        assert_eq!(keys(&json_of(&body)["versions"]), ["1.0.0"], "{v:?}");
    }
    let (status, _, _) = get(&vurl, &[("if-none-match", &vetag)]).await;
    assert_eq!(status, 404, "/alpha/1.1.0 after the policy removed it");
    h.stop().await;
}

/// Cases 13 and 3: HEAD answers like GET (status and `Content-Length`, no body) for every
/// document form and encoding, version documents, tarballs in each scope spelling, blocked
/// and missing packages.
#[tokio::test]
async fn case13_head_answers_like_get() {
    let h = Harness::start(DEFAULT_POLICY, &[("evil", &["1.0.0"])]).await;
    old(&h, "alpha");
    old(&h, "@sc/gamma");
    old(&h, "evil");
    let gz = ("accept-encoding", "gzip");
    let rows: &[(&str, &[(&str, &str)])] = &[
        ("/alpha", &[]),
        ("/alpha", &[("accept", CORGI)]),
        ("/alpha", &[gz]),
        ("/alpha", &[("accept", CORGI), gz]),
        ("/@sc%2fgamma", &[("accept", CORGI)]),
        ("/alpha/1.0.0", &[]),
        ("/alpha/latest", &[gz]),
        ("/alpha/-/alpha-1.0.0.tgz", &[]),
        ("/@sc/gamma/-/gamma-1.0.0.tgz", &[("accept", CORGI)]),
        ("/@sc%2Fgamma/-/gamma-1.0.0.tgz", &[gz]),
        ("/%40sc%2fgamma/-/gamma-1.0.0.tgz", &[]),
        ("/evil", &[]),
        ("/evil/-/evil-1.0.0.tgz", &[]),
        ("/missing-pkg", &[]),
        ("/alpha/9.9.9", &[]),
    ];
    let mut problems = Vec::new();
    for (path, hh) in rows {
        let url = format!("{}{path}", h.base);
        let (gs, gh, gb) = send("GET", &url, hh).await;
        let (hs, hh2, hb) = send("HEAD", &url, hh).await;
        let (gl, hl) = (hdr(&gh, "content-length"), hdr(&hh2, "content-length"));
        if gs != hs || gl != hl || !hb.is_empty() || gl != gb.len().to_string() {
            problems.push(format!(
                "{path} {hh:?}: GET {gs} len {gl:?} ({} bytes), HEAD {hs} len {hl:?} ({} bytes)",
                gb.len(),
                hb.len()
            ));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    h.stop().await;
}

/// Case 15: metadata answers carry a `Cache-Control` with a lifetime (both forms, version
/// and tag documents); every error and block answer is `no-store`.
#[tokio::test]
async fn case15_cache_control_on_metadata_and_no_store_on_errors() {
    let h = Harness::start(DEFAULT_POLICY, &[("evil", &["1.0.0"])]).await;
    old(&h, "alpha");
    old(&h, "evil");
    h.upstream.add_raw("broken", b"{\"name\":".to_vec());
    let corgi: &[(&str, &str)] = &[("accept", CORGI)];
    let none: &[(&str, &str)] = &[];
    for (path, hh) in [
        ("/alpha", corgi),
        ("/alpha/1.0.0", none),
        ("/alpha/latest", corgi),
    ] {
        let (status, rh, _) = send("GET", &format!("{}{path}", h.base), hh).await;
        let cc = hdr(&rh, "cache-control");
        assert_eq!(status, 200, "{path}");
        assert!(
            cc.contains("max-age") || cc.contains("no-cache"),
            "{path}: Cache-Control {cc:?}"
        );
    }
    let rows: &[(&str, &str, &[u16])] = &[
        ("GET", "/missing-pkg", &[404]),
        ("GET", "/alpha/9.9.9", &[404]),
        ("GET", "/alpha/nope", &[404]),
        ("GET", "/alpha/-/alpha-9.9.9.tgz", &[404]),
        ("GET", "/evil", &[403]),
        ("HEAD", "/evil", &[403]),
        ("GET", "/evil/latest", &[403, 404]),
        ("GET", "/evil/-/evil-1.0.0.tgz", &[403]),
        ("HEAD", "/evil/-/evil-1.0.0.tgz", &[403]),
        ("GET", "/@s%252fn", &[400, 404]),
        ("GET", "/-/whoami", &[401]),
        ("GET", "/-/no-such-endpoint", &[404]),
        ("GET", "/-/npm/v1/security/advisories/bulk", &[404, 405]),
        ("PUT", "/alpha", &[403, 405]),
        ("GET", "/broken", &[502]),
    ];
    let mut problems = Vec::new();
    for (method, path, statuses) in rows {
        let (status, rh, body) = send(method, &format!("{}{path}", h.base), corgi).await;
        let cc = hdr(&rh, "cache-control");
        let json_error = *method == "HEAD"
            || serde_json::from_slice::<Value>(&body).is_ok_and(|v| v["error"].is_string());
        if !statuses.contains(&status) || !cc.contains("no-store") || !json_error {
            problems.push(format!("{method} {path}: {status} Cache-Control {cc:?}"));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    h.stop().await;
}

/// Cases 16 and 17: a document is gzip-encoded only when the client lists gzip (every
/// client's own `Accept-Encoding`), never br or zstd; tarballs are never re-encoded,
/// whatever the client lists or accepts.
#[tokio::test]
async fn case16_17_accept_encoding_is_honoured_and_tarballs_never_reencoded() {
    let h = Harness::start(DEFAULT_POLICY, &[]).await;
    let s = old(&h, "alpha");
    // (Accept-Encoding, gzip expected)
    let rows: &[(&str, bool)] = &[
        ("gzip,deflate", true),
        ("gzip, deflate, br", true),
        ("gzip, deflate, br, zstd", true),
        ("GZIP", true),
        ("deflate", false),
        ("br, zstd", false),
    ];
    let mut problems = Vec::new();
    for accept in ["application/json", CORGI] {
        let url = format!("{}/alpha", h.base);
        let (_, _, plain) = get(&url, &[("accept", accept)]).await;
        for &(ae, want_gzip) in rows {
            let (status, hh, body) =
                get(&url, &[("accept", accept), ("accept-encoding", ae)]).await;
            let ce = hdr(&hh, "content-encoding");
            let ok = status == 200
                && if want_gzip {
                    ce == "gzip" && gunzip(&body) == plain
                } else {
                    ce.is_empty() && body == plain
                };
            if !ok {
                problems.push(format!("{accept} / {ae}: {status} Content-Encoding {ce:?}"));
            }
        }
    }
    for ae in ["gzip", "gzip, deflate, br, zstd", "zstd, gzip"] {
        let (status, hh, body) = get(
            &format!("{}/alpha/-/alpha-1.0.0.tgz", h.base),
            &[("accept", CORGI), ("accept-encoding", ae)],
        )
        .await;
        if status != 200 || !hdr(&hh, "content-encoding").is_empty() || body != s.tarballs[0].1 {
            problems.push(format!(
                "tarball / {ae}: {status} {:?}",
                hdr(&hh, "content-encoding")
            ));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    h.stop().await;
}

/// A scripted upstream serving `name@1.0.0`, its document and its tarball both framed by
/// `headers` and transformed by `body` (gzip, chunks); pkggate in front of it; the tarball
/// path and its own bytes.
async fn gate_with_framing(
    name: &str,
    headers: &[(&str, &str)],
    body: impl Fn(&[u8]) -> Vec<u8>,
) -> (Harness, String, Vec<u8>) {
    let up = RawUpstream::start().await;
    let s = synthetic(
        &up.origin(),
        name,
        &[Ver::new("1.0.0", NOW - 30 * DAY)],
        &[("latest", "1.0.0")],
    );
    let mut doc_headers = headers.to_vec();
    doc_headers.push(("Content-Type", "application/json"));
    up.answer(
        &format!("/{name}"),
        unframed(200, &doc_headers, &body(&s.full)),
    );
    let (path, tgz) = s.tarballs[0].clone();
    up.answer(&path, unframed(200, headers, &body(&tgz)));
    let h = Harness::start_with(FakeNpm::default(), up.origin(), DEFAULT_POLICY, &[], &[]).await;
    (h, path, tgz)
}

fn chunked(b: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", b.len()).into_bytes();
    out.extend_from_slice(b);
    out.extend_from_slice(b"\r\n0\r\n\r\n");
    out
}

/// §1.8 under case 16: an upstream that gzip-encodes the transfer of a document or of a
/// `.tgz` is decoded once: the document is read, and the client gets the tarball's own bytes
/// (verified against `dist.integrity`) or the same encoding with its header, never a
/// double-compressed body.
#[tokio::test]
async fn case16_upstream_gzip_transfer_is_undone_once() {
    let (h, path, tgz) = gate_with_framing("gzpkg", &[("Content-Encoding", "gzip")], gzip).await;
    let (status, _, body) = get(&format!("{}/gzpkg", h.base), &[]).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(keys(&json_of(&body)["versions"]), ["1.0.0"]);
    let (status, gh, body) = send(
        "GET",
        &format!("{}{path}", h.base),
        &[("accept-encoding", "gzip")],
    )
    .await;
    assert_eq!(status, 200);
    let decoded = match hdr(&gh, "content-encoding").as_str() {
        "" => body,
        "gzip" => gunzip(&body),
        other => panic!("Content-Encoding {other}"),
    };
    assert_eq!(
        decoded, tgz,
        "the client must get the tarball's bytes once decoded"
    );
    h.stop().await;
}

/// Case 13 for a tarball whose upstream answer has no usable length (chunked, or
/// gzip-encoded in transfer): HEAD must not claim a length the GET does not have.
#[tokio::test]
async fn case13_head_of_a_tarball_without_an_upstream_length_matches_get() {
    let mut problems = Vec::new();
    for (name, headers) in [
        ("chunked", ("Transfer-Encoding", "chunked")),
        ("gzipped", ("Content-Encoding", "gzip")),
    ] {
        let framing = move |b: &[u8]| {
            if name == "chunked" {
                chunked(b)
            } else {
                gzip(b)
            }
        };
        let (h, path, tgz) = gate_with_framing(name, &[headers], framing).await;
        let url = format!("{}{path}", h.base);
        let (gs, gh, body) = send("GET", &url, &[]).await;
        let (hs, hh, _) = send("HEAD", &url, &[]).await;
        let (gl, hl) = (hdr(&gh, "content-length"), hdr(&hh, "content-length"));
        if (gs, hs) != (200, 200) || body != tgz || gl != hl {
            problems.push(format!(
                "{name}: GET {gs} length {gl:?}, HEAD {hs} length {hl:?}"
            ));
        }
        h.stop().await;
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// Case 21: the audit pass-through handles `Content-Encoding` both ways: a gzip request
/// body reaches upstream as sent, and a gzip-encoded upstream report reaches the client as
/// JSON it can read (decoded, or still encoded with its header).
#[tokio::test]
async fn case21_audit_pass_through_with_gzip_both_ways() {
    let up = RawUpstream::start().await;
    let report = br#"{"alpha":[{"id":1,"url":"u","title":"t","severity":"high","vulnerable_versions":"<2","cwe":[]}]}"#;
    let path = "/-/npm/v1/security/advisories/bulk";
    let headers = [
        ("Content-Type", "application/json"),
        ("Content-Encoding", "gzip"),
    ];
    up.answer(path, framed(200, &headers, &gzip(report)));
    let h = Harness::start_with(FakeNpm::default(), up.origin(), DEFAULT_POLICY, &[], &[]).await;
    let sent = gzip(br#"{"alpha":["1.0.0"]}"#);
    let r = no_follow()
        .post(format!("{}{path}", h.base))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .header("accept-encoding", "gzip, deflate")
        .body(sent.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ce = hdr(r.headers(), "content-encoding");
    let body = r.bytes().await.unwrap().to_vec();
    let body = if ce == "gzip" { gunzip(&body) } else { body };
    assert_eq!(json_of(&body), json_of(report), "Content-Encoding {ce:?}");
    let head = up
        .heads()
        .into_iter()
        .find(|h| h.starts_with("POST "))
        .unwrap();
    assert!(
        head.to_ascii_lowercase().contains("content-encoding: gzip"),
        "{head}"
    );
    h.stop().await;
}

/// Case 18 (and 52's "a partial upstream body is never cached"): upstream 5xx, a cut body
/// or silence end in 502/504 with `Retry-After`, `no-store` and a JSON reason on every
/// route; once upstream is well again the real document is served, not a cached failure.
#[tokio::test]
async fn case18_upstream_failures_are_retryable_and_never_cached() {
    let up = RawUpstream::start().await;
    let s = synthetic(
        &up.origin(),
        "flaky",
        &[Ver::new("1.0.0", NOW - 30 * DAY)],
        &[("latest", "1.0.0")],
    );
    let h = Harness::start_with(FakeNpm::default(), up.origin(), DEFAULT_POLICY, &[], &[]).await;
    let ct = ("Content-Type", "application/json");
    let len = s.full.len().to_string();
    let (tgz_path, tgz) = s.tarballs[0].clone();
    let mut problems = Vec::new();
    let mut expect_failure = |what: String, status: u16, hh: &HeaderMap, body: &[u8]| {
        let reason = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or_default();
        if !(status == 502 || status == 504)
            || hdr(hh, "retry-after").is_empty()
            || hdr(hh, "cache-control") != "no-store"
            || !reason.starts_with("upstream_error")
        {
            problems.push(format!("{what}: {status} {hh:?} {reason:?}"));
        }
    };
    for (what, answer) in [
        (
            "500",
            framed(500, &[("Content-Type", "text/plain")], b"boom"),
        ),
        (
            "cut",
            unframed(
                200,
                &[ct, ("Content-Length", len.as_str())],
                &s.full[..s.full.len() / 2],
            ),
        ),
    ] {
        up.answer("/flaky", answer);
        for (path, accept) in [
            ("/flaky", "application/json"),
            ("/flaky", CORGI),
            ("/flaky/latest", "application/json"),
        ] {
            let (status, hh, body) =
                send("GET", &format!("{}{path}", h.base), &[("accept", accept)]).await;
            expect_failure(format!("{what}: {path} {accept}"), status, &hh, &body[..]);
        }
    }
    up.answer("/flaky", framed(200, &[ct], &s.full));
    up.answer(&tgz_path, framed(503, &[ct], b"{}"));
    let (status, hh, body) = send("GET", &format!("{}{tgz_path}", h.base), &[]).await;
    expect_failure("tarball 503".into(), status, &hh, &body[..]);
    up.answer(
        &tgz_path,
        framed(200, &[("Content-Type", "application/octet-stream")], &tgz),
    );
    for accept in ["application/json", CORGI] {
        let (status, _, body) = get(&format!("{}/flaky", h.base), &[("accept", accept)]).await;
        assert_eq!(status, 200, "recovered, {accept}");
        assert_eq!(keys(&json_of(&body)["versions"]), ["1.0.0"]);
    }
    let (status, _, body) = get(&format!("{}{tgz_path}", h.base), &[]).await;
    assert_eq!((status, body == tgz), (200, true), "recovered tarball");
    h.stop().await;

    // An upstream that accepts and never answers: 504 (or 502) within the timeout.
    let (fake, fake_base) = FakeNpm::start().await;
    let t = Harness::start_with(
        fake,
        fake_base,
        DEFAULT_POLICY,
        &[],
        &[(pkggate::env::UPSTREAM_TIMEOUT_SECONDS, "1")],
    )
    .await;
    old(&t, "slow");
    t.upstream.holding.store(true, Ordering::SeqCst);
    let (status, hh, body) = send("GET", &format!("{}/slow", t.base), &[]).await;
    expect_failure("silent upstream".into(), status, &hh, &body[..]);
    t.upstream.holding.store(false, Ordering::SeqCst);
    t.upstream.hold.0.add_permits(1000);
    let (status, _, _) = get(&format!("{}/slow", t.base), &[]).await;
    assert_eq!(status, 200, "recovered after the timeout");
    assert!(problems.is_empty(), "{problems:#?}");
    t.stop().await;
}

/// Case 24: escapes in keys and values (`\u` in version keys, tag names and values, `\/` in
/// tarball URLs and integrity) are read as JSON says: a malicious version spelled with
/// escapes is still removed, the output is valid JSON with pkggate's tarball URLs, and a
/// tarball whose URL and integrity were escaped is fetched and verified.
#[tokio::test]
async fn case24_escaped_keys_and_values() {
    let h = Harness::start(DEFAULT_POLICY, &[("esc", &["6.6.6"])]).await;
    let tgz = tarball("esc", "1.0.1", &[]);
    h.upstream
        .files
        .lock()
        .unwrap()
        .insert("/esc/-/esc-1.0.1.tgz".into(), Bytes::from(tgz.clone()));
    let url = |v: &str| format!("{}/esc/-/esc-{v}.tgz", h.upstream_base).replace('/', "\\/");
    let doc = format!(
        r#"{{"name":"\u0065sc","dist-tags":{{"latest":"6.6.\u0036","b\u0065ta":"1.0.0-\u00e9"}},"versions":{{
        "1.0.\u0031":{{"name":"esc","version":"1.0.1","dist":{{"tarball":"{}","integrity":"{}"}}}},
        "1.0.0-\u00e9":{{"name":"esc","version":"1.0.0-\u00e9","dist":{{"tarball":"{}"}}}},
        "6.6.\u0036":{{"name":"esc","version":"6.6.6","dist":{{"tarball":"{}"}}}}}},
        "time":{{"created":"2020-01-01T00:00:00Z","1.0.\u0031":"2020-01-02T00:00:00Z","6.6.\u0036":"2020-01-03T00:00:00Z"}}}}"#,
        url("1.0.1"),
        sri512(&tgz).replace('/', "\\/"),
        url("1.0.0-\u{e9}"),
        url("6.6.6"),
    );
    h.upstream.add_raw("esc", doc.into_bytes());
    for accept in ["application/json", CORGI] {
        let (status, _, body) = get(&format!("{}/esc", h.base), &[("accept", accept)]).await;
        assert_eq!(status, 200, "{accept}: {}", String::from_utf8_lossy(&body));
        let out = json_of(&body);
        let mut vs = keys(&out["versions"]);
        vs.sort();
        assert_eq!(vs, ["1.0.0-\u{e9}", "1.0.1"], "{accept}");
        assert_eq!(out["dist-tags"]["latest"], "1.0.1", "{accept}");
        assert_eq!(out["dist-tags"]["beta"], "1.0.0-\u{e9}", "{accept}");
        assert!(out["time"].get("6.6.6").is_none(), "{accept}");
        for (v, m) in out["versions"].as_object().unwrap() {
            let t = m["dist"]["tarball"].as_str().unwrap();
            assert!(t.starts_with(&format!("{}/esc/-/esc-", h.base)), "{v}: {t}");
        }
    }
    let (status, _, body) = get(&format!("{}/esc/-/esc-1.0.1.tgz", h.base), &[]).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(body, tgz);
    let (status, _, _) = get(&format!("{}/esc/-/esc-6.6.6.tgz", h.base), &[]).await;
    assert_eq!(status, 403);
    h.stop().await;
}

/// Case 25: a legacy mixed-case name keeps its case everywhere: the upstream request, the
/// document, the rewritten tarball URL, the tarball and its decision; the lower-case name is
/// another (missing) package.
#[tokio::test]
async fn case25_mixed_case_names_keep_their_case() {
    let h = Harness::start(DEFAULT_POLICY, &[("JSONStream", &["1.0.1"])]).await;
    let s = h.add(
        "JSONStream",
        &[
            Ver::new("1.0.0", NOW - 30 * DAY),
            Ver::new("1.0.1", NOW - 20 * DAY),
        ],
        &[("latest", "1.0.1")],
    );
    let (status, _, body) = get(&format!("{}/JSONStream", h.base), &[]).await;
    assert_eq!(status, 200);
    let doc = json_of(&body);
    assert_eq!(doc["name"], "JSONStream");
    assert_eq!(keys(&doc["versions"]), ["1.0.0"]);
    assert_eq!(
        doc["versions"]["1.0.0"]["dist"]["tarball"],
        format!("{}/JSONStream/-/JSONStream-1.0.0.tgz", h.base)
    );
    let (status, _, body) = get(
        &format!("{}/JSONStream/-/JSONStream-1.0.0.tgz", h.base),
        &[],
    )
    .await;
    assert_eq!((status, body == s.tarballs[0].1), (200, true));
    let (status, _, _) = get(
        &format!("{}/JSONStream/-/JSONStream-1.0.1.tgz", h.base),
        &[],
    )
    .await;
    assert_eq!(status, 403);
    let (status, _, _) = get(&format!("{}/jsonstream", h.base), &[]).await;
    assert_eq!(status, 404);
    let paths: Vec<String> = h
        .upstream
        .log
        .lock()
        .unwrap()
        .iter()
        .map(|l| l.1.clone())
        .collect();
    assert!(paths.contains(&"/JSONStream".to_string()), "{paths:?}");
    assert!(paths.contains(&"/jsonstream".to_string()), "{paths:?}");
    h.stop().await;
}

/// Case 51: upstream redirects (301/302/307/308, relative or absolute, within the configured
/// origin) of documents and tarballs are followed by pkggate; the client sees neither the
/// redirect nor its location.
#[tokio::test]
async fn case51_upstream_redirects_are_followed_and_never_shown() {
    let up = RawUpstream::start().await;
    let origin = up.origin();
    let codes = [301u16, 302, 307, 308];
    let mut tgzs = Vec::new();
    for code in codes {
        let name = format!("r{code}");
        let s = synthetic(
            &origin,
            &name,
            &[Ver::new("1.0.0", NOW - 30 * DAY)],
            &[("latest", "1.0.0")],
        );
        up.answer(
            &format!("/{name}"),
            framed(code, &[("Location", &format!("/moved/{name}"))], b""),
        );
        up.answer(
            &format!("/moved/{name}"),
            framed(200, &[("Content-Type", "application/json")], &s.full),
        );
        let (path, bytes) = s.tarballs[0].clone();
        let cdn = format!("/cdn/{name}-1.0.0.tgz");
        up.answer(
            &path,
            framed(code, &[("Location", &format!("{origin}{cdn}"))], b""),
        );
        up.answer(
            &cdn,
            framed(200, &[("Content-Type", "application/octet-stream")], &bytes),
        );
        tgzs.push((name, path, bytes));
    }
    let h = Harness::start_with(FakeNpm::default(), origin.clone(), DEFAULT_POLICY, &[], &[]).await;
    let mut problems = Vec::new();
    for (name, path, bytes) in &tgzs {
        for (method, p, accept) in [
            ("GET", format!("/{name}"), "application/json"),
            ("GET", format!("/{name}"), CORGI),
            ("GET", path.clone(), "*/*"),
            ("HEAD", path.clone(), "*/*"),
        ] {
            let (status, hh, body) =
                send(method, &format!("{}{p}", h.base), &[("accept", accept)]).await;
            let shown = format!("{hh:?}{}", String::from_utf8_lossy(&body));
            if status != 200
                || hh.contains_key("location")
                || shown.contains("/moved/")
                || shown.contains("/cdn/")
            {
                problems.push(format!("{method} {p} {accept}: {status} {shown:.300}"));
            }
            if method == "GET" && p == *path && body != *bytes {
                problems.push(format!("{p}: wrong bytes"));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    h.stop().await;
}

/// Case 52: a client that goes away mid-tarball makes pkggate stop reading upstream (the
/// upstream, which would send 1 GiB, sees the connection closed long before).
#[tokio::test]
async fn case52_client_disconnect_cancels_the_upstream_transfer() {
    const TOTAL: u64 = 1 << 30;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let s = synthetic(
        &origin,
        "endless",
        &[Ver::new("1.0.0", NOW - 30 * DAY)],
        &[("latest", "1.0.0")],
    );
    let doc = framed(200, &[("Content-Type", "application/json")], &s.full);
    let closed = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let (c, n) = (closed.clone(), sent.clone());
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut sock, _)) = listener.accept().await {
            let (doc, c, n) = (doc.clone(), c.clone(), n.clone());
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(k) => head.extend_from_slice(&buf[..k]),
                    }
                }
                if !String::from_utf8_lossy(&head).contains(".tgz ") {
                    let _ = sock.write_all(&doc).await;
                    return;
                }
                let h = head_bytes(
                    200,
                    &[
                        ("Content-Type", "application/octet-stream"),
                        ("Content-Length", &TOTAL.to_string()),
                    ],
                );
                let chunk = vec![b'x'; 64 << 10];
                let mut ok = sock.write_all(&h).await.is_ok();
                while ok && n.load(Ordering::SeqCst) < TOTAL {
                    ok = sock.write_all(&chunk).await.is_ok();
                    if ok {
                        n.fetch_add(chunk.len() as u64, Ordering::SeqCst);
                    }
                }
                c.store(!ok, Ordering::SeqCst);
            });
        }
    });
    let h = Harness::start_with(FakeNpm::default(), origin, "{}", &[], &[]).await;
    let mut r = no_follow()
        .get(format!("{}/endless/-/endless-1.0.0.tgz", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.chunk().await.unwrap().is_some());
    drop(r);
    eventually(
        "upstream sees the transfer cancelled",
        Duration::from_secs(20),
        async || closed.load(Ordering::SeqCst).then_some(()),
    )
    .await;
    assert!(
        sent.load(Ordering::SeqCst) < TOTAL / 4,
        "{} bytes read",
        sent.load(Ordering::SeqCst)
    );
    h.stop().await;
}

/// Case 2, to the letter: a double-encoded scope separator is "not found" (404), since no
/// npm name contains `%`; it is never decoded twice.
#[tokio::test]
async fn case02_double_encoded_scope_is_not_found() {
    let h = Harness::start(DEFAULT_POLICY, &[]).await;
    old(&h, "@s/n");
    for path in ["/@s%252fn", "/@s%252Fn", "/%2540s%252fn"] {
        let (status, _, body) = get(&format!("{}{path}", h.base), &[]).await;
        assert_eq!(status, 404, "{path}: {}", String::from_utf8_lossy(&body));
        assert!(json_of(&body)["error"].is_string());
    }
    assert_eq!(h.upstream.total_hits(), 0);
    h.stop().await;
}
