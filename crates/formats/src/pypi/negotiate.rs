//! `Accept` negotiation for the simple API (PEP 691, PROTOCOLS §2.2).
//!
//! Each offer (`application/vnd.pypi.simple.v1+json`, `…v1+html`, `text/html`) takes the
//! q-value of the most specific media range that matches it (exact type, including the
//! `latest` aliases, over `type/*` over `*/*`). The offer with the highest q > 0 wins; at equal
//! q an offer named explicitly beats one reached through a wildcard, then server preference
//! decides: JSON > v1+html > text/html (so `*/*` alone gives JSON). When nothing is acceptable
//! (no header, `application/xml`, everything `q=0`) the answer is `text/html`, like PyPI
//! itself, not 406. Media types and parameter names compare case-insensitively; a range with
//! an unparsable q-value is ignored; at most [`MAX_ACCEPT_RANGES`] ranges are read.

/// A representation of a simple-API page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimpleFormat {
    /// PEP 691 JSON, `application/vnd.pypi.simple.v1+json`.
    Json,
    /// PEP 503 HTML under its versioned type, `application/vnd.pypi.simple.v1+html`.
    V1Html,
    /// PEP 503 HTML, `text/html`.
    TextHtml,
}

/// Ranges of an `Accept` header that are looked at; the rest is ignored (bounded work).
pub const MAX_ACCEPT_RANGES: usize = 64;

impl SimpleFormat {
    /// Server preference order, best first.
    pub const ALL: [SimpleFormat; 3] = [
        SimpleFormat::Json,
        SimpleFormat::V1Html,
        SimpleFormat::TextHtml,
    ];

    /// The exact `Content-Type` to answer with.
    pub fn content_type(self) -> &'static str {
        match self {
            SimpleFormat::Json => "application/vnd.pypi.simple.v1+json",
            SimpleFormat::V1Html => "application/vnd.pypi.simple.v1+html",
            SimpleFormat::TextHtml => "text/html",
        }
    }

    /// Whether the body is HTML (both HTML types have the same body).
    pub fn is_html(self) -> bool {
        !matches!(self, SimpleFormat::Json)
    }

    /// A format named by a media type (`?format=` values, upstream `Content-Type`): the three
    /// exact types and the `latest` aliases, parameters ignored, any case.
    pub fn from_media_type(media_type: &str) -> Option<SimpleFormat> {
        let essence = media_type.split(';').next().unwrap_or("").trim();
        SimpleFormat::ALL
            .into_iter()
            .find(|f| f.names().iter().any(|n| n.eq_ignore_ascii_case(essence)))
    }

    fn names(self) -> &'static [&'static str] {
        match self {
            SimpleFormat::Json => &[
                "application/vnd.pypi.simple.v1+json",
                "application/vnd.pypi.simple.latest+json",
            ],
            SimpleFormat::V1Html => &[
                "application/vnd.pypi.simple.v1+html",
                "application/vnd.pypi.simple.latest+html",
            ],
            SimpleFormat::TextHtml => &["text/html"],
        }
    }

    fn main_type(self) -> &'static str {
        match self {
            SimpleFormat::Json | SimpleFormat::V1Html => "application",
            SimpleFormat::TextHtml => "text",
        }
    }
}

/// Pick the representation for an `Accept` header (see the module doc).
pub fn negotiate(accept: Option<&str>) -> SimpleFormat {
    let Some(accept) = accept else {
        return SimpleFormat::TextHtml;
    };
    // Per offer: (specificity of the best-matching range, its q in thousandths).
    let mut best: [Option<(u8, u16)>; 3] = [None; 3];
    for range in accept.split(',').take(MAX_ACCEPT_RANGES) {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim();
        if media.is_empty() {
            continue;
        }
        let mut q = Some(1000u16);
        for param in parts {
            let Some((k, v)) = param.split_once('=') else {
                continue;
            };
            if k.trim().eq_ignore_ascii_case("q") {
                q = parse_q(v.trim());
            }
        }
        let Some(q) = q else { continue };
        let (mtype, subtype) = media.split_once('/').unwrap_or((media, ""));
        let (mtype, subtype) = (mtype.trim(), subtype.trim());
        for (i, offer) in SimpleFormat::ALL.into_iter().enumerate() {
            let specificity = if offer.names().iter().any(|n| n.eq_ignore_ascii_case(media)) {
                3
            } else if subtype == "*" && mtype.eq_ignore_ascii_case(offer.main_type()) {
                2
            } else if mtype == "*" && subtype == "*" {
                1
            } else {
                continue;
            };
            // The most specific range decides; among equally specific ranges the highest q.
            let better = match best[i] {
                None => true,
                Some((s, bq)) => specificity > s || (specificity == s && q > bq),
            };
            if better {
                best[i] = Some((specificity, q));
            }
        }
    }
    let mut winner: Option<(SimpleFormat, u16, bool)> = None;
    for (i, offer) in SimpleFormat::ALL.into_iter().enumerate() {
        let Some((specificity, q)) = best[i] else {
            continue;
        };
        if q == 0 {
            continue;
        }
        let explicit = specificity == 3;
        let better = match winner {
            None => true,
            // Earlier offers win ties (server preference), except that an explicit mention
            // beats a wildcard at equal q.
            Some((_, wq, wexplicit)) => q > wq || (q == wq && explicit && !wexplicit),
        };
        if better {
            winner = Some((offer, q, explicit));
        }
    }
    winner.map_or(SimpleFormat::TextHtml, |(f, _, _)| f)
}

