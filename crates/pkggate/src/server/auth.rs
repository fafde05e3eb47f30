//! Who may use the admin endpoints (`/metrics`, `/-/pkggate/why/…`, the admin page and its
//! API).
//!
//! * `PKGGATE_ADMIN_TOKEN` unset: loopback clients only. With `TRUST_FORWARDED_HEADERS`, a
//!   request a (loopback) front proxy forwards counts as the client the proxy names last in
//!   `X-Forwarded-For`: a proxy on the same host does not make every client "loopback".
//! * Set: every client must present it, either as `Authorization: Bearer <token>` (scrapers,
//!   scripts) or, in a browser, as the session cookie the login form sets: `GET
//!   /-/pkggate/ui` without a credential answers a small login page (401) whose form posts
//!   the token to `POST /-/pkggate/login`; a right token gets `pkggate_admin` (HttpOnly,
//!   SameSite=Strict, path `/-/pkggate`, 12 h, `Secure` when the public base — or a trusted
//!   `X-Forwarded-Proto` — is https) and a redirect to the page. The cookie holds the time
//!   it was issued and a SHA-256 over the token and that time, never the token: it expires
//!   after 12 h on the server's side too, and changing the token ends every session.
//!   `POST /-/pkggate/logout` clears it and revokes that session in this process.
//!
//! Comparisons hash both sides first, so they take the same time whatever the input's
//! length or content.

use crate::server::{AppState, json_response};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;

/// Name of the browser session cookie.
pub const COOKIE: &str = "pkggate_admin";
/// Lifetime of a browser session.
const SESSION_SECONDS: u64 = 12 * 3600;
/// The login page's policy: no script, no style, the form posts only to pkggate itself.
const LOGIN_CSP: &str = "default-src 'none'; form-action 'self'; base-uri 'none'; \
    frame-ancestors 'none'";

fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize().into()
}

/// Equal, in time independent of where the inputs differ or how long they are.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    let (a, b) = (digest(&[given]), digest(&[expected]));
    a.iter().zip(&b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The cookie value for a token, the time the session was issued and a nonce that makes
/// each sign-in's session its own (so signing one out ends no other): `<issued>.<nonce>.<mac>`.
pub fn session_value(token: &str, issued: i64, nonce: u64) -> String {
    let mac = digest(&[
        b"pkggate-admin-session",
        token.as_bytes(),
        issued.to_string().as_bytes(),
        nonce.to_string().as_bytes(),
    ]);
    format!("{issued}.{nonce}.{}", hex::encode(mac))
}

/// A nonce no other sign-in of this process gets (and unlikely across restarts).
fn fresh_nonce() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (u64::from(nanos) << 32) ^ n
}

/// `(issued, nonce)` of a cookie value.
fn session_parts(value: &str) -> Option<(i64, u64)> {
    let mut parts = value.splitn(3, '.');
    let issued = parts.next()?.parse().ok()?;
    let nonce = parts.next()?.parse().ok()?;
    Some((issued, nonce))
}

/// Sessions signed out before they expired: value → expiry (pruned as they expire).
fn revoked() -> &'static std::sync::Mutex<std::collections::HashMap<String, i64>> {
    static REVOKED: std::sync::OnceLock<std::sync::Mutex<std::collections::HashMap<String, i64>>> =
        std::sync::OnceLock::new();
    REVOKED.get_or_init(Default::default)
}

/// Revocations kept at most (the oldest expire first; a flood of sign-outs cannot grow it).
const MAX_REVOKED: usize = 10_000;

/// Whether `value` is a live session for `token` at `now`.
fn valid_session(token: &str, value: &str, now: i64) -> bool {
    let Some((issued, nonce)) = session_parts(value) else {
        return false;
    };
    let fresh = issued <= now + 60 && now.saturating_sub(issued) < SESSION_SECONDS as i64;
    fresh
        && same_secret(
            value.as_bytes(),
            session_value(token, issued, nonce).as_bytes(),
        )
        && !revoked()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(value)
}

/// The client as far as loopback rights go: the connecting address, and, when forwarded
/// headers are trusted, the last `X-Forwarded-For` entry (the one the trusted proxy added).
fn loopback_client(state: &AppState, headers: &HeaderMap, peer: Option<SocketAddr>) -> bool {
    let Some(peer) = peer else { return false };
    if !peer.ip().to_canonical().is_loopback() {
        return false;
    }
    if !state.config.trust_forwarded_headers {
        return true;
    }
    match crate::server::last_forwarded_for(headers) {
        None => true,
        Some(last) => last
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback()),
    }
}

fn cookie_of<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// Whether this request may use the admin endpoints.
pub fn authorized(state: &AppState, headers: &HeaderMap, peer: Option<SocketAddr>) -> bool {
    match &state.config.admin_token {
        Some(token) => {
            let bearer = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .is_some_and(|given| same_secret(given.trim().as_bytes(), token.as_bytes()));
            bearer
                || cookie_of(headers, COOKIE)
                    .is_some_and(|c| valid_session(token, c, crate::intel::now_unix()))
        }
        None => loopback_client(state, headers, peer),
    }
}

