//! Severity of vulnerability advisories: CVSS base scores computed from the vectors OSV
//! records carry (never a number in OSV), and the textual `database_specific.severity`
//! label some GHSA records carry instead.

use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// What pkggate knows about an advisory's severity.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Severity {
    /// CVSS v3.x base score, when a valid `CVSS_V3` vector exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cvss_v3: Option<f32>,
    /// CVSS v4.0 score, when a valid `CVSS_V4` vector exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cvss_v4: Option<f32>,
    /// `database_specific.severity` as the record spells it (`LOW`, `MODERATE`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

impl Severity {
    /// The score the policy compares with `max_cvss_score`: the highest computed CVSS score
    /// (v3 or v4); when the record has no vector, the lower bound of the CVSS band its label
    /// names (see [`label_score`]).
    pub fn effective_score(&self) -> Option<f32> {
        match (self.cvss_v3, self.cvss_v4) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (Some(a), None) | (None, Some(a)) => Some(a),
            (None, None) => self.label.as_deref().and_then(label_score),
        }
    }

    /// Whether the score came from a vector (true) or from the label mapping (false).
    pub fn is_computed(&self) -> bool {
        self.cvss_v3.is_some() || self.cvss_v4.is_some()
    }
}

/// The documented mapping from a textual severity to a score: the lower bound of the CVSS
/// v3 qualitative band, so that a `HIGH` record meets a `max_cvss_score` of 7.0 exactly as a
/// computed 7.0 would. `LOW` → 0.1, `MODERATE`/`MEDIUM` → 4.0, `HIGH` → 7.0,
/// `CRITICAL` → 9.0; anything else → none.
pub fn label_score(label: &str) -> Option<f32> {
    match label.trim().to_ascii_uppercase().as_str() {
        "LOW" => Some(0.1),
        "MODERATE" | "MEDIUM" => Some(4.0),
        "HIGH" => Some(7.0),
        "CRITICAL" => Some(9.0),
        _ => None,
    }
}

/// The base score of a CVSS vector string (`CVSS:3.0/…`, `CVSS:3.1/…`, `CVSS:4.0/…`),
/// or `None` when the vector does not parse.
pub fn vector_score(vector: &str) -> Option<f32> {
    let cvss = cvss::Cvss::from_str(vector.trim()).ok()?;
    let score = cvss.score();
    score.is_finite().then_some(score as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_score() {
        // Values from the CVSS calculators of FIRST.
        let table: &[(&str, Option<f32>)] = &[
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", Some(9.8)),
            ("CVSS:3.0/AV:N/AC:L/PR:N/UI:R/S:U/C:N/I:N/A:H", Some(6.5)),
            ("CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:N/I:N/A:N", Some(0.0)),
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
                Some(9.3),
            ),
            ("not a vector", None),
            ("CVSS:3.1/AV:X", None),
        ];
        for (vector, want) in table {
            assert_eq!(vector_score(vector), *want, "{vector}");
        }
    }

    #[test]
    fn effective_score_prefers_vectors_then_label() {
        let s = Severity {
            cvss_v3: Some(5.0),
            cvss_v4: Some(8.1),
            label: Some("LOW".into()),
        };
        assert_eq!(s.effective_score(), Some(8.1));
        let s = Severity {
            label: Some("High".into()),
            ..Default::default()
        };
        assert_eq!(s.effective_score(), Some(7.0));
        assert!(!s.is_computed());
        assert_eq!(Severity::default().effective_score(), None);
        assert_eq!(label_score("MODERATE"), Some(4.0));
        assert_eq!(label_score("unknown"), None);
    }
}
