//! `dist-tags` after filtering: no tag may point at a missing version.

use crate::{EcoVersion, Ecosystem};
use std::cmp::Ordering;
use std::collections::HashSet;

/// The tag every package has and clients resolve by default.
pub const LATEST: &str = "latest";

/// The dist-tags once only `kept` versions (in document order) remain.
///
/// * A tag whose target is kept stays as is, in its original position.
/// * `latest` whose target is gone (removed, or never in `versions`) is retargeted to the
///   highest kept version by npm semver (loose parse) that is not a prerelease; if none is
///   stable, the highest prerelease; if no kept version parses as semver, the last kept
///   version in document order. It is only dropped when nothing is kept.
/// * Any other tag whose target is gone is dropped.
///
/// Invalid semver versions never win a retarget while a valid one is kept. No tag in the
/// result points outside `kept`.
pub fn retarget_dist_tags<K: AsRef<str>, V: AsRef<str>>(
    tags: &[(K, V)],
    kept: &[&str],
) -> Vec<(String, String)> {
    let kept_set: HashSet<&str> = kept.iter().copied().collect();
    let mut out = Vec::with_capacity(tags.len());
    for (tag, target) in tags {
        let (tag, target) = (tag.as_ref(), target.as_ref());
        if kept_set.contains(target) {
            out.push((tag.to_string(), target.to_string()));
        } else if tag == LATEST
            && let Some(best) = best_latest(kept)
        {
            out.push((tag.to_string(), best.to_string()));
        }
    }
    out
}

/// Highest stable kept version, else highest prerelease, else the last kept version.
pub(crate) fn best_latest<'k>(kept: &[&'k str]) -> Option<&'k str> {
    let mut best_stable: Option<(EcoVersion, &str)> = None;
    let mut best_pre: Option<(EcoVersion, &str)> = None;
    for &v in kept {
        let parsed = EcoVersion::parse(Ecosystem::Npm, v);
        if !parsed.is_parsed() {
            continue;
        }
        let slot = if parsed.is_prerelease() {
            &mut best_pre
        } else {
            &mut best_stable
        };
        let better = match slot {
            None => true,
            Some((cur, _)) => parsed.compare(cur) == Some(Ordering::Greater),
        };
        if better {
            *slot = Some((parsed, v));
        }
    }
    best_stable
        .or(best_pre)
        .map(|(_, v)| v)
        .or_else(|| kept.last().copied())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn retargeting_table() {
        // (upstream tags, kept versions in document order, expected tags)
        type Case<'a> = (
            &'a [(&'a str, &'a str)],
            &'a [&'a str],
            &'a [(&'a str, &'a str)],
        );
        let table: &[Case] = &[
            // latest kept: unchanged
            (
                &[("latest", "1.1.0")],
                &["1.0.0", "1.1.0"],
                &[("latest", "1.1.0")],
            ),
            // latest removed → highest remaining stable by semver, not by string
            (
                &[("latest", "10.0.0")],
                &["9.0.0", "1.0.0", "2.0.0"],
                &[("latest", "9.0.0")],
            ),
            (
                &[("latest", "11.0.0")],
                &["9.0.0", "10.0.0"],
                &[("latest", "10.0.0")],
            ),
            // prereleases are skipped while a stable version remains
            (
                &[("latest", "2.0.0")],
                &["1.0.0", "3.0.0-rc.1", "1.5.0"],
                &[("latest", "1.5.0")],
            ),
            // only prereleases left → highest prerelease (semver order, not string)
            (
                &[("latest", "2.0.0")],
                &["3.0.0-beta.2", "3.0.0-beta.10", "3.0.0-alpha.99"],
                &[("latest", "3.0.0-beta.10")],
            ),
            // loose forms compare as semver
            (
                &[("latest", "3.0.0")],
                &["v2.0.0", "1.0.0"],
                &[("latest", "v2.0.0")],
            ),
            // invalid semver ignored while valid ones remain
            (
                &[("latest", "3.0.0")],
                &["not-a-version", "1.0.0", "zzz"],
                &[("latest", "1.0.0")],
            ),
            // nothing parses → last kept in document order
            (&[("latest", "x3")], &["x1", "x2"], &[("latest", "x2")]),
            // other tags pointing at removed versions are dropped; order kept
            (
                &[
                    ("next", "3.0.0-rc.1"),
                    ("latest", "2.0.0"),
                    ("beta", "2.1.0-beta.1"),
                ],
                &["1.0.0", "2.0.0", "2.1.0-beta.1"],
                &[("latest", "2.0.0"), ("beta", "2.1.0-beta.1")],
            ),
            (
                &[("latest", "2.0.0"), ("next", "2.0.0")],
                &["1.0.0"],
                &[("latest", "1.0.0")],
            ),
            // a tag pointing at a version upstream never listed is dropped too
            (&[("legacy", "0.0.1")], &["1.0.0"], &[]),
            // build metadata ties: first in document order wins
            (
                &[("latest", "9.9.9")],
                &["1.0.0+a", "1.0.0+b"],
                &[("latest", "1.0.0+a")],
            ),
            // nothing kept → no tags at all
            (&[("latest", "1.0.0"), ("next", "1.0.0")], &[], &[]),
            // no latest upstream → none invented
            (&[("next", "1.0.0")], &["2.0.0"], &[]),
        ];
        for (upstream, kept, want) in table {
            assert_eq!(
                retarget_dist_tags(&tags(upstream), kept),
                tags(want),
                "{upstream:?} kept {kept:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn no_tag_points_at_a_missing_version(
            versions in prop::collection::vec("[0-9]\\.[0-9]{1,2}\\.[0-9](-(rc|beta)\\.[0-9])?|[a-z]{1,3}", 0..20),
            keep_mask in prop::collection::vec(any::<bool>(), 20),
            tag_targets in prop::collection::vec(0usize..25, 0..5),
        ) {
            let kept: Vec<&str> = versions.iter().zip(&keep_mask).filter(|(_, k)| **k).map(|(v, _)| v.as_str()).collect();
            let mut upstream: Vec<(String, String)> = tag_targets.iter().enumerate().map(|(i, t)| {
                let target = versions.get(*t).cloned().unwrap_or_else(|| "99.0.0".into());
                (if i == 0 { "latest".to_string() } else { format!("t{i}") }, target)
            }).collect();
            upstream.dedup_by(|a, b| a.0 == b.0);
            let out = retarget_dist_tags(&upstream, &kept);
            for (_, target) in &out {
                prop_assert!(kept.contains(&target.as_str()));
            }
            if !kept.is_empty() && !upstream.is_empty() {
                prop_assert!(out.iter().any(|(t, _)| t == "latest"));
            }
        }
    }
}
