//! What the PyPI tests ask pkggate with: the Accept headers, a client that follows no
//! redirect, and header access.

/// `Accept` as pip sends it.
pub const PIP_ACCEPT: &str = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01";
/// The PEP 691 JSON media type.
pub const JSON_CT: &str = "application/vnd.pypi.simple.v1+json";

/// A client that follows no redirect (the tests look at pkggate's own answers).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap()
}

pub async fn get(url: &str, accept: Option<&str>) -> reqwest::Response {
    let mut r = client().get(url);
    if let Some(a) = accept {
        r = r.header("accept", a);
    }
    r.send().await.unwrap()
}

pub fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}
