//! npm registry formats: request paths, package names, tarball file names and packuments
//! (full and abbreviated), read and rewritten without ever building a JSON tree.
//!
//! Pure and deterministic: no IO, no clocks. The app does HTTP and calls in here.
//!
//! # Paths ([`parse_path`])
//!
//! * `parse_path(raw_path) -> Result<NpmRoute, NpmPathError>`: the raw, still
//!   percent-encoded path without query. Routes:
//!   [`NpmRoute::Packument`] `{name}` (`/n`, `/@s%2fn`, `/@s%2Fn`, `/@s/n`, `/%40s%2fn`),
//!   [`NpmRoute::VersionOrTag`] `{name, spec}` (`/n/1.0.0`, `/n/latest`),
//!   [`NpmRoute::Tarball`] `{name, filename, version}` (`/n/-/n-1.0.0.tgz`,
//!   `/@s/n/-/n-1.0.0.tgz`, `/@s%2fn/-/n-1.0.0.tgz`), and [`NpmRoute::Special`]`(rest)` for
//!   `/-/<rest>` (`ping`, `whoami`, `v1/search`, `npm/v1/security/advisories/bulk`,
//!   `pkggate/health`…; `rest` stays percent-encoded, for forwarding). Each segment is
//!   decoded once; refused with a typed error quoting the input: `%25`, `.`/`..` (also
//!   `%2e%2e`, also inside a `%2f`-joined segment), empty segments, `\`, control and
//!   non-path characters, invalid names, and tarballs not named `<base>-<version>.tgz`
//!   (the version is never guessed: `x-2.0.0-beta-2.tgz` for `x` is `2.0.0-beta-2`).
//!   Names are never lower-cased (`JSONStream`). Write routes (`/n/-rev/…`) are
//!   [`NpmPathError::UnknownRoute`].
//! * [`validate_name`]`(name) -> Result<(), InvalidName>`: npm's name rules (≤ 214 chars,
//!   URL-safe characters, no leading `.`/`_` unscoped, `@scope/name`).
//! * [`base_name`]`("@s/n") == "n"`; [`escaped_name`]`("@s/n") == "@s%2fn"` (upstream URL);
//!   [`tarball_version`]`(name, filename) -> Option<&str>`;
//!   [`tarball_filename`]`(name, version)`; [`tarball_url`]`(base, name, version)` =
//!   `{base}/{name}/-/{base_name}-{version}.tgz` (version percent-encoded where needed;
//!   [`parse_path`] reads it back).
//!
//! # Packuments ([`Packument`])
//!
//! * [`Packument::parse`]`(&[u8]) -> Result<Packument<'_>, NpmDocError>` borrows every value
//!   (`&RawValue`, keys as `Cow<str>`), keeps top-level order, refuses duplicate keys (top
//!   level, `versions`, `time`, `dist-tags`, each version, its `dist`/`scripts`/
//!   `repository`), non-object `versions`/version values, non-string tags. A removed package
//!   (`{"dist-tags":{},"versions":{},"time":{}}`) parses with zero versions.
//! * Accessors: `name()`, `is_abbreviated()`, `version_count()`, `versions()` (document
//!   order), `has_version(v)`, `dist_tags()`, `dist_tag(t)`, `time(key)`, `created()`,
//!   `modified()` (`time.modified`, else top-level `modified`), `version_raw(v)`,
//!   `resolve(spec)` (version key, else tag; unfiltered).
//! * Facts for the policy: `version_facts(v) -> Result<Option<VersionFacts>>`,
//!   `facts() -> Result<Vec<VersionFacts>>` (also in parts, e.g. on two threads:
//!   `facts_part(range) -> FactsPart`, `join_facts(parts)`, same result),
//!   `summary() -> Result<PackageFacts>`, and
//!   [`facts_only`]`(bytes)`. [`VersionFacts`]: `version`, `published` (raw `time[v]`),
//!   `install_scripts`, `has_install_script` (`None` only when an abbreviated doc does not
//!   say), `repository`, `deprecated`, `tarball_url`, `integrity`, `shasum`.
//! * [`Packument::render`]`(&RenderOptions { removed, tarball_base, representation }) ->
//!   Result<Rendered, NpmDocError>`: drops removed versions from `versions` and `time`,
//!   retargets dist-tags ([`retarget_dist_tags`]), rewrites each kept `dist.tarball` to
//!   [`tarball_url`], keeps every other byte of kept values, derives the corgi form for
//!   [`Representation::Abbreviated`] from a full upstream. [`Rendered`] has `bytes`,
//!   `removed`, `kept`, `dist_tags`, `representation`. No version left →
//!   [`NpmDocError::NoVersionsLeft`] `{name, removed, total}` (403 with reason; 404 when
//!   `total == 0`). [`filter_document`] = parse + render. [`Packument::render_into`] renders
//!   into a buffer prepared ahead (of [`Packument::render_capacity`] bytes, usually enough).
//! * `GET /<name>/<version-or-tag>`: [`Packument::render_version`]`(opts, spec) ->
//!   Result<Option<Vec<u8>>>` straight from the upstream document (filtered and
//!   retargeted), or [`extract_version`]`(rendered_bytes, spec)` from an already rendered
//!   full document. `None` → 404.
//! * [`Representation::from_accept`]`(Option<&str>)`, `content_type()`, `as_str()`.
//!
//! # Reading a packument while it arrives ([`PackumentScanner`])
//!
//! * [`PackumentScanner`]: a resumable, validating JSON scanner fed the body so far after
//!   every chunk ([`PackumentScanner::feed`]; it reads only the new bytes), then
//!   [`finish`](PackumentScanner::finish)`(body)`: a [`PackumentScan`] (offsets of the
//!   top-level members, the versions and their members) or `None`.
//! * [`Packument::parse_scanned`]`(bytes, Option<&PackumentScan>)`: exactly
//!   [`Packument::parse`]'s result (document or error) without reading `versions` again;
//!   without a scan, or when the scanner did not take the document (invalid JSON, `versions`
//!   not an object of objects, over 4 GiB…), it is [`Packument::parse`], which stays the
//!   reference (differential tests over the recorded fixtures, generated and mutated
//!   documents in any chunking, and the `npm_scan` fuzz target).
//!
//! Cost: the document is scanned once: [`Packument::parse`] splits `versions` into versions
//! and each version into its members in the same pass (an empty version object makes it fall
//! back to a plain read, same result), or the app scans it while it arrives and
//! [`Packument::parse_scanned`] only checks UTF-8 and reads `time`/`dist-tags`;
//! [`Packument::facts`] then reads only the small nested objects (`dist`, `scripts`,
//! `repository`, split without a second validation since the document is valid JSON) and
//! remembers where each `dist.tarball` is, so a following full [`Packument::render`] only
//! copies slices into one pre-sized buffer. For `next` (21 MB, 2,627 versions) in release
//! builds: the scan takes about 10 ms (while the document arrives, in the app), then
//! `parse_scanned` about 2–3 ms, facts 3–4 ms and a full render 2–3 ms, with peak memory
//! about twice the document (see the ignored tests `npm::fixture_tests::bench_next`, which
//! prints each phase, and `profile_next_once`, one cold pass for a profiler).

mod packument;
mod path;
mod raw;
mod scan;
mod tags;

#[cfg(test)]
mod fixture_tests;

pub use packument::{
    CORGI_VERSION_FIELDS, FactsPart, GYPFILE_LABEL, NpmDocError, PackageFacts, Packument,
    RenderOptions, Rendered, Representation, VersionFacts, extract_version, facts_only,
    filter_document,
};
pub use path::{
    InvalidName, MAX_NAME_LEN, MAX_SPEC_LEN, NpmPathError, NpmRoute, base_name, escaped_name,
    parse_path, tarball_filename, tarball_url, tarball_version, validate_name,
};
pub use scan::{PackumentScan, PackumentScanner};
pub use tags::{LATEST, retarget_dist_tags};
