//! Per-version facts for the policy: publish time (earliest file upload) and yank state.

use super::time::UploadTime;
use crate::{EcoVersion, Ecosystem};
use std::collections::HashMap;

/// What one version's files say.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VersionFacts {
    /// The version as first spelled (the PEP 700 `versions` entry, else the first file's).
    pub version: String,
    /// Files of this version (0 for a version listed without files).
    pub files: usize,
    /// Files flagged yanked.
    pub yanked_files: usize,
    /// The earliest valid upload time among the files: the version's publish time. `None`
    /// when no file carries a parsable one.
    pub earliest_upload: Option<UploadTime>,
}

impl VersionFacts {
    /// Every file is yanked (false for a version without files).
    pub fn all_yanked(&self) -> bool {
        self.files > 0 && self.yanked_files == self.files
    }
}

/// Facts for every version of a project. Lookups compare versions in PEP 440 normal form
/// (`1.0` finds `1.0.0`), non-PEP 440 versions by exact string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProjectFacts {
    /// In order of first appearance.
    pub versions: Vec<VersionFacts>,
    /// Files whose version could not be derived from the filename.
    pub unknown_version_files: usize,
    /// The latest valid upload time among those files. They are decided together (as one
    /// pseudo-version) and each may be a different release, so the youngest stands for all:
    /// a minimum-age rule holds them back while any of them is too young.
    pub unknown_version_latest_upload: Option<UploadTime>,
    index: HashMap<String, usize>,
}

pub(crate) fn version_key(v: &str) -> String {
    EcoVersion::parse(Ecosystem::PyPI, v).key()
}

impl ProjectFacts {
    pub fn get(&self, version: &str) -> Option<&VersionFacts> {
        self.index
            .get(&version_key(version))
            .and_then(|&i| self.versions.get(i))
    }

    pub(crate) fn add_listed(&mut self, version: &str) {
        self.slot(version);
    }

    pub(crate) fn add_file(&mut self, version: Option<&str>, yanked: bool, upload: Option<&str>) {
        let slot = version.map(|v| self.slot(v));
        self.add_file_at(slot, yanked, upload);
    }

    /// [`ProjectFacts::add_file`] with the version's slot already known (`None` = unknown).
    pub(crate) fn add_file_at(&mut self, slot: Option<usize>, yanked: bool, upload: Option<&str>) {
        let upload = upload.and_then(|raw| Some((UploadTime::instant(raw)?, raw)));
        self.add_file_instant(slot, yanked, upload, |raw| Some(raw.to_string()));
    }

    /// [`ProjectFacts::add_file_at`] with the upload time already parsed (`None` = absent or
    /// invalid); `raw` gives its text, asked only when it becomes the earliest.
    pub(crate) fn add_file_instant<R>(
        &mut self,
        slot: Option<usize>,
        yanked: bool,
        upload: Option<((i64, u32), R)>,
        raw: impl FnOnce(R) -> Option<String>,
    ) {
        let Some(i) = slot else {
            self.unknown_version_files += 1;
            if let Some((t, r)) = upload {
                let later = self
                    .unknown_version_latest_upload
                    .as_ref()
                    .is_none_or(|l| t > (l.unix_seconds, l.nanos));
                if later && let Some(raw) = raw(r) {
                    self.unknown_version_latest_upload = Some(UploadTime {
                        raw,
                        unix_seconds: t.0,
                        nanos: t.1,
                    });
                }
            }
            return;
        };
        let Some(f) = self.versions.get_mut(i) else {
            return;
        };
        f.files += 1;
        if yanked {
            f.yanked_files += 1;
        }
        if let Some((t, r)) = upload {
            let earlier = f
                .earliest_upload
                .as_ref()
                .is_none_or(|e| t < (e.unix_seconds, e.nanos));
            if earlier && let Some(raw) = raw(r) {
                f.earliest_upload = Some(UploadTime {
                    raw,
                    unix_seconds: t.0,
                    nanos: t.1,
                });
            }
        }
    }

    pub(crate) fn slot(&mut self, version: &str) -> usize {
        let key = version_key(version);
        self.slot_keyed(version, &key)
    }

    /// [`ProjectFacts::slot`] with the version's [`version_key`] already computed.
    pub(crate) fn slot_keyed(&mut self, version: &str, key: &str) -> usize {
        if let Some(&i) = self.index.get(key) {
            return i;
        }
        let key = key.to_string();
        self.versions.push(VersionFacts {
            version: version.to_string(),
            files: 0,
            yanked_files: 0,
            earliest_upload: None,
        });
        let i = self.versions.len() - 1;
        self.index.insert(key, i);
        i
    }
}

#[cfg(test)]
mod tests {
    use super::ProjectFacts;

    #[test]
    fn files_of_unknown_version_count_and_keep_their_latest_upload() {
        let mut f = ProjectFacts::default();
        for upload in [
            Some("2021-03-01T00:00:00Z"),
            Some("2022-01-01T00:00:00.5Z"),
            Some("not a time"),
            None,
            Some("2020-01-01T00:00:00Z"),
        ] {
            f.add_file(None, false, upload);
        }
        f.add_file(Some("1.0"), false, Some("2023-01-01T00:00:00Z"));
        assert_eq!(f.unknown_version_files, 5);
        let latest = f.unknown_version_latest_upload.as_ref().unwrap();
        assert_eq!(latest.raw, "2022-01-01T00:00:00.5Z");
        assert_eq!(latest.nanos, 500_000_000);
        assert_eq!(f.get("1.0").unwrap().files, 1);
        let mut none = ProjectFacts::default();
        none.add_file(None, false, Some("bad"));
        assert_eq!(none.unknown_version_latest_upload, None);
    }
}
