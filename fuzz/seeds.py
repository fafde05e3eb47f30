#!/usr/bin/env python3
"""Write small seed inputs for every fuzz target into fuzz/corpus/<target>/seed-*.

Seeds are cut from the recorded registry fixtures (shared/fixtures/registry/) and the OSV
sample bundles (shared/osv/*/sample.zip, plus a few crates.io records from its all.zip):
real documents, reduced to a few versions or files so each seed stays a few KB. Input
layouts follow fuzz/src/lib.rs: `<selector byte><head line>\\n<body>` where a target reads
one. Standard library only. Usage: seeds.py SHARED_DIR CORPUS_DIR
"""

import gzip
import hashlib
import io
import json
import os
import re
import sys
import zipfile

MAX_SEED = 12 * 1024

NPM_FIXTURES = ["left-pad", "chalk", "lodash", "express", "babel__core", "vite", "angular__core"]
PYPI_FIXTURES = ["six", "python-dateutil", "requests", "urllib3", "django", "pytz"]
CARGO_FIXTURES = ["a", "cc", "serde", "syn", "tokio", "reqwest"]


def gz_text(path):
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return f.read()


class Corpus:
    def __init__(self, root):
        self.root = root
        self.counts = {}

    def add(self, target, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        if len(data) > MAX_SEED:
            return
        d = os.path.join(self.root, target)
        os.makedirs(d, exist_ok=True)
        name = "seed-" + hashlib.sha1(data).hexdigest()[:16]
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
        self.counts[target] = self.counts.get(target, 0) + 1


def framed(sel, head, body):
    if isinstance(head, str):
        head = head.encode("utf-8")
    if isinstance(body, str):
        body = body.encode("utf-8")
    return bytes([sel & 0xFF]) + head + b"\n" + body


def dumps(doc):
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


def shrink_npm(doc, keep):
    """A packument with `keep` versions (first and last ones), readme dropped."""
    versions = list(doc.get("versions", {}).keys())
    chosen = versions[: keep - 1] + versions[-1:] if len(versions) > keep else versions
    out = {}
    for k, v in doc.items():
        if k in ("readme", "users"):
            continue
        if k == "versions":
            out[k] = {}
            for ver in chosen:
                obj = dict(doc["versions"][ver])
                for big in ("readme", "description", "contributors", "maintainers", "_npmOperationalInternal"):
                    obj.pop(big, None)
                if isinstance(obj.get("dependencies"), dict) and len(obj["dependencies"]) > 4:
                    obj["dependencies"] = dict(list(obj["dependencies"].items())[:4])
                obj.pop("devDependencies", None)
                out[k][ver] = obj
        elif k == "time":
            out[k] = {t: v2 for t, v2 in v.items() if t in ("created", "modified") or t in chosen}
        elif k == "dist-tags":
            out[k] = dict(list(v.items())[:3])
        elif k in ("description", "maintainers", "keywords"):
            continue
        else:
            out[k] = v
    return out, chosen


def corgi(doc):
    """The abbreviated form of a (shrunk) full packument, as registries send it."""
    fields = ["name", "version", "dependencies", "optionalDependencies", "peerDependencies",
              "bin", "engines", "dist", "deprecated", "os", "cpu", "_hasShrinkwrap"]
    out = {"name": doc.get("name"), "dist-tags": doc.get("dist-tags", {}), "versions": {}}
    for ver, obj in doc.get("versions", {}).items():
        v = {k: obj[k] for k in fields if k in obj}
        if "scripts" in obj and any(s in obj["scripts"] for s in ("preinstall", "install", "postinstall")):
            v["hasInstallScript"] = True
        out["versions"][ver] = v
    out["modified"] = doc.get("time", {}).get("modified", "2024-01-01T00:00:00.000Z")
    return out


def npm_seeds(c, shared):
    versions_seen = []
    for fx in NPM_FIXTURES:
        path = os.path.join(shared, "fixtures/registry/npm", fx + ".full.json.gz")
        if not os.path.exists(path):
            continue
        doc = json.loads(gz_text(path))
        name = doc.get("name", fx)
        all_versions = list(doc.get("versions", {}).keys())
        versions_seen += all_versions[:6] + all_versions[-6:]
        for keep in (1, 3):
            small, chosen = shrink_npm(doc, keep)
            body = dumps(small)
            for sel in (0, 1, 6, 7):
                c.add("npm_packument", framed(sel, bytes([sel % 3]), body))
                c.add("npm_scan", framed(sel, bytes([sel * 37 % 256]), body))
            c.add("npm_packument", framed(0, b"\x00", dumps(corgi(small))))
            c.add("npm_scan", framed(0, b"\x00", dumps(corgi(small))))
        base = name.split("/", 1)[1] if name.startswith("@") else name
        esc = name.replace("/", "%2f")
        v = all_versions[-1] if all_versions else "1.0.0"
        for p in (f"/{esc}", f"/{name}", f"/{name.replace('/', '%2F')}", f"/{esc}/latest",
                  f"/{esc}/{v}", f"/{name}/-/{base}-{v}.tgz", f"/{esc}/-/{base}-{v}.tgz"):
            c.add("npm_path", p)
    for p in ("/-/ping", "/-/whoami", "/-/v1/search", "/-/npm/v1/security/advisories/bulk",
              "/-/pkggate/health", "/x/-/x-2.0.0-beta-2.tgz", "/%40s%2fn", "/a/%2e%2e",
              "/a/-rev/1", "/@s/n/-/n-1.0.0%2Bbuild.tgz", "/JSONStream"):
        c.add("npm_path", p)
    return versions_seen


def project_of(fx):
    return fx


def pep691_files(doc, n):
    files = doc.get("files", [])
    picked = files[:n] + files[-2:] if len(files) > n + 2 else files
    return picked


def pypi_seeds(c, shared):
    versions_seen = []
    for fx in PYPI_FIXTURES:
        jpath = os.path.join(shared, "fixtures/registry/pypi", fx + ".v1.json.gz")
        hpath = os.path.join(shared, "fixtures/registry/pypi", fx + ".v1.html.gz")
        if os.path.exists(jpath):
            doc = json.loads(gz_text(jpath))
            files = pep691_files(doc, 4)
            small = {k: v for k, v in doc.items() if k not in ("files", "versions")}
            small["files"] = files
            if "versions" in doc:
                vs = doc["versions"]
                small["versions"] = vs[:3] + vs[-2:]
                versions_seen += small["versions"]
            body = dumps(small)
            for sel in (0x00, 0x05, 0x09, 0x31, 0xE4):
                c.add("pypi_page", framed(sel, fx, body))
            for sel in (0x00, 0x03, 0x1C):
                c.add("pypi_scan", framed(sel, fx, body))
            # Legacy JSON API document built from the same files.
            releases = {}
            for f in files:
                m = re.match(r"^[^-]+(?:-[^-0-9][^-]*)*-([0-9][^-]*?)(?:\.tar\.gz|\.zip|\.tar\.bz2|-.*\.whl|\.whl)$", f["filename"])
                ver = m.group(1) if m else "0"
                releases.setdefault(ver, []).append({
                    "comment_text": "",
                    "digests": f.get("hashes", {}),
                    "filename": f["filename"],
                    "has_sig": f.get("gpg-sig", False),
                    "packagetype": "bdist_wheel" if f["filename"].endswith(".whl") else "sdist",
                    "python_version": "source",
                    "requires_python": f.get("requires-python"),
                    "size": f.get("size", 0),
                    "upload_time": (f.get("upload-time") or "2020-01-01T00:00:00Z")[:19],
                    "upload_time_iso_8601": f.get("upload-time"),
                    "url": f["url"],
                    "yanked": bool(f.get("yanked")),
                    "yanked_reason": f.get("yanked") if isinstance(f.get("yanked"), str) else None,
                })
            releases.setdefault("0.0.1.dev0", [])
            latest = list(releases)[-2] if len(releases) > 1 else list(releases)[0]
            legacy = {
                "info": {"name": fx, "version": latest, "summary": "seed",
                         "home_page": f"https://example.org/{fx}",
                         "project_urls": {"Source": f"https://github.com/example/{fx}"},
                         "requires_dist": None, "yanked": False},
                "last_serial": 123,
                "releases": releases,
                "urls": releases[latest],
                "vulnerabilities": [],
            }
            for sel in (0, 1, 6, 0x41):
                c.add("pypi_legacy", framed(sel, fx, dumps(legacy)))
            per_version = {k: v for k, v in legacy.items() if k != "releases"}
            c.add("pypi_legacy", framed(0, fx, dumps(per_version)))
            for f in doc.get("files", [])[:12]:
                c.add("pypi_filename", framed(0, fx, f["filename"]))
            c.add("pypi_filename", framed(0, fx.upper().replace("-", "_"), doc["files"][0]["filename"]))
        if os.path.exists(hpath):
            lines = gz_text(hpath).splitlines(keepends=True)
            anchors = [i for i, l in enumerate(lines) if "<a " in l]
            if anchors:
                keep = anchors[:4] + anchors[-1:]
                head = lines[: anchors[0]]
                tail = lines[anchors[-1] + 1:]
                body = "".join(head + [lines[i] for i in keep] + tail)
                for sel in (0x00, 0x02, 0x07, 0x0B, 0x33):
                    c.add("pypi_page", framed(sel, fx, body))
    for fn in ("pkg-1.0.tar.gz", "pkg-1.0-py3-none-any.whl", "pkg-1.0.win32.exe", "pkg-1.0-py2.7.egg",
               "pkg-1.0.linux-x86_64.tar.gz", "pkg-1.0.msi", "pkg-1.0.zip", "Pkg_Name-2.0rc1.tar.bz2"):
        c.add("pypi_filename", framed(0, "pkg" if not fn.startswith("Pkg") else "pkg-name", fn))

    root = os.path.join(shared, "fixtures/registry/pypi/root.v1.html.gz")
    if os.path.exists(root):
        with gzip.open(root, "rt", encoding="utf-8") as f:
            lines = [next(f) for _ in range(40)]
        names = [m.group(1) for m in (re.search(r'href="([^"/]+)/"', l) for l in lines) if m]
        for n, chunk_seed in ((12, b"a"), (40, b"bb"), (40, b"")):
            body = "".join(lines[:n]) + "</body></html>\n"
            for sel in (0, 1, 2):
                c.add("pypi_root", framed(sel, chunk_seed, body))
        br = "".join(f'<a href="/simple/{x}/">{x}</a><br/>\n' for x in names[:10])
        c.add("pypi_root", framed(0, b"c", "<html><body>\n" + br + "</body></html>"))
        j = {"meta": {"api-version": "1.1", "_last-serial": 1},
             "projects": [{"name": x, "_last-serial": 2} for x in names[:15]]}
        c.add("pypi_root", framed(0, b"", dumps(j)))

    for a in ("application/vnd.pypi.simple.v1+json",
              "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01",
              "text/html", "*/*", "application/*;q=0.5, text/*", "application/vnd.pypi.simple.latest+json",
              "text/html;q=0, */*;q=0.1", "application/json", ""):
        c.add("pypi_negotiate", a)
    return versions_seen


def cargo_seeds(c, shared):
    versions_seen = []
    for fx in CARGO_FIXTURES:
        path = os.path.join(shared, "fixtures/registry/cargo", fx + ".idx.gz")
        if not os.path.exists(path):
            continue
        lines = gz_text(path).splitlines(keepends=True)
        picked = lines[:3] + lines[-2:] if len(lines) > 5 else lines
        for sel in (0, 1, 2):
            c.add("cargo_index", bytes([sel]) + "".join(picked).encode())
        c.add("cargo_index", b"\x00" + "".join(picked).rstrip("\n").encode())
        for l in lines[:3] + lines[-3:]:
            try:
                versions_seen.append(json.loads(l)["vers"])
            except (ValueError, KeyError):
                pass
        n = fx.lower()
        p = {1: f"1/{n}", 2: f"2/{n}", 3: f"3/{n[0]}/{n}"}.get(len(n), f"{n[:2]}/{n[2:4]}/{n}")
        c.add("cargo_path", p)
    for p in ("se/rd/serde_json", "3/a/abc", "1/A", "../x", "to/ki/tokio-util"):
        c.add("cargo_path", p)
    return versions_seen


def osv_seeds(c, shared):
    bundles = [("npm", "sample.zip", None), ("PyPI", "sample.zip", None), ("crates.io", "all.zip", 24)]
    for eco, name, limit in bundles:
        path = os.path.join(shared, "osv", eco, name)
        if not os.path.exists(path):
            continue
        with zipfile.ZipFile(path) as z:
            entries = [i for i in z.infolist() if i.filename.endswith(".json")]
            if limit:
                # Spread over the bundle (MAL-, RUSTSEC-, GHSA- records).
                step = max(1, len(entries) // limit)
                entries = entries[::step][:limit]
            for info in entries:
                if info.file_size <= MAX_SEED:
                    c.add("osv_record", z.read(info))


def policy_seeds(c, repo):
    fx = os.path.join(repo, "crates/policy/tests/fixtures")
    if os.path.isdir(fx):
        for n in sorted(os.listdir(fx)):
            with open(os.path.join(fx, n), "rb") as f:
                c.add("policy_yaml", f.read())
    c.add("policy_yaml", "")
    c.add("policy_yaml", """mode: monitor
rule_modes: {min_package_age_days: enforce, block_cvss_score: monitor}
max_intel_age: 48h
min_package_age_days: 0.5
min_package_age_exempt: ["@corp/*", "internal-*"]
missing_publish_time: block
unknown_facts: block
internal_namespaces: ["@corp/*"]
allowlist:
  - {package: "left-pad@<2", reason: "pinned", expires: 2030-01-01}
  - "serde@1.0.100"
denylist:
  - package: "django@>=4,<4.2"
    expires: "2024-05-01T00:00:00Z"
  - "@scope/name@^1 || ^2"
ecosystems:
  crates.io: {max_cvss_score: 9.5, allowlist: ["tokio@^1"]}
  PyPI: {mode: enforce, denylist: ["requests@~=2.0"]}
""")


def version_seeds(c, npm_v, pypi_v, cargo_v):
    for eco, vs in ((0, npm_v), (1, pypi_v), (2, cargo_v)):
        vs = [v for v in vs if v] or ["1.0.0"]
        for i in range(0, min(len(vs), 24), 3):
            c.add("version", bytes([eco]) + "\n".join(vs[i:i + 3]).encode())
    for eco, triple in ((0, "v1.2.3\n=1.2.3\n1.2.3+build"), (1, "1.0\n1.0.0\n1.0.post1.dev2+local.7"),
                        (1, "2005k\n2004b.2\n1!2.0"), (2, "0.0.0-0\n1.0.0-alpha.1\n1.0.0+meta")):
        c.add("version", bytes([eco]) + triple.encode())


def main():
    shared, corpus = sys.argv[1], sys.argv[2]
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    c = Corpus(corpus)
    npm_v = npm_seeds(c, shared)
    pypi_v = pypi_seeds(c, shared)
    cargo_v = cargo_seeds(c, shared)
    osv_seeds(c, shared)
    policy_seeds(c, repo)
    version_seeds(c, npm_v, pypi_v, cargo_v)
    print("seeds: " + ", ".join(f"{t} {n}" for t, n in sorted(c.counts.items())))


if __name__ == "__main__":
    main()