/// The guard in front of every admin route.
pub async fn admin_only(
    State(state): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    if authorized(&state, req.headers(), peer) {
        return next.run(req).await;
    }
    if state.config.admin_token.is_some() {
        if req.uri().path() == "/-/pkggate/ui" {
            return login_page(StatusCode::UNAUTHORIZED, None);
        }
        return json_response(
            StatusCode::FORBIDDEN,
            json!({"error": "admin endpoint: a valid bearer token (PKGGATE_ADMIN_TOKEN) or a session from /-/pkggate/ui is required"}),
        );
    }
    json_response(
        StatusCode::FORBIDDEN,
        json!({"error": "admin endpoint: loopback clients only (set PKGGATE_ADMIN_TOKEN to allow others)"}),
    )
}

fn login_page(status: StatusCode, error: Option<&str>) -> Response {
    let note = error
        .map(|e| format!("<p role=\"alert\" id=\"login-error\">{e}</p>"))
        .unwrap_or_default();
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>pkggate — sign in</title></head><body><main><h1>pkggate</h1>\
<p>This page needs the admin token (<code>PKGGATE_ADMIN_TOKEN</code>).</p>{note}\
<form method=\"post\" action=\"/-/pkggate/login\"><label>Admin token \
<input type=\"password\" name=\"token\" id=\"token\" autocomplete=\"current-password\" required autofocus></label> \
<button type=\"submit\" id=\"sign-in\">Sign in</button></form></main></body></html>"
    );
    let mut r = (status, html).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(LOGIN_CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

fn cookie(state: &AppState, headers: &HeaderMap, value: &str, max_age: u64) -> Option<HeaderValue> {
    let secure = crate::server::public_base(state, pkggate_formats::Ecosystem::Npm, headers)
        .starts_with("https://");
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Path=/-/pkggate; Max-Age={max_age}; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    ))
    .ok()
}

fn see_ui(set_cookie: Option<HeaderValue>) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    r.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static("/-/pkggate/ui"));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(c) = set_cookie {
        r.headers_mut().insert(header::SET_COOKIE, c);
    }
    r
}

/// `POST /-/pkggate/login` (form field `token`).
pub async fn login(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(token) = &state.config.admin_token else {
        // No token configured: the page is open to loopback clients, nothing to sign in to.
        return see_ui(None);
    };
    let given = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    if !same_secret(given.trim().as_bytes(), token.as_bytes()) {
        tracing::warn!("admin sign-in refused: wrong token");
        return login_page(StatusCode::UNAUTHORIZED, Some("Wrong token."));
    }
    let value = session_value(token, crate::intel::now_unix(), fresh_nonce());
    see_ui(cookie(&state, &headers, &value, SESSION_SECONDS))
}

/// `POST /-/pkggate/logout`: clears the cookie and revokes the session it carried.
pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let (Some(token), Some(value)) = (&state.config.admin_token, cookie_of(&headers, COOKIE)) {
        let now = crate::intel::now_unix();
        if valid_session(token, value, now)
            && let Some((issued, _)) = session_parts(value)
        {
            let mut r = revoked().lock().unwrap_or_else(|p| p.into_inner());
            r.retain(|_, expiry| *expiry > now);
            if r.len() >= MAX_REVOKED
                && let Some(oldest) = r.iter().min_by_key(|(_, e)| **e).map(|(k, _)| k.clone())
            {
                r.remove(&oldest);
            }
            r.insert(value.to_string(), issued + SESSION_SECONDS as i64);
        }
    }
    see_ui(cookie(&state, &headers, "", 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_by_content_only() {
        assert!(same_secret(b"s3cret", b"s3cret"));
        assert!(!same_secret(b"s3cret", b"s3cre"));
        assert!(!same_secret(b"", b"s3cret"));
        assert!(!same_secret(b"S3cret", b"s3cret"));
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; pkggate_admin=abc ; b=2"),
        );
        assert_eq!(cookie_of(&h, COOKIE), Some("abc"));
        assert_eq!(cookie_of(&h, "c"), None);
        // The session value is not the token and changes with it, the time and the nonce.
        assert!(!session_value("t", 1, 7).contains('t'));
        assert_ne!(session_value("t", 1, 7), session_value("u", 1, 7));
        assert_ne!(session_value("t", 1, 7), session_value("t", 2, 7));
        assert_ne!(session_value("t", 1, 7), session_value("t", 1, 8));
        assert_ne!(fresh_nonce(), fresh_nonce());
    }

    #[test]
    fn sessions_expire_and_cannot_be_forged() {
        let now = 1_800_000_000;
        let v = session_value("tok", now, 7);
        assert!(valid_session("tok", &v, now));
        assert!(valid_session("tok", &v, now + SESSION_SECONDS as i64 - 1));
        assert!(!valid_session("tok", &v, now + SESSION_SECONDS as i64));
        assert!(!valid_session("other", &v, now));
        // Issued far in the future (a forged time) is refused, as is a re-timed MAC.
        assert!(!valid_session(
            "tok",
            &session_value("tok", now + 3600, 7),
            now
        ));
        let mac = v.rsplit_once('.').unwrap().1;
        assert!(!valid_session("tok", &format!("{}.7.{mac}", now + 1), now));
        assert!(!valid_session("tok", &format!("{now}.8.{mac}"), now));
        assert!(!valid_session("tok", "garbage", now));
    }
}
