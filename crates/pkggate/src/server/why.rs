//! `GET /-/pkggate/why/<ecosystem>/<name>/<version>`: the decision for one version with the
//! trace of every rule consulted, the intelligence status and findings, the facts the
//! adapter learned and the policy revision. Scoped npm names contain a `/`
//! (`/why/npm/@scope/name/1.0.0`, also `@scope%2fname`): the last segment is the version.
//!
//! Explanations are not audited (they serve nothing) and never cached (`no-store`).

use crate::gate::VersionInput;
use crate::server::{AppState, RequestContext, json_response};
use crate::timefmt::rfc3339;
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use pkggate_formats::Ecosystem;
use pkggate_policy::{Fact, IntelStatus};
use serde_json::{Value, json};

/// Split `name/version` at the last `/` (scoped npm names keep theirs).
pub fn split_name_version(rest: &str) -> Option<(&str, &str)> {
    let rest = rest.trim_start_matches('/');
    let (name, version) = rest.rsplit_once('/')?;
    (!name.is_empty() && !version.is_empty()).then_some((name, version))
}

fn fact_json<T: serde::Serialize>(f: &Fact<T>) -> Value {
    match f {
        Fact::Unknown => json!("unknown"),
        Fact::Absent => Value::Null,
        Fact::Present(v) => json!(v),
    }
}

fn bad_request(msg: String) -> Response {
    json_response(StatusCode::BAD_REQUEST, json!({"error": msg}))
}

pub async fn why(
    State(state): State<AppState>,
    ctx: Option<Extension<RequestContext>>,
    Path((ecosystem, rest)): Path<(String, String)>,
) -> Response {
    let eco = match Ecosystem::parse_lenient(&ecosystem) {
        Ok(e) => e,
        Err(e) => return bad_request(e.to_string()),
    };
    let Some((name, version)) = split_name_version(&rest) else {
        return bad_request(format!(
            "expected /-/pkggate/why/{ecosystem}/<name>/<version>, got {rest:?}"
        ));
    };
    if !state.config.ecosystem_enabled(eco) {
        return json_response(
            StatusCode::NOT_FOUND,
            json!({"error": format!("the {eco} ecosystem is not enabled")}),
        );
    }
    // Facts from the adapter (publish time, repository, scripts); without them the rules
    // that need them see "unknown" and the policy's setting for unknown facts applies.
    let (input, facts_source, upstream_status) =
        match crate::ecosystems::adapter(&state.config, eco) {
            Some(adapter) => match adapter.version_facts(&state, name, version).await {
                Ok(v) => (v, "upstream", None),
                Err(resp) => (
                    VersionInput::bare(version),
                    "unavailable",
                    Some(resp.status().as_u16()),
                ),
            },
            None => (VersionInput::bare(version), "none", None),
        };
    let (decision, intel, findings, policy_revision) = state.gate.explain(eco, name, &input).await;
    let intel = match intel {
        IntelStatus::Available => json!({"status": "available"}),
        IntelStatus::Unavailable { why } => json!({"status": "unavailable", "reason": why}),
    };
    json_response(
        StatusCode::OK,
        json!({
            "ecosystem": eco.osv_name(),
            "package": name,
            "version": input.version,
            "action": decision.action,
            "rule": decision.rule,
            "reason": decision.reason,
            "source": decision.source,
            "trace": decision.trace,
            "intel": intel,
            "findings": findings,
            "facts": {
                "source": facts_source,
                "upstream_status": upstream_status,
                "published": input.published_unix.map(rfc3339),
                "repository_url": fact_json(&input.repository_url),
                "lifecycle_scripts": fact_json(&input.lifecycle_scripts),
            },
            "policy_revision": policy_revision,
            "request_id": ctx.map(|c| c.0.request_id.clone()),
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::split_name_version;

    #[test]
    fn splits_at_the_last_slash() {
        assert_eq!(
            split_name_version("lodash/4.17.21"),
            Some(("lodash", "4.17.21"))
        );
        assert_eq!(
            split_name_version("@scope/pkg/1.0.0"),
            Some(("@scope/pkg", "1.0.0"))
        );
        assert_eq!(split_name_version("lodash"), None);
        assert_eq!(split_name_version("lodash/"), None);
        assert_eq!(split_name_version("/1.0.0"), None);
    }
}
