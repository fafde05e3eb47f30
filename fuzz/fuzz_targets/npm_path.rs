//! `npm::parse_path` on arbitrary request paths.
//!
//! Checks: no panic; a routed name passes `validate_name`; a tarball route's version is
//! `tarball_version(name, filename)` and `tarball_filename(name, version) == filename`; the
//! proxy's own URLs read back: `parse_path(tarball_url("", name, version))` is the same
//! tarball route, and `parse_path("/" + escaped_name(name))` is the packument route.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pkggate_formats::npm::{
    NpmRoute, escaped_name, parse_path, tarball_filename, tarball_url, tarball_version,
    validate_name,
};

fuzz_target!(|data: &[u8]| {
    let Ok(path) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(route) = parse_path(path) else {
        return;
    };
    if let Some(name) = route.name() {
        assert!(
            validate_name(name).is_ok(),
            "{path:?} routed invalid name {name:?}"
        );
        let packument = format!("/{}", escaped_name(name));
        assert_eq!(
            parse_path(&packument).ok(),
            Some(NpmRoute::Packument {
                name: name.to_string()
            }),
            "{path:?}: packument path {packument:?} does not read back"
        );
    }
    if let NpmRoute::Tarball {
        name,
        filename,
        version,
    } = &route
    {
        assert_eq!(
            tarball_version(name, filename),
            Some(version.as_str()),
            "{path:?}"
        );
        assert_eq!(&tarball_filename(name, version), filename, "{path:?}");
        let url = tarball_url("", name, version);
        assert_eq!(
            parse_path(&url).as_ref(),
            Ok(&route),
            "{path:?}: tarball_url {url:?} does not read back"
        );
    }
});