/// RFC 9110 qvalue: `0`, `1`, `0.ddd`, `1.000`; anything else is invalid.
fn parse_q(v: &str) -> Option<u16> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut thousandths: u16 = 0;
    for b in frac.bytes().chain(std::iter::repeat(b'0')).take(3) {
        thousandths = thousandths * 10 + u16::from(b - b'0');
    }
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SimpleFormat::*;
    use proptest::prelude::*;

    const PIP: &str = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01";
    const UV: &str = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01";
    const POETRY: &str = "application/vnd.pypi.simple.v1+json, */*;q=0.1";

    #[test]
    fn content_types_exact() {
        assert_eq!(Json.content_type(), "application/vnd.pypi.simple.v1+json");
        assert_eq!(V1Html.content_type(), "application/vnd.pypi.simple.v1+html");
        assert_eq!(TextHtml.content_type(), "text/html");
    }

    /// PROTOCOLS §2.2 client headers and §5 case 28.
    #[test]
    fn negotiation_table() {
        let table: &[(Option<&str>, SimpleFormat)] = &[
            (Some(PIP), Json),
            (Some(UV), Json),
            (Some(POETRY), Json),
            (Some("application/vnd.pypi.simple.v1+json"), Json),
            (Some("application/vnd.pypi.simple.v1+html"), V1Html),
            (Some("text/html"), TextHtml),
            (None, TextHtml),
            (Some(""), TextHtml),
            (Some("application/vnd.pypi.simple.latest+json"), Json),
            (Some("application/vnd.pypi.simple.latest+html"), V1Html),
            (Some("application/xml"), TextHtml),
            (Some("application/json"), TextHtml),
            (Some("*/*"), Json),
            (Some("text/*"), TextHtml),
            (Some("application/*"), Json),
            (Some("text/html, */*"), TextHtml),
            (Some("text/html;q=0.9, */*;q=0.8"), TextHtml),
            (
                Some("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
                TextHtml,
            ),
            (Some("application/vnd.pypi.simple.v1+json;q=0, */*"), V1Html),
            (Some("*/*;q=0"), TextHtml),
            (
                Some("application/vnd.pypi.simple.v1+json;q=0.5, text/html"),
                TextHtml,
            ),
            (
                Some("APPLICATION/VND.PYPI.SIMPLE.V1+JSON;Q=0.5, text/html;q=0.4"),
                Json,
            ),
            (
                Some("application/vnd.pypi.simple.v1+json;q=abc, text/html"),
                TextHtml,
            ),
            (Some("application/vnd.pypi.simple.v1+json;q=1.5"), TextHtml),
            (
                Some(
                    "application/vnd.pypi.simple.v1+html;q=0.5, application/vnd.pypi.simple.v1+json;q=0.5",
                ),
                Json,
            ),
            (
                Some("text/html;q=0.5, application/vnd.pypi.simple.v1+html;q=0.5"),
                V1Html,
            ),
            // The most specific range decides, even with a lower q.
            (
                Some("application/vnd.pypi.simple.v1+json;q=0.1, */*"),
                V1Html,
            ),
            (Some(",,;;,"), TextHtml),
        ];
        for (accept, want) in table {
            assert_eq!(negotiate(*accept), *want, "{accept:?}");
        }
    }

    #[test]
    fn media_type_names() {
        assert_eq!(
            SimpleFormat::from_media_type("application/vnd.pypi.simple.v1+json; charset=utf-8"),
            Some(Json)
        );
        assert_eq!(
            SimpleFormat::from_media_type("Text/HTML; charset=utf-8"),
            Some(TextHtml)
        );
        assert_eq!(
            SimpleFormat::from_media_type("application/vnd.pypi.simple.latest+html"),
            Some(V1Html)
        );
        assert_eq!(SimpleFormat::from_media_type("application/json"), None);
    }

    #[test]
    fn qvalues() {
        assert_eq!(parse_q("1"), Some(1000));
        assert_eq!(parse_q("1.000"), Some(1000));
        assert_eq!(parse_q("0.01"), Some(10));
        assert_eq!(parse_q("0"), Some(0));
        assert_eq!(parse_q("0.1234"), None);
        assert_eq!(parse_q("1.5"), None);
        assert_eq!(parse_q("-1"), None);
        assert_eq!(parse_q(""), None);
    }

    proptest! {
        #[test]
        fn never_panics(accept in "\\PC{0,200}") {
            let _ = negotiate(Some(&accept));
        }

        #[test]
        fn single_exact_type_wins(q in 1u16..=1000, pick in 0usize..3) {
            let offer = SimpleFormat::ALL[pick];
            let header = format!("{}; q={}.{:03}", offer.content_type(), q / 1000, q % 1000);
            prop_assert_eq!(negotiate(Some(&header)), offer);
        }
    }
}
