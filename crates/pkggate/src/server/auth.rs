//! Who may use the admin endpoints (`/metrics`, `/-/pkggate/why/…`, the admin page and its
//! API).
//!
//! * `PKGGATE_ADMIN_TOKEN` unset: loopback clients only.
//! * Set: every client must present it, either as `Authorization: Bearer <token>` (scrapers,
//!   scripts) or, in a browser, as the session cookie the login form sets: `GET
//!   /-/pkggate/ui` without a credential answers a small login page (401) whose form posts
//!   the token to `POST /-/pkggate/login`; a right token gets `pkggate_admin` (HttpOnly,
//!   SameSite=Strict, path `/-/pkggate`, 12 h, `Secure` when the public base URL is https)
//!   and a redirect to the page. The cookie holds a SHA-256 of the token, never the token:
//!   changing the token ends every session. `POST /-/pkggate/logout` clears it.
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

/// The cookie value for a token.
pub fn session_value(token: &str) -> String {
    hex::encode(digest(&[b"pkggate-admin-session", token.as_bytes()]))
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
                    .is_some_and(|c| same_secret(c.as_bytes(), session_value(token).as_bytes()))
        }
        None => peer.is_some_and(|p| p.ip().is_loopback()),
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

fn cookie(state: &AppState, value: &str, max_age: u64) -> Option<HeaderValue> {
    let secure = state
        .config
        .public_base(pkggate_formats::Ecosystem::Npm)
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
pub async fn login(State(state): State<AppState>, body: Bytes) -> Response {
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
    see_ui(cookie(&state, &session_value(token), SESSION_SECONDS))
}

/// `POST /-/pkggate/logout`.
pub async fn logout(State(state): State<AppState>) -> Response {
    see_ui(cookie(&state, "", 0))
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
        // The session value is not the token and changes with it.
        assert_ne!(session_value("t"), "t");
        assert_ne!(session_value("t"), session_value("u"));
    }
}
