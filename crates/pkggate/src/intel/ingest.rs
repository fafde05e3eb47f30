//! Reading OSV records out of a bundle, one at a time.
//!
//! A record that fails to parse is skipped and counted; a bundle that cannot be read (not a
//! zip, truncated, a CRC error in any entry) is an error for the whole refresh, so the store
//! rolls back and the previous data keeps serving.

use super::source::LocalBundle;
use super::store::BundleItem;
use pkggate_formats::osv::parse_advisory;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Largest single OSV record read (decompressed). Larger entries are skipped.
pub const MAX_RECORD_BYTES: u64 = 32 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("bundle {path} is not a readable zip: {message}")]
    Zip { path: String, message: String },
    #[error("bundle {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Iterates the records of a bundle.
pub struct Records {
    inner: Inner,
    buf: Vec<u8>,
}

enum Inner {
    Zip {
        path: PathBuf,
        archive: zip::ZipArchive<File>,
        next: usize,
    },
    Dir {
        files: std::vec::IntoIter<PathBuf>,
    },
}

impl Records {
    pub fn open(bundle: &LocalBundle) -> Result<Records, IngestError> {
        let inner = match bundle {
            LocalBundle::Dir(dir) => Inner::Dir {
                files: json_files(dir)?.into_iter(),
            },
            LocalBundle::Zip(_) | LocalBundle::TempZip(_) => {
                let path = bundle.path().to_path_buf();
                let file = File::open(&path).map_err(|source| IngestError::Io {
                    path: path.display().to_string(),
                    source,
                })?;
                let archive = zip::ZipArchive::new(file).map_err(|e| IngestError::Zip {
                    path: path.display().to_string(),
                    message: e.to_string(),
                })?;
                Inner::Zip {
                    path,
                    archive,
                    next: 0,
                }
            }
        };
        Ok(Records {
            inner,
            buf: Vec::with_capacity(64 * 1024),
        })
    }

    /// Number of entries (zip entries or JSON files), for progress.
    pub fn len_hint(&self) -> usize {
        match &self.inner {
            Inner::Zip { archive, .. } => archive.len(),
            Inner::Dir { files } => files.len(),
        }
    }
}

impl Records {
    /// Read the next JSON entry into `self.buf`: `Some(Ok(name))`, `Some(Err(fatal))`, or
    /// `None` at the end.
    fn read_next(&mut self) -> Option<Result<String, String>> {
        self.buf.clear();
        match &mut self.inner {
            Inner::Zip {
                path,
                archive,
                next,
            } => loop {
                if *next >= archive.len() {
                    return None;
                }
                let i = *next;
                *next += 1;
                let mut entry = match archive.by_index(i) {
                    Ok(e) => e,
                    Err(e) => {
                        return Some(Err(format!("bundle {}: entry {i}: {e}", path.display())));
                    }
                };
                let name = match entry.name() {
                    Ok(n) => n.to_string(),
                    Err(e) => {
                        return Some(Err(format!("bundle {}: entry {i}: {e}", path.display())));
                    }
                };
                if entry.is_dir() || !name.ends_with(".json") {
                    continue;
                }
                if entry.size() > MAX_RECORD_BYTES {
                    return Some(Ok(name));
                }
                if let Err(e) = (&mut entry)
                    .take(MAX_RECORD_BYTES + 1)
                    .read_to_end(&mut self.buf)
                {
                    return Some(Err(format!("bundle {}: entry {name}: {e}", path.display())));
                }
                return Some(Ok(name));
            },
            Inner::Dir { files } => {
                let file = files.next()?;
                let name = file.display().to_string();
                let r = File::open(&file)
                    .and_then(|f| f.take(MAX_RECORD_BYTES + 1).read_to_end(&mut self.buf));
                Some(r.map(|_| name.clone()).map_err(|e| format!("{name}: {e}")))
            }
        }
    }
}

impl Iterator for Records {
    type Item = Result<BundleItem, String>;

    fn next(&mut self) -> Option<Self::Item> {
        let name = match self.read_next()? {
            Ok(name) => name,
            Err(fatal) => return Some(Err(fatal)),
        };
        if self.buf.is_empty() || self.buf.len() as u64 > MAX_RECORD_BYTES {
            let why = if self.buf.is_empty() {
                "empty or too large".to_string()
            } else {
                format!("larger than {MAX_RECORD_BYTES} bytes")
            };
            return Some(Ok(BundleItem::Skipped(format!("{name}: {why}"))));
        }
        Some(Ok(match parse_advisory(&name, &self.buf) {
            Ok(a) => BundleItem::Record(Box::new(a)),
            Err(e) => BundleItem::Skipped(e.to_string()),
        }))
    }
}

fn io_err(p: &Path) -> impl Fn(std::io::Error) -> IngestError + '_ {
    move |source| IngestError::Io {
        path: p.display().to_string(),
        source,
    }
}

/// Every `*.json` file below `dir`, sorted (deterministic order and revision).
pub fn json_files(dir: &Path) -> Result<Vec<PathBuf>, IngestError> {
    let io = io_err;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(io(&d))? {
            let entry = entry.map_err(io(&d))?;
            let ft = entry.file_type().map_err(io(&d))?;
            let p = entry.path();
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_file() && p.extension().is_some_and(|e| e == "json") {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Revision of a directory source: sha256 over each file's relative path, length and
/// content. Files are streamed through the hash (a file of any size costs one buffer).
pub fn dir_revision(dir: &Path) -> Result<String, IngestError> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    for f in json_files(dir)? {
        let io = |source| IngestError::Io {
            path: f.display().to_string(),
            source,
        };
        let rel = f.strip_prefix(dir).unwrap_or(&f);
        hasher.update(rel.to_string_lossy().as_bytes());
        hasher.update([0]);
        let mut file = std::fs::File::open(&f).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        hasher.update(len.to_le_bytes());
        loop {
            let n = file.read(&mut buf).map_err(io)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
    }
    Ok(hex::encode(hasher.finalize()))
}
