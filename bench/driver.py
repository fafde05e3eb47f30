#!/usr/bin/env python3
"""Driver of bench/run: the fake upstream, the contestants, the scenarios, the results.

Started by bench/run (which installs the tools and builds pkggate). Everything listens on
127.0.0.1 at free ports; every process started here is stopped on exit, error or Ctrl-C.
"""

import argparse
import atexit
import base64
import datetime
import gzip
import hashlib
import http.client
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

A = argparse.ArgumentParser()
A.add_argument("--root", required=True)
A.add_argument("--tools", required=True)
A.add_argument("--work", required=True)
A.add_argument("--quick", action="store_true")
A.add_argument("--no-build", action="store_true")
A.add_argument("--no-write", action="store_true")
A.add_argument("--only", default="")
A.add_argument("--reps", type=int, default=0)
A.add_argument("--profile", action="store_true",
               help="callgrind profiles of pkggate's hot paths (cold big document, artifact streaming, "
                    "PyPI root) into .bench/profile/")
A.add_argument("--report-only", action="store_true",
               help="re-render docs/benchmarks.md's section and the plot from bench/results/latest.json")
ARGS = A.parse_args()

ROOT = ARGS.root
TOOLS = ARGS.tools
WORK = ARGS.work
BENCH = os.path.join(ROOT, "bench")
SHARED = os.path.normpath(os.path.join(ROOT, "..", "shared"))
QUICK = ARGS.quick
ONLY = set(s for s in ARGS.only.split(",") if s)
REPS = ARGS.reps or (1 if QUICK else 3)
WRK_SECONDS = 1 if QUICK else 3
LOAD_SECONDS = 8 if QUICK else 60
LOAD_CONNECTIONS = 500
PKGGATE_BIN = os.path.join(WORK, "bin", "pkggate")
VERDACCIO_JS = os.path.join(TOOLS, "verdaccio", "node_modules", "verdaccio", "bin", "verdaccio")
VENV_BIN = os.path.join(TOOLS, "venv", "bin")
DEVPI_VERSION = "6.20.3"
T_START = time.time()
MIB = 1024 * 1024

# The malicious npm version used for "first correct block" (an OSV MAL- record in
# ../shared/osv/npm/all.zip with an explicit version).
MAL_NPM = ("atez", "1.0.0", "MAL-2022-1153")

ACCEPT_NPM = "application/json"
ACCEPT_PYPI_JSON = "application/vnd.pypi.simple.v1+json"
ACCEPT_PYPI_HTML = "text/html"


def want(s):
    return not ONLY or s in ONLY


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')} +{time.time() - T_START:5.0f}s] {msg}", flush=True)


# ---------------------------------------------------------------- processes -----------

PROCS = []


def spawn(cmd, logfile, env=None, cwd=None):
    f = open(logfile, "ab")
    p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         env=env, cwd=cwd, start_new_session=True)
    f.close()
    PROCS.append(p)
    return p


def stop_proc(p, timeout=15):
    if p is None:
        return
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(5)
    # Children left in the group (nginx workers exit with their master).
    try:
        os.killpg(p.pid, 0)
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if p in PROCS:
        PROCS.remove(p)


def stop_all():
    for p in list(reversed(PROCS)):
        try:
            stop_proc(p, timeout=10)
        except Exception as e:  # keep stopping the others
            print(f"stop {p.pid}: {e}", file=sys.stderr)


atexit.register(stop_all)


def _on_signal(signum, frame):
    log(f"signal {signum}: stopping everything")
    stop_all()
    sys.exit(130)


signal.signal(signal.SIGINT, _on_signal)
signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGHUP, _on_signal)


def stable_port(preferred):
    """`preferred` when free (so that state keyed by the fake upstream's address, such as
    devpi's initialised server directory, can be reused across runs), else any free port."""
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", preferred))
        return preferred
    except OSError:
        return free_port()
    finally:
        s.close()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


# ---------------------------------------------------------------- HTTP ---------------

def http_get(url, headers=None, timeout=120, method="GET"):
    """(status, headers, body, seconds) over a new connection."""
    u = urllib.parse.urlsplit(url)
    path = u.path + ("?" + u.query if u.query else "")
    t = time.perf_counter()
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        c.request(method, path, headers=headers or {})
        r = c.getresponse()
        body = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body, time.perf_counter() - t
    finally:
        c.close()


def wait_until(what, pred, timeout, interval=0.05):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            if pred():
                return
        except Exception as e:
            last = e
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what} (last error: {last})")


def url_ok(url, headers=None):
    def f():
        s, _, _, _ = http_get(url, headers, timeout=5)
        return 200 <= s < 300
    return f


# ---------------------------------------------------------------- memory -------------

def descendants(pid):
    out = [pid]
    i = 0
    while i < len(out):
        p = out[i]
        i += 1
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as f:
                    out.extend(int(x) for x in f.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            pass
    return out


def status_kib(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def cpu_ticks(pid):
    total = 0
    for p in descendants(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                parts = f.read().rsplit(")", 1)[1].split()
            total += int(parts[11]) + int(parts[12])
        except (FileNotFoundError, ProcessLookupError, IndexError):
            pass
    return total


def wait_idle(c, timeout=60):
    """Wait until the contestant has finished work left over from a measurement (a server
    that queues requests keeps serving them after the client has gone): < 5 % of a core
    over 300 ms."""
    if not c.pid:
        return 0
    hz = os.sysconf("SC_CLK_TCK")
    t0 = time.time()
    while time.time() - t0 < timeout:
        a = cpu_ticks(c.pid)
        time.sleep(0.3)
        if (cpu_ticks(c.pid) - a) / hz < 0.015:
            return time.time() - t0
    return time.time() - t0


class Rss:
    """Peak resident memory of a process tree during a measurement: VmHWM (reset through
    clear_refs at the start) for a single process, sampled VmRSS (every 20 ms) otherwise;
    the larger of the two is reported."""

    def __init__(self, pid):
        self.pids = descendants(pid) if pid else []
        self.before = sum(status_kib(p, "VmRSS") for p in self.pids)
        for p in self.pids:
            try:
                with open(f"/proc/{p}/clear_refs", "w") as f:
                    f.write("5")
            except OSError:
                pass
        self.peak = self.before
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._loop, daemon=True)
        if self.pids:
            self._t.start()

    def _loop(self):
        while not self._stop.wait(0.02):
            s = sum(status_kib(p, "VmRSS") for p in self.pids)
            self.peak = max(self.peak, s)

    def done(self):
        if not self.pids:
            return {}
        self._stop.set()
        if self.pids:
            self._t.join()
        after = sum(status_kib(p, "VmRSS") for p in self.pids)
        hwm = sum(status_kib(p, "VmHWM") for p in self.pids)
        peak = max(self.peak, after, hwm if len(self.pids) == 1 else 0)
        return {"rss_before_mib": round(self.before / 1024, 1),
                "rss_peak_mib": round(peak / 1024, 1),
                "rss_after_mib": round(after / 1024, 1),
                "rss_growth_mib": round((peak - self.before) / 1024, 1)}


# ---------------------------------------------------------------- fake upstream data --

def sha_file(path):
    h512, h256, h1 = hashlib.sha512(), hashlib.sha256(), hashlib.sha1()
    with open(path, "rb") as f:
        while True:
            b = f.read(8 * MIB)
            if not b:
                break
            h512.update(b)
            h256.update(b)
            h1.update(b)
    return h512, h256, h1


def artifact(size_mib):
    """A file of `size_mib` MiB of random bytes under .bench/artifacts (made once), and its
    digests."""
    d = os.path.join(WORK, "artifacts")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, f"{size_mib}m.bin")
    meta = path + ".json"
    if os.path.exists(meta) and os.path.exists(path) and os.path.getsize(path) == size_mib * MIB:
        with open(meta) as f:
            return path, json.load(f)
    log(f"generating the {size_mib} MiB synthetic artifact")
    h512, h256, h1 = hashlib.sha512(), hashlib.sha256(), hashlib.sha1()
    rnd = random.Random(size_mib)
    block = bytearray(os.urandom(MIB))
    with open(path + ".tmp", "wb") as f:
        for i in range(size_mib):
            # Random-ish: one random block with a few bytes changed per MiB.
            for _ in range(8):
                block[rnd.randrange(MIB)] = rnd.randrange(256)
            b = bytes(block)
            f.write(b)
            h512.update(b)
            h256.update(b)
            h1.update(b)
    os.replace(path + ".tmp", path)
    m = {"size": size_mib * MIB,
         "sha512_sri": "sha512-" + base64.b64encode(h512.digest()).decode(),
         "sha256": h256.hexdigest(), "sha1": h1.hexdigest()}
    with open(meta, "w") as f:
        json.dump(m, f)
    return path, m


def link(src, dst):
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    if os.path.exists(dst):
        os.remove(dst)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


NPM_DOCS = {  # name -> fixture file
    "left-pad": "left-pad", "chalk": "chalk", "lodash": "lodash", "express": "express",
    "@babel/core": "babel__core", "@angular/core": "angular__core", "vite": "vite",
    "react": "react", "aws-sdk": "aws-sdk", "@types/node": "types__node",
    "typescript": "typescript", "next": "next",
}
PYPI_PROJECTS = ["numpy", "django", "requests", "six", "urllib3", "pytz", "python-dateutil"]
STREAM_NPM = {100: "bench-stream-100m", 1024: "bench-stream-1g"}
STREAM_WHEEL = {100: "bench_stream-1.0.0-py3-none-any.whl", 1024: "bench_stream-2.0.0-py3-none-any.whl"}
OLD = "2020-01-02T03:04:05.000Z"


def npm_escaped(name):
    return name.replace("/", "%2f") if name.startswith("@") else name


def lay_out_upstream(reg, files, sizes):
    """Decompress the recorded documents into .bench/upstream with their download URLs
    pointing at the fake (registry on port `reg`, PyPI files on port `files`), plus the
    synthetic packages. Returns the document sizes (bytes) by npm name."""
    up = os.path.join(WORK, "upstream")
    shutil.rmtree(up, ignore_errors=True)
    reg_base = f"http://127.0.0.1:{reg}"
    files_base = f"http://127.0.0.1:{files}"
    sizes_out = {}
    fx = os.path.join(SHARED, "fixtures", "registry")
    for name, fixture in NPM_DOCS.items():
        with gzip.open(os.path.join(fx, "npm", f"{fixture}.full.json.gz"), "rb") as f:
            body = f.read()
        body = re.sub(rb'"tarball": ?"https?://[^/"]+/', b'"tarball": "' + reg_base.encode() + b"/", body)
        dst = os.path.join(up, "npm", name + ".json")
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        with open(dst, "wb") as f:
            f.write(body)
        sizes_out[name] = len(body)
    for project in PYPI_PROJECTS:
        for ext in ("json", "html"):
            with gzip.open(os.path.join(fx, "pypi", f"{project}.v1.{ext}.gz"), "rb") as f:
                body = f.read()
            body = re.sub(rb"https://files\.[a-z.]+/", files_base.encode() + b"/", body)
            dst = os.path.join(up, "pypi", "simple", project, f"index.{ext}")
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            with open(dst, "wb") as f:
                f.write(body)
        write_json(os.path.join(up, "legacy", project + ".json"), legacy_doc(project, "0"))
    with gzip.open(os.path.join(fx, "pypi", "root.v1.html.gz"), "rb") as f:
        root = f.read()
    root = root.replace(b"</body>", b'<a href="bench-stream/">bench-stream</a>\n</body>')
    with open(os.path.join(up, "pypi", "simple", "index.html"), "wb") as f:
        f.write(root)
    sizes_out["/simple/"] = len(root)
    # Synthetic artifacts: npm packages with one version each, a PyPI project with two files.
    wheel_files = []
    for size in sizes:
        path, m = artifact(size)
        name = STREAM_NPM[size]
        tgz = f"{name}-1.0.0.tgz"
        link(path, os.path.join(up, "npm", name, "-", tgz))
        repo = {"type": "git", "url": f"git+https://github.com/bench/{name}.git"}
        doc = {"_id": name, "name": name, "dist-tags": {"latest": "1.0.0"},
               "versions": {"1.0.0": {"name": name, "version": "1.0.0", "description": "synthetic",
                                      "repository": repo, "license": "MIT",
                                      "dist": {"integrity": m["sha512_sri"], "shasum": m["sha1"],
                                               "tarball": f"{reg_base}/{name}/-/{tgz}"}}},
               "time": {"created": OLD, "modified": OLD, "1.0.0": OLD},
               "repository": repo, "license": "MIT"}
        write_json(os.path.join(up, "npm", name + ".json"), doc)
        fn = STREAM_WHEEL[size]
        rel = f"packages/bench/{m['sha256'][:2]}/{m['sha256'][2:4]}/{fn}"
        link(path, os.path.join(up, "files", rel))
        wheel_files.append({"filename": fn, "url": f"{files_base}/{rel}",
                            "hashes": {"sha256": m["sha256"]}, "requires-python": ">=3.8",
                            "size": m["size"], "upload-time": "2020-01-02T03:04:05.000000Z",
                            "yanked": False})
    versions = sorted({f["filename"].split("-")[1] for f in wheel_files})
    page = {"meta": {"api-version": "1.1"}, "name": "bench-stream", "files": wheel_files,
            "versions": versions}
    write_json(os.path.join(up, "pypi", "simple", "bench-stream", "index.json"), page)
    html = "<!DOCTYPE html><html><head><title>Links for bench-stream</title></head><body>\n"
    for f in wheel_files:
        html += (f'<a href="{f["url"]}#sha256={f["hashes"]["sha256"]}" data-requires-python="&gt;=3.8" '
                 f'data-upload-time="{f["upload-time"]}">{f["filename"]}</a><br/>\n')
    html += "</body></html>\n"
    with open(os.path.join(up, "pypi", "simple", "bench-stream", "index.html"), "w") as f:
        f.write(html)
    write_json(os.path.join(up, "legacy", "bench-stream.json"), legacy_doc("bench-stream", versions[-1] if versions else "0"))
    return sizes_out


def legacy_doc(project, version):
    return {"info": {"name": project, "version": version,
                     "project_urls": {"Source": f"https://github.com/bench/{project}"}},
            "releases": {}, "urls": []}


def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f)


def render_template(src, dst, subs):
    with open(src) as f:
        text = f.read()
    for k, v in subs.items():
        text = text.replace(f"@@{k}@@", str(v))
    with open(dst, "w") as f:
        f.write(text)


def nginx_dirs(d):
    os.makedirs(d, exist_ok=True)
    for t in ("tmp-body", "tmp-proxy", "tmp-fastcgi", "tmp-uwsgi", "tmp-scgi"):
        os.makedirs(os.path.join(d, t), exist_ok=True)


# ---------------------------------------------------------------- contestants --------

class Contestant:
    name = "?"
    label = "?"
    caching = False  # keeps an artifact/document cache that "cold" must empty
    npm = True
    pypi = True

    def __init__(self):
        self.proc = None
        self.start_seconds = None
        self.dirty = True

    @property
    def pid(self):
        return self.proc.pid if self.proc and self.proc.poll() is None else None

    def stop(self):
        stop_proc(self.proc)
        self.proc = None

    def restart(self, fresh):
        self.stop()
        if fresh:
            self.wipe()
        t = time.perf_counter()
        self.start()
        self.start_seconds = time.perf_counter() - t
        self.dirty = False
        return self.start_seconds

    def wipe(self):
        pass

    # URLs; None where the contestant does not serve that ecosystem.
    def npm_doc(self, name):
        return f"{self.base}/{npm_escaped(name)}" if self.npm else None

    def npm_tarball(self, name):
        return f"{self.base}/{name}/-/{name}-1.0.0.tgz" if self.npm else None

    def pypi_page(self, project):
        return f"{self.base}/simple/{project}/" if self.pypi else None

    def pypi_root(self):
        return f"{self.base}/simple/" if self.pypi else None

    def wheel(self, filename):
        return None


class Direct(Contestant):
    """The fake upstream itself (nginx serving static files)."""
    name, label = "direct", "direct (fake upstream)"

    def __init__(self):
        super().__init__()
        self.reg = stable_port(28741)
        self.files = stable_port(28742)
        self.base = f"http://127.0.0.1:{self.reg}"
        self.files_base = f"http://127.0.0.1:{self.files}"
        self.dir = os.path.join(RUN, "upstream-nginx")

    def start(self):
        nginx_dirs(self.dir)
        conf = os.path.join(self.dir, "nginx.conf")
        render_template(os.path.join(BENCH, "nginx", "common.inc"), os.path.join(self.dir, "common.inc"),
                        {"WORK": self.dir})
        render_template(os.path.join(BENCH, "nginx", "upstream.conf"), conf,
                        {"WORK": self.dir, "BENCH": BENCH, "UP": os.path.join(WORK, "upstream"),
                         "REG": self.reg, "FILES": self.files})
        self.proc = spawn(["nginx", "-p", self.dir, "-c", conf, "-e", os.path.join(self.dir, "error.log")],
                          os.path.join(self.dir, "stdout.log"))
        wait_until("fake upstream", url_ok(self.base + "/left-pad"), 20)

    def wheel(self, filename):
        with open(os.path.join(WORK, "upstream", "pypi", "simple", "bench-stream", "index.json")) as f:
            for fl in json.load(f)["files"]:
                if fl["filename"] == filename:
                    return fl["url"]
        return None


def nginx_proxy_conf(d, servers):
    """servers: list of (listen_port, scheme, addr, host_header, extra_lines)."""
    lines = [f"include {BENCH}/nginx/common.inc;".replace("@@WORK@@", d), "http {",
             "  access_log off;", "  tcp_nodelay on;", "  keepalive_requests 1000000;",
             "  keepalive_timeout 120s;"]
    for t, dn in (("client_body", "body"), ("proxy", "proxy"), ("fastcgi", "fastcgi"), ("uwsgi", "uwsgi"),
                  ("scgi", "scgi")):
        lines.append(f"  {t}_temp_path {d}/tmp-{dn};")
    # Buffers big enough that a document streams in few round trips (the defaults, 8 × 4 KiB,
    # halve throughput on big documents); never a temporary file.
    lines += ["  proxy_http_version 1.1;", '  proxy_set_header Connection "";',
              "  proxy_buffers 32 64k;", "  proxy_buffer_size 64k;", "  proxy_busy_buffers_size 256k;",
              "  proxy_max_temp_file_size 0;", "  proxy_read_timeout 300s;",
              "  proxy_ssl_server_name on;", "  resolver_timeout 10s;"]
    for i, (port, scheme, addr, host, extra) in enumerate(servers):
        lines.append(f"  upstream up{i} {{ server {addr}; keepalive 256; }}")
        lines += [f"  server {{", f"    listen 127.0.0.1:{port} backlog=4096;", "    location / {",
                  f"      proxy_pass {scheme}://up{i};", f"      proxy_set_header Host {host};"]
        if scheme == "https":
            lines.append(f"      proxy_ssl_name {host.split(':')[0]};")
        lines += [f"      {x}" for x in extra]
        lines += ["    }", "  }"]
    lines.append("}")
    # common.inc carries @@WORK@@: write a per-instance copy.
    render_template(os.path.join(BENCH, "nginx", "common.inc"), os.path.join(d, "common.inc"), {"WORK": d})
    lines[0] = f"include {d}/common.inc;"
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write("\n".join(lines) + "\n")
    return conf


class NginxProxy(Contestant):
    name, label = "nginx", "nginx pass-through"

    def __init__(self, direct, public=None):
        super().__init__()
        self.port = free_port()
        self.fport = free_port()
        self.pport = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.files_base = f"http://127.0.0.1:{self.fport}"
        self.pypi_base = f"http://127.0.0.1:{self.pport}"
        self.direct = direct
        self.public = public
        self.dir = os.path.join(RUN, "nginx-proxy" + ("-public" if public else ""))

    def start(self):
        nginx_dirs(self.dir)
        if self.public:
            npm_u = urllib.parse.urlsplit(self.public["npm"])
            simple_u = urllib.parse.urlsplit(self.public["pypi_simple"])
            files_u = urllib.parse.urlsplit(self.public["pypi_files"])
            rewrite = [
                'proxy_set_header Accept-Encoding "";',
                f"sub_filter '{files_u.scheme}://{files_u.netloc}/' '{self.files_base}/';",
                "sub_filter_once off;",
                "sub_filter_types application/vnd.pypi.simple.v1+json application/vnd.pypi.simple.v1+html;",
            ]
            servers = [(self.port, npm_u.scheme, f"{npm_u.hostname}:{npm_u.port or 443}", npm_u.hostname, []),
                       (self.pport, simple_u.scheme, f"{simple_u.hostname}:{simple_u.port or 443}", simple_u.hostname, rewrite),
                       (self.fport, files_u.scheme, f"{files_u.hostname}:{files_u.port or 443}", files_u.hostname, [])]
        else:
            servers = [(self.port, "http", f"127.0.0.1:{self.direct.reg}", f"127.0.0.1:{self.direct.reg}", []),
                       (self.fport, "http", f"127.0.0.1:{self.direct.files}", f"127.0.0.1:{self.direct.files}", [])]
        conf = nginx_proxy_conf(self.dir, servers)
        self.proc = spawn(["nginx", "-p", self.dir, "-c", conf, "-e", os.path.join(self.dir, "error.log")],
                          os.path.join(self.dir, "stdout.log"))
        wait_until("nginx proxy port", lambda: socket.create_connection(("127.0.0.1", self.port), 1).close() is None, 20)

    def wheel(self, filename):
        u = self.direct.wheel(filename)
        return u.replace(self.direct.files_base, self.files_base) if u else None


class Pkggate(Contestant):
    name, label = "pkggate", "pkggate (all OSV, every rule)"
    caching = True

    def __init__(self, direct, public=None, policy=None):
        super().__init__()
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.direct = direct
        self.public = public
        self.policy = policy or os.path.join(BENCH, "policy.yaml")
        # On, as deployed (the default). The start-up scenario measures the idle CPU with
        # both settings: an idle pkggate used to re-read its policy in a loop (its own reads
        # woke the directory watcher), fixed in policy_state.rs.
        self.hot_reload = True
        self.dir = os.path.join(RUN, "pkggate" + ("-public" if public else ""))
        os.makedirs(self.dir, exist_ok=True)
        self.mirror = os.path.join(self.dir, "mirror", "mirror.db")

    def env(self):
        e = {k: v for k, v in os.environ.items() if not k.startswith("PKGGATE_")}
        osv = os.path.join(SHARED, "osv")
        e.update({
            "PKGGATE_HOST": "127.0.0.1", "PKGGATE_PORT": str(self.port),
            "PKGGATE_PUBLIC_BASE_URL": self.base,
            "PKGGATE_MIRROR_DB": self.mirror,
            "PKGGATE_OSV_BUNDLE_NPM": os.path.join(osv, "npm", "all.zip"),
            "PKGGATE_OSV_BUNDLE_PYPI": os.path.join(osv, "PyPI", "all.zip"),
            "PKGGATE_OSV_BUNDLE_CRATES_IO": os.path.join(osv, "crates.io", "all.zip"),
            "PKGGATE_POLICY_FILE": self.policy,
            "PKGGATE_AUDIT_LOG": os.path.join(self.dir, "audit.log"),
            "PKGGATE_LOG": "warn",
            "PKGGATE_POLICY_HOT_RELOAD_ENABLED": "true" if self.hot_reload else "false",
        })
        if not self.public:
            d = self.direct
            e.update({
                "PKGGATE_UPSTREAM_NPM": d.base,
                "PKGGATE_PYPI_UPSTREAM_SIMPLE": d.base + "/simple",
                "PKGGATE_PYPI_UPSTREAM_FILES": d.files_base,
                "PKGGATE_UPSTREAM_CARGO_INDEX": d.base + "/cargo-index/",
                "PKGGATE_UPSTREAM_CARGO_DL": d.base + "/cargo-dl",
            })
        return e

    def wipe(self):
        pass  # caches are in memory; the mirror is kept (see startup scenario)

    def start(self, wait_ready=True):
        os.makedirs(os.path.dirname(self.mirror), exist_ok=True)
        self.proc = spawn([PKGGATE_BIN, "serve"], os.path.join(self.dir, "pkggate.log"),
                          env=self.env(), cwd=self.dir)
        if wait_ready:
            wait_until("pkggate ready", url_ok(self.base + "/-/pkggate/ready"), 300)

    def wheel(self, filename):
        s, _, body, _ = http_get(self.pypi_page("bench-stream"), {"Accept": ACCEPT_PYPI_JSON})
        if s != 200:
            raise RuntimeError(f"pkggate bench-stream page: HTTP {s}: {body[:300]!r}")
        for f in json.loads(body)["files"]:
            if f["filename"] == filename:
                return urllib.parse.urljoin(self.pypi_page("bench-stream"), f["url"])
        return None


class PublicDirect(Contestant):
    """The public registries themselves (scenario 6)."""
    name, label = "direct", "direct (public registries)"


class Verdaccio(Contestant):
    name, label = "verdaccio", "Verdaccio 6.8.0"
    caching = True
    pypi = False

    def __init__(self, direct, public=None):
        super().__init__()
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.direct = direct
        self.public = public
        self.dir = os.path.join(RUN, "verdaccio" + ("-public" if public else ""))

    def wipe(self):
        shutil.rmtree(os.path.join(self.dir, "storage"), ignore_errors=True)

    def start(self):
        os.makedirs(os.path.join(self.dir, "storage"), exist_ok=True)
        uplink = (self.public["npm"].rstrip("/") + "/") if self.public else self.direct.base + "/"
        cfg = os.path.join(self.dir, "config.yaml")
        with open(cfg, "w") as f:
            f.write(f"""# generated by bench/driver.py
storage: {self.dir}/storage
plugins: {self.dir}/plugins
web:
  enable: false
auth:
  htpasswd:
    file: {self.dir}/htpasswd
    max_users: -1
uplinks:
  up:
    url: {uplink}
    timeout: 300s
    max_fails: 1000
    fail_timeout: 1s
    cache: true
packages:
  '@*/*':
    access: $all
    publish: $authenticated
    proxy: up
  '**':
    access: $all
    publish: $authenticated
    proxy: up
server:
  keepAliveTimeout: 120
max_body_size: 2048mb
listen: 127.0.0.1:{self.port}
log: {{type: stdout, format: pretty, level: warn}}
""")
        self.proc = spawn(["node", VERDACCIO_JS, "--config", cfg], os.path.join(self.dir, "verdaccio.log"),
                          cwd=self.dir)
        wait_until("verdaccio", url_ok(self.base + "/-/ping"), 60)


class Devpi(Contestant):
    name, label = "devpi", "devpi-server " + DEVPI_VERSION
    caching = True
    npm = False

    def __init__(self, direct, public=None):
        super().__init__()
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.direct = direct
        self.public = public
        self.dir = os.path.join(RUN, "devpi" + ("-public" if public else ""))
        key = re.sub(r"[^A-Za-z0-9]+", "-", self.mirror_url()).strip("-")
        self.template = os.path.join(WORK, "devpi-templates", f"{key}-{DEVPI_VERSION}")
        self.server = os.path.join(self.dir, "server")

    def mirror_url(self):
        if self.public:
            return self.public["pypi_simple"].rstrip("/") + "/"
        return self.direct.base + "/simple/"

    def init_template(self):
        """devpi-init once, then root/pypi as a mirror of the fake (through a server start
        with the client), kept as a template copied for each fresh start."""
        tmp = self.template + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(self.dir, exist_ok=True)
        run([os.path.join(VENV_BIN, "devpi-init"), "--serverdir", tmp, "--no-root-pypi",
             "--root-passwd", "bench"])
        p = spawn([os.path.join(VENV_BIN, "devpi-server"), "--serverdir", tmp,
                   "--host", "127.0.0.1", "--port", str(self.port)], os.path.join(self.dir, "init.log"))
        try:
            wait_until("devpi (template)", url_ok(self.base + "/+api"), 60)
            cdir = os.path.join(self.dir, "client")
            dv = [os.path.join(VENV_BIN, "devpi"), "--clientdir", cdir]
            run(dv + ["use", self.base])
            run(dv + ["login", "root", "--password", "bench"])
            run(dv + ["index", "-c", "root/pypi", "type=mirror", f"mirror_url={self.mirror_url()}"])
        finally:
            stop_proc(p)
        os.replace(tmp, self.template)

    def wipe(self):
        shutil.rmtree(self.server, ignore_errors=True)

    def start(self):
        if not os.path.exists(self.template):
            self.init_template()
        if not os.path.exists(self.server):
            shutil.copytree(self.template, self.server)
        self.proc = spawn([os.path.join(VENV_BIN, "devpi-server"), "--serverdir", self.server,
                           "--host", "127.0.0.1", "--port", str(self.port)],
                          os.path.join(self.dir, "devpi.log"))
        wait_until("devpi", url_ok(self.base + "/+api"), 120)

    def pypi_page(self, project):
        return f"{self.base}/root/pypi/+simple/{project}/"

    def pypi_root(self):
        return f"{self.base}/root/pypi/+simple/"

    def wheel(self, filename):
        page = self.pypi_page("bench-stream")
        s, _, body, _ = http_get(page, {"Accept": ACCEPT_PYPI_HTML}, timeout=300)
        if s != 200:
            raise RuntimeError(f"devpi bench-stream page: HTTP {s}")
        for m in re.finditer(r'href="([^"]+)"', body.decode()):
            if filename in m.group(1):
                return urllib.parse.urljoin(page, m.group(1).split("#")[0])
        return None


# ---------------------------------------------------------------- measuring ----------

RESULTS = {"runs": []}


def record(**kw):
    RESULTS["runs"].append(kw)
    return kw


def wrk(url, conc, seconds, headers=None, script=None, script_args=None, timeout=60):
    threads = 1 if conc == 1 else 2
    cmd = ["wrk", "-t", str(threads), "-c", str(conc), "-d", f"{seconds}s", "--timeout", f"{timeout}s",
           "-s", script or os.path.join(BENCH, "wrk", "report.lua")]
    for k, v in (headers or {}).items():
        cmd += ["-H", f"{k}: {v}"]
    cmd.append(url)
    if script_args:
        cmd += ["--"] + script_args
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + timeout + 60)
    for line in out.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            d = json.loads(line[len("BENCH_JSON "):])
            dur = d["duration_us"] / 1e6
            errors = d["connect"] + d["read"] + d["write"] + d["timeout"] + d["status"]
            return {"requests": d["requests"], "seconds": round(dur, 3),
                    "rps": round(d["requests"] / dur, 2) if dur else 0,
                    "p50_ms": d["p50_us"] / 1000, "p90_ms": d["p90_us"] / 1000,
                    "p99_ms": d["p99_us"] / 1000, "max_ms": d["max_us"] / 1000,
                    "mib_per_s": round(d["bytes"] / dur / MIB, 1) if dur else 0,
                    "errors": errors,
                    "error_detail": {k: d[k] for k in ("connect", "read", "write", "timeout", "status")}}
    raise RuntimeError(f"wrk printed no result: {out.stdout[-500:]} {out.stderr[-500:]}")


def wrk_measured(c, url, conc, headers, seconds=None):
    """A wrk run with the contestant's memory watched; slow servers get a longer run so
    that at least a few requests per connection complete."""
    seconds = seconds or WRK_SECONDS
    while True:
        rss = Rss(c.pid)
        r = wrk(url, conc, seconds, headers)
        r.update(rss.done())
        if r["requests"] >= 2 or seconds >= 30:
            return r
        wait_idle(c)
        seconds = int(min(30, seconds * 4))


def burst(url, conc, headers, timeout=300):
    """`conc` simultaneous first requests on fresh connections; per-request latency."""
    res = [None] * conc
    barrier = threading.Barrier(conc)

    def one(i):
        barrier.wait()
        try:
            s, _, body, t = http_get(url, headers, timeout=timeout)
            res[i] = (s, len(body), t)
        except Exception as e:
            res[i] = (0, 0, timeout)
    t0 = time.perf_counter()
    ts = [threading.Thread(target=one, args=(i,)) for i in range(conc)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    wall = time.perf_counter() - t0
    lat = sorted(r[2] for r in res)
    errors = sum(1 for r in res if not (200 <= r[0] < 300))
    return {"requests": conc, "seconds": round(wall, 4), "rps": round(conc / wall, 2),
            "p50_ms": round(pct(lat, 50) * 1000, 2), "p99_ms": round(pct(lat, 99) * 1000, 2),
            "errors": errors, "bytes": res[0][1], "status": res[0][0]}


def pct(sorted_vals, p):
    if not sorted_vals:
        return 0
    k = (len(sorted_vals) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(sorted_vals) - 1)
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (k - lo)


def cold_one(c, url, headers, conc):
    rss = Rss(c.pid)
    if conc == 1:
        s, h, body, t = http_get(url, headers, timeout=300)
        r = {"requests": 1, "seconds": round(t, 4), "rps": round(1 / t, 2), "p50_ms": round(t * 1000, 2),
             "p99_ms": round(t * 1000, 2), "errors": 0 if 200 <= s < 300 else 1, "bytes": len(body),
             "status": s, "content_type": h.get("content-type")}
    else:
        r = burst(url, conc, headers)
    r.update(rss.done())
    return r


def rotate(lst, k):
    k %= len(lst)
    return lst[k:] + lst[:k]


# ---------------------------------------------------------------- scenarios ----------

def check_contestants(cs, sizes):
    """Each contestant answers every URL the scenarios use with 200, and both spellings of
    a scoped npm name work."""
    for c in cs:
        if QUICK and c.name == "devpi":
            continue
        urls = []
        if c.npm:
            urls += [(c.npm_doc("left-pad"), ACCEPT_NPM), (c.npm_doc("@types/node"), ACCEPT_NPM),
                     (f"{c.base}/@types/node", ACCEPT_NPM), (f"{c.base}/@types%2Fnode", ACCEPT_NPM)]
        if c.pypi:
            urls += [(c.pypi_page("six"), ACCEPT_PYPI_JSON), (c.pypi_page("six"), ACCEPT_PYPI_HTML)]
        for u, acc in urls:
            s, h, body, t = http_get(u, {"Accept": acc}, timeout=300)
            if s != 200:
                raise RuntimeError(f"{c.name}: GET {u} (Accept {acc}) → HTTP {s}: {body[:300]!r}")
            if "npm" in acc or acc == ACCEPT_NPM:
                doc = json.loads(body)
                assert doc.get("name") in ("left-pad", "@types/node"), (c.name, u, doc.get("name"))
        log(f"  {c.name}: {len(urls)} sanity requests OK")


def docs_scenario(scn, items, contestants, restartable):
    """Documents (npm or PyPI): cold (fresh contestant) at concurrency 1 and 16, warm with
    wrk at 1 and 16. items: list of (item_id, url_fn(c), headers, size, concs)."""
    for rep in range(REPS):
        order = rotate(contestants, rep)
        for cold_conc in ((1,) if QUICK else (16, 1)):
            for c in order:
                if c.caching and c.dirty:
                    restartable(c)
            for item, url_fn, headers, size, concs in items:
                if cold_conc not in concs:
                    continue
                for c in order:
                    u = url_fn(c)
                    if not u:
                        continue
                    c.dirty = True
                    r = cold_one(c, u, headers, cold_conc)
                    record(scenario=scn, item=item, contestant=c.name, phase="cold", conc=cold_conc,
                           rep=rep, size=size, **r)
                    log(f"  {scn} rep{rep} cold c{cold_conc:<2} {item:<15} {c.name:<9} {r['p50_ms']:9.1f} ms  "
                        f"rss {r['rss_peak_mib']:5.0f} MiB  status {r.get('status')} err {r['errors']}")
                    wait_idle(c)
        for item, url_fn, headers, size, concs in items:
            p50_c1 = {}
            for conc in concs:
                for c in order:
                    u = url_fn(c)
                    if not u:
                        continue
                    seconds = WRK_SECONDS
                    if conc > 1 and c.name in p50_c1:
                        # A server that handles one request at a time needs conc × latency
                        # for the first round: run long enough for two rounds.
                        need = 2 * conc * p50_c1[c.name] / 1000
                        if need > WRK_SECONDS:
                            if QUICK and need > 8:
                                log(f"  {scn} rep{rep} warm c{conc:<2} {item:<15} {c.name:<9} skipped in --quick "
                                    f"(p50 at c1 {p50_c1[c.name]:.0f} ms: would need {need:.0f} s)")
                                continue
                            seconds = int(min(60, need + 1))
                    r = wrk_measured(c, u, conc, headers, seconds)
                    if conc == 1:
                        p50_c1[c.name] = r["p50_ms"]
                    record(scenario=scn, item=item, contestant=c.name, phase="warm", conc=conc, rep=rep,
                           size=size, **r)
                    idle = wait_idle(c)
                    log(f"  {scn} rep{rep} warm c{conc:<2} {item:<15} {c.name:<9} {r['rps']:9.1f} req/s "
                        f"p50 {r['p50_ms']:8.2f} ms p99 {r['p99_ms']:8.2f} ms rss {r['rss_peak_mib']:5.0f} MiB "
                        f"err {r['errors']}" + (f" (busy {idle:.1f} s after)" if idle > 1 else ""))


def curl_download(url):
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "--max-time", "900", "-w",
                          "%{http_code} %{size_download} %{time_total}", url],
                         capture_output=True, text=True)
    code, size, total = out.stdout.split()
    return int(code), int(size), float(total)


def streaming_scenario(contestants, sizes):
    for rep in range(REPS):
        order = rotate(contestants, rep)
        for size in sizes:
            for kind in ("npm-tarball", "wheel"):
                for c in order:
                    if kind == "npm-tarball":
                        u = c.npm_tarball(STREAM_NPM[size])
                    else:
                        u = c.wheel(STREAM_WHEEL[size]) if c.pypi else None
                    if not u:
                        continue
                    rss = Rss(c.pid)
                    code, got, secs = curl_download(u)
                    r = rss.done()
                    ok = code == 200 and got == size * MIB
                    phase = "first" if rep == 0 else "repeat"
                    rec = record(scenario="s3", item=f"{kind} {size} MiB", contestant=c.name, phase=phase,
                                 conc=1, rep=rep, size=size * MIB, status=code, bytes=got,
                                 seconds=round(secs, 3), mib_per_s=round(got / secs / MIB, 1) if secs else 0,
                                 errors=0 if ok else 1, **r)
                    log(f"  s3 rep{rep} {kind:<11} {size:>4} MiB {c.name:<9} {rec['mib_per_s']:8.1f} MiB/s "
                        f"rss growth {r['rss_growth_mib']:.1f} MiB (peak {r['rss_peak_mib']:.0f}) status {code}"
                        + ("" if ok else f" SHORT {got}"))


def startup_scenario(pk):
    """Time from start to the first correct block (an OSV MAL- record) with the full OSV
    data: with an empty mirror directory, and with the mirror of the previous start."""
    name, ver, mal = MAL_NPM
    url = f"{pk.base}/{name}/-/{name}-{ver}.tgz"

    def correct_block():
        s, _, body, _ = http_get(url, timeout=5)
        return s == 403 and mal.encode() in body

    for rep in range(REPS):
        for disk in ("empty", "existing"):
            pk.stop()
            if disk == "empty":
                shutil.rmtree(os.path.dirname(pk.mirror), ignore_errors=True)
            t0 = time.perf_counter()
            pk.start(wait_ready=False)
            first_http = None
            deadline = time.time() + 300
            while time.time() < deadline:
                try:
                    s, _, body, _ = http_get(url, timeout=5)
                    if first_http is None:
                        first_http = time.perf_counter() - t0
                    if s == 403 and mal.encode() in body:
                        break
                except OSError:
                    pass
                time.sleep(0.01)
            else:
                raise RuntimeError("pkggate never blocked the malicious version")
            t_block = time.perf_counter() - t0
            wait_until("pkggate ready", url_ok(pk.base + "/-/pkggate/ready"), 60, 0.01)
            t_ready = time.perf_counter() - t0
            rss = status_kib(pk.pid, "VmHWM") / 1024
            record(scenario="s5", item=f"{disk} mirror", contestant="pkggate", phase=disk, conc=1, rep=rep,
                   seconds=round(t_block, 3), first_http_s=round(first_http or 0, 3),
                   ready_s=round(t_ready, 3), rss_peak_mib=round(rss, 1), errors=0)
            log(f"  s5 rep{rep} {disk:<8} mirror: first HTTP answer {first_http:.3f} s, first correct block "
                f"{t_block:.3f} s, ready {t_ready:.3f} s, VmHWM {rss:.0f} MiB")
    # CPU used while idle (no request), with the policy hot reload on (the default) and off.
    hz = os.sysconf("SC_CLK_TCK")
    for hot in (True, False):
        pk.stop()
        pk.hot_reload = hot
        pk.start()
        time.sleep(1)
        a = cpu_ticks(pk.pid)
        time.sleep(5)
        cpu = (cpu_ticks(pk.pid) - a) / hz / 5 * 100
        record(scenario="s5", item=f"idle CPU, policy hot reload {'on (default)' if hot else 'off'}",
               contestant="pkggate", phase="idle", conc=0, rep=0, cpu_percent=round(cpu, 1), errors=0)
        log(f"  s5 idle CPU with PKGGATE_POLICY_HOT_RELOAD_ENABLED={str(hot).lower()}: {cpu:.0f} % of a core")
    pk.stop()
    pk.hot_reload = True
    pk.start()


def load_scenario(cs):
    d = os.path.join(RUN, "load")
    os.makedirs(d, exist_ok=True)
    npm_items = ["express", "left-pad", "lodash", "chalk", "@babel/core", "vite", "react"]
    pypi_items = [("requests", ACCEPT_PYPI_JSON), ("six", ACCEPT_PYPI_HTML), ("urllib3", ACCEPT_PYPI_JSON),
                  ("django", ACCEPT_PYPI_HTML), ("pytz", ACCEPT_PYPI_JSON), ("python-dateutil", ACCEPT_PYPI_JSON)]
    for c in cs:
        lines = []
        if c.npm:
            lines += [f"{urllib.parse.urlsplit(c.npm_doc(n)).path}\t{ACCEPT_NPM}" for n in npm_items]
        if c.pypi:
            lines += [f"{urllib.parse.urlsplit(c.pypi_page(p)).path}\t{a}" for p, a in pypi_items]
        pf = os.path.join(d, f"{c.name}.paths")
        with open(pf, "w") as f:
            f.write("\n".join(lines) + "\n")
        mix = "npm+PyPI" if (c.npm and c.pypi) else ("npm" if c.npm else "PyPI")
        # Warm the contestant's caches first (one pass at low concurrency).
        wrk(c.base + "/", 4, 2, script=os.path.join(BENCH, "wrk", "mixed.lua"), script_args=[pf])
        rss = Rss(c.pid)
        la0 = os.getloadavg()[0]
        r = wrk(c.base + "/", LOAD_CONNECTIONS, LOAD_SECONDS, script=os.path.join(BENCH, "wrk", "mixed.lua"),
                script_args=[pf], timeout=30)
        r.update(rss.done())
        record(scenario="s7", item=f"mixed {mix}", contestant=c.name, phase="warm", conc=LOAD_CONNECTIONS,
               rep=0, mix=lines, **r)
        log(f"  s7 {c.name:<9} {mix:<8} {r['rps']:9.1f} req/s p50 {r['p50_ms']:.1f} ms p99 {r['p99_ms']:.1f} ms "
            f"errors {r['errors']} {r['error_detail']} rss peak {r['rss_peak_mib']:.0f} MiB "
            f"(load avg {la0:.1f} → {os.getloadavg()[0]:.1f})")


# ---------------------------------------------------------------- real installs ------

def public_registries():
    """The public registry addresses from pkggate's own defaults (no host in our files)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PKGGATE_")}
    out = subprocess.run([PKGGATE_BIN, "config"], capture_output=True, text=True, env=env,
                         cwd=os.path.join(RUN)).stdout
    vals = {}
    for line in out.splitlines():
        m = re.match(r"^(PKGGATE_[A-Z_]+)=(\S*)", line)
        if m:
            vals[m.group(1)] = m.group(2)
    return {"npm": vals["PKGGATE_UPSTREAM_NPM"], "pypi_simple": vals["PKGGATE_PYPI_UPSTREAM_SIMPLE"],
            "pypi_files": vals["PKGGATE_PYPI_UPSTREAM_FILES"]}


def clean_env():
    e = {k: v for k, v in os.environ.items()
         if not (k.startswith("npm_config_") or k.startswith("NPM_CONFIG_") or k.startswith("PIP_"))}
    e["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    e["PIP_CONFIG_FILE"] = "/dev/null"
    return e


def real_installs(pub, cs):
    d = os.path.join(RUN, "real")
    os.makedirs(d, exist_ok=True)
    # The lockfile, resolved directly against the public registry, versions published at
    # least 10 days ago (so pkggate's min_package_age_days does not refuse the newest).
    proj = os.path.join(d, "project")
    os.makedirs(proj, exist_ok=True)
    shutil.copyfile(os.path.join(BENCH, "real", "package.json"), os.path.join(proj, "package.json"))
    before = (datetime.datetime.utcnow() - datetime.timedelta(days=10)).strftime("%Y-%m-%d")
    env = clean_env()
    log(f"  s6: resolving the lockfile (npm install --package-lock-only --before {before})")
    subprocess.run(["npm", "install", "--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund",
                    f"--registry={pub['npm'].rstrip('/')}/", f"--before={before}", "--userconfig=/dev/null",
                    f"--cache={d}/npm-cache-lock"], cwd=proj, check=True, env=env, capture_output=True)
    with open(os.path.join(proj, "package-lock.json")) as f:
        lock = json.load(f)
    n_npm = sum(1 for k in lock.get("packages", {}) if k)
    with open(os.path.join(BENCH, "real", "requirements.txt")) as f:
        n_pip = sum(1 for l in f if l.strip() and not l.startswith("#"))
    log(f"  s6: {n_npm} npm packages in the lockfile, {n_pip} pinned requirements")
    RESULTS["real_counts"] = {"npm_packages": n_npm, "pip_requirements": n_pip}
    reps = REPS
    # Round -1 is a warm-up, not recorded: the public registries' CDN caches each object on
    # first request, and the contestants do not request the same objects (pkggate also reads
    # the PyPI project JSON, the proxies read full npm documents), so without it whoever first
    # asks for an object pays its cold CDN fetch and the order of contestants decides the result.
    for rep in range(-1, reps):
        order = rotate(cs, max(rep, 0))
        for c in order:
            # Proxies start empty for every measured install (client caches are empty too).
            if c.name != "direct":
                c.restart(fresh=True)
            if c.name == "devpi":
                # devpi loads the mirror's whole project list on its first request (longer
                # than pip's 15 s read timeout): one unrelated page first, timed apart.
                t = time.perf_counter()
                http_get(c.pypi_page("pip"), {"Accept": ACCEPT_PYPI_HTML}, timeout=600)
                if rep >= 0:
                    record(scenario="s6", item="devpi first page (project list)", contestant=c.name,
                           phase="cold proxy", conc=1, rep=rep, seconds=round(time.perf_counter() - t, 2), errors=0)
            for kind in ("npm", "pip"):
                if kind == "npm":
                    if c.name == "direct":
                        reg = pub["npm"].rstrip("/") + "/"
                    elif c.npm:
                        reg = c.base + "/"
                    else:
                        continue
                    work = os.path.join(d, f"npm-{c.name}-{rep}")
                    shutil.rmtree(work, ignore_errors=True)
                    shutil.copytree(proj, work, ignore=shutil.ignore_patterns("node_modules"))
                    cmd = ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--userconfig=/dev/null",
                           f"--registry={reg}", f"--cache={work}/.npm-cache", "--prefer-online"]
                    cwd = work
                else:
                    if c.name == "direct":
                        index = pub["pypi_simple"].rstrip("/") + "/"
                    elif c.name == "nginx":
                        index = c.pypi_base + "/simple/"
                    elif c.pypi:
                        index = c.pypi_page("x").rsplit("x/", 1)[0]
                    else:
                        continue
                    work = os.path.join(d, f"pip-{c.name}-{rep}")
                    shutil.rmtree(work, ignore_errors=True)
                    cmd = [sys.executable, "-m", "pip", "install", "--no-cache-dir", "--only-binary=:all:", "--timeout", "120",
                           "--no-deps", "--target", work, "--index-url", index,
                           "-r", os.path.join(BENCH, "real", "requirements.txt")]
                    cwd = d
                rss = Rss(c.pid)
                t = time.perf_counter()
                p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
                secs = time.perf_counter() - t
                r = rss.done()
                err = "" if p.returncode == 0 else (p.stderr or p.stdout)[-800:]
                # No registry host in committed results.
                for key, u in pub.items():
                    host = urllib.parse.urlsplit(u).hostname
                    if host:
                        err = err.replace(host, f"<{key} host>")
                if rep >= 0:
                    record(scenario="s6", item=kind, contestant=c.name, phase="cold proxy", conc=1, rep=rep,
                           seconds=round(secs, 2), errors=0 if p.returncode == 0 else 1, error_text=err, **r)
                log(f"  s6 {'warm-up' if rep < 0 else f'rep{rep}'} {kind:<3} {c.name:<9} {secs:7.1f} s rc={p.returncode} "
                    f"rss peak {r.get('rss_peak_mib', 0):.0f} MiB" + (f"\n{err}" if err else ""))
                if c.name == "pkggate":
                    try:
                        with open(os.path.join(d, f"metrics-{kind}-{rep}.txt"), "wb") as f:
                            f.write(http_get(c.base + "/metrics")[2])
                    except OSError:
                        pass
                shutil.rmtree(work, ignore_errors=True)


# ---------------------------------------------------------------- summary ------------

def med(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def summarize():
    groups = {}
    for r in RESULTS["runs"]:
        # Contestants without an artifact cache: every download is the same measurement.
        if r["scenario"] == "s3" and r["contestant"] in ("direct", "nginx", "pkggate"):
            r["phase"] = "every"
        key = (r["scenario"], r["item"], r["phase"], r["conc"], r["contestant"])
        groups.setdefault(key, []).append(r)
    out = []
    for key, rs in groups.items():
        s = {"scenario": key[0], "item": key[1], "phase": key[2], "conc": key[3], "contestant": key[4],
             "size": rs[0].get("size"), "errors": sum(r.get("errors", 0) for r in rs)}
        for m in ("rps", "p50_ms", "p99_ms", "rss_peak_mib", "rss_growth_mib", "mib_per_s", "seconds",
                  "ready_s", "first_http_s"):
            v = med([r.get(m) for r in rs])
            if v:
                s[m] = v
        out.append(s)
    # Ratios to the direct baseline of the same row.
    by = {(s["scenario"], s["item"], s["phase"], s["conc"], s["contestant"]): s for s in out}
    for s in out:
        d = by.get((s["scenario"], s["item"], s["phase"], s["conc"], "direct")) or \
            by.get((s["scenario"], s["item"], "every", s["conc"], "direct"))
        if not d:
            continue
        for m in ("rps", "p50_ms", "mib_per_s", "seconds"):
            if m in s and m in d and d[m]["median"]:
                s[f"{m}_ratio"] = round(s[m]["median"] / d[m]["median"], 3)
        if "p50_ms" in s and "p50_ms" in d:
            s["p50_added_ms"] = round(s["p50_ms"]["median"] - d["p50_ms"]["median"], 3)
    RESULTS["summary"] = out
    return by


def fmt(x, nd=1):
    if x is None:
        return "–"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.{nd}f}" if abs(x) >= 1 or nd > 1 else f"{x:.2f}"


def cell(s, m, nd=1):
    if not s or m not in s:
        return "–"
    v = s[m]
    if v["n"] == 1 or v["min"] == v["max"]:
        return fmt(v["median"], nd)
    return f"{fmt(v['median'], nd)} ({fmt(v['min'], nd)}–{fmt(v['max'], nd)})"


def ratio(s, m):
    r = s.get(f"{m}_ratio") if s else None
    return "–" if r is None else f"{r:.2f}×"


# ---------------------------------------------------------------- targets ------------

BIG = ["next", "typescript", "@types/node"]
SMALL = ["express", "left-pad"]


def targets(by):
    t = []

    def g(scn, item, phase, conc, c):
        return by.get((scn, item, phase, conc, c))

    # 1. Big documents: pkggate >= 10x Verdaccio req/s and >= 0.5x nginx, warm, c1 and c16.
    for item in BIG:
        for phase in ("warm", "cold"):
            for conc in (1, 16):
                p, v, n = (g("s1", item, phase, conc, x) for x in ("pkggate", "verdaccio", "nginx"))
                if not (p and v and n and "rps" in p and "rps" in v and "rps" in n):
                    continue
                if not v["rps"]["median"]:
                    t.append({"target": f"big npm `{item}` {phase} c{conc}: pkggate ≥ 10× Verdaccio req/s",
                              "measured": f"{fmt(p['rps']['median'])} req/s; Verdaccio completed no request "
                                          "in the run", "met": True, "group": "big"})
                    continue
                rv = p["rps"]["median"] / v["rps"]["median"]
                rn = p["rps"]["median"] / n["rps"]["median"]
                t.append({"target": f"big npm `{item}` {phase} c{conc}: pkggate ≥ 10× Verdaccio req/s",
                          "measured": f"{rv:.1f}× ({fmt(p['rps']['median'])} vs {fmt(v['rps']['median'])} req/s)",
                          "met": rv >= 10, "group": "big"})
                t.append({"target": f"big npm `{item}` {phase} c{conc}: pkggate ≥ 0.5× nginx req/s",
                          "measured": f"{rn:.2f}× ({fmt(p['rps']['median'])} vs {fmt(n['rps']['median'])} req/s)",
                          "met": rn >= 0.5, "group": "big"})
    # 2. Small documents: p50 added latency over direct <= 1 ms (warm).
    for item in SMALL:
        for conc in (1, 16):
            p = g("s2", item, "warm", conc, "pkggate")
            if p and "p50_added_ms" in p:
                t.append({"target": f"small npm `{item}` warm c{conc}: pkggate p50 added ≤ 1 ms",
                          "measured": f"+{p['p50_added_ms']:.2f} ms (p50 {p['p50_ms']['median']:.2f} ms)",
                          "met": p["p50_added_ms"] <= 1.0, "group": "small"})
    # 3. Streaming: >= 0.7x direct throughput; RSS growth <= 64 MB for 1 GB.
    for s in RESULTS["summary"]:
        if s["scenario"] == "s3" and s["contestant"] == "pkggate":
            r = s.get("mib_per_s_ratio")
            if r is not None:
                t.append({"target": f"{s['item']}: pkggate ≥ 0.7× direct throughput",
                          "measured": f"{r:.2f}× ({fmt(s['mib_per_s']['median'])} MiB/s)", "met": r >= 0.7,
                          "group": "stream"})
            if "1024" in s["item"] and "rss_growth_mib" in s:
                gmb = s["rss_growth_mib"]["max"] * MIB / 1e6
                t.append({"target": f"{s['item']}: pkggate RSS growth ≤ 64 MB",
                          "measured": f"{gmb:.1f} MB (worst of {s['rss_growth_mib']['n']})", "met": gmb <= 64,
                          "group": "stream"})
    # 6. Real installs: <= 1.2x direct wall time.
    for kind in ("npm", "pip"):
        p = g("s6", kind, "cold proxy", 1, "pkggate")
        if p and "seconds_ratio" in p:
            t.append({"target": f"real install ({kind}): pkggate ≤ 1.2× direct wall time",
                      "measured": f"{p['seconds_ratio']:.2f}× ({p['seconds']['median']:.1f} s)"
                      + (f", {p['errors']} failed" if p["errors"] else ""),
                      "met": p["seconds_ratio"] <= 1.2 and not p["errors"], "group": "real"})
    # 7. Zero errors under load.
    for s in RESULTS["summary"]:
        if s["scenario"] == "s7" and s["contestant"] == "pkggate":
            t.append({"target": f"load, {s['conc']} connections, {s['item']}: pkggate 0 errors",
                      "measured": f"{s['errors']} errors", "met": s["errors"] == 0, "group": "load"})
    RESULTS["targets"] = t
    return t


# ---------------------------------------------------------------- report -------------

def docs_table(scn, items, cs):
    by = {(s["item"], s["phase"], s["conc"], s["contestant"]): s for s in RESULTS["summary"] if s["scenario"] == scn}
    rows = ["| document | phase | conc. | contestant | req/s | × direct | p50 ms | p99 ms | peak RSS MiB |",
            "|---|---|---|---|---|---|---|---|---|"]
    for item in items:
        for phase in ("cold", "warm"):
            for conc in (1, 16):
                for c in cs:
                    s = by.get((item, phase, conc, c))
                    if not s:
                        continue
                    err = f" **{s['errors']} errors**" if s["errors"] else ""
                    rows.append(f"| `{item}` | {phase} | {conc} | {c} | {cell(s, 'rps')}{err} | {ratio(s, 'rps')} | "
                                f"{cell(s, 'p50_ms', 2)} | {cell(s, 'p99_ms', 2)} | {cell(s, 'rss_peak_mib', 0)} |")
    return "\n".join(rows)


def write_report(sizes, by, tgt):
    M = RESULTS["meta"]
    L = []
    w = L.append
    w(f"Generated by `bench/run{' --quick' if QUICK else ''}` on {M['finished']} in {M['duration_s'] / 60:.1f} min "
      f"(do not edit between the markers: the next run rewrites it). Machine-readable: "
      f"`bench/results/latest.json`.")
    w("")
    w("**Machine.** " + f"{M['machine']['nproc']} cores ({M['machine']['cpu']}), {M['machine']['mem_gib']} GiB RAM, "
      f"Linux {M['machine']['kernel']}; load average {M['load']['start']:.2f} at the start, "
      f"{M['load']['end']:.2f} at the end (per scenario: "
      + ", ".join(f"{k} {v:.2f}" for k, v in M["load"]["scenarios"].items()) + "). "
      "The machine is shared (other builds may run), and every server, the load generator and "
      "the fake upstream share its cores: compare ratios within one run.")
    w("")
    w("**Tools.** " + "; ".join(v if v.lower().startswith(k.lower()) else f"{k} {v}"
                                for k, v in M["versions"].items()) + ".")
    w("")
    w("**Setup.** All on 127.0.0.1. *direct*: nginx serving the recorded documents of "
      "`../shared/fixtures/registry/` (decompressed, download URLs pointed at it) and the synthetic "
      "artifacts as static files (PyPI pages negotiated on `Accept`), the limit any client can see. "
      "*nginx*: a second nginx as a pure reverse proxy in front of it (no cache, keep-alive upstream). "
      "*pkggate*: the release binary with the three `../shared/osv/*/all.zip` bundles loaded and "
      "`bench/policy.yaml` (every rule on, lifecycle scripts in monitor mode), log level warn, audit "
      "log on. *Verdaccio* (npm only): uplink to the fake, storage on disk, log level warn, web UI off. "
      "*devpi* (PyPI only): `root/pypi` mirror of the fake's `/simple/`. Each contestant runs as one "
      "process (nginx: master + 2 workers, pkggate: tokio on 2 threads). "
      f"Repetitions: {REPS}, contestants interleaved (order rotated each repetition); cells are "
      "medians with (min–max). *Cold*: the caching contestants (pkggate, Verdaccio, devpi) restarted "
      "with empty caches before the first request of each document; concurrency 16 cold = 16 "
      f"simultaneous first requests. *Warm*: wrk for {WRK_SECONDS:g} s (longer for slow servers, "
      "so each connection completes at least 2 requests). Bodies are identity (no gzip), npm "
      "documents in full form (`Accept: application/json`). Peak RSS: VmHWM (reset through "
      "`/proc/PID/clear_refs` before each measurement) or VmRSS sampled every 20 ms, of all the "
      "contestant's processes; it includes what the process already held (caches from earlier "
      "measurements).")
    w("")
    w("**Commands.** `" + "`, `".join(M["commands"]) + "`")
    w("")
    w("### Targets (pkggate)")
    w("")
    w("| target | measured | |")
    w("|---|---|---|")
    for x in tgt:
        w(f"| {x['target']} | {x['measured']} | {'met' if x['met'] else '**missed**'} |")
    if not tgt:
        w("| (no target measured in this run) | | |")
    w("")
    npm_cs = ["direct", "nginx", "pkggate", "verdaccio"]
    pypi_cs = ["direct", "nginx", "pkggate", "devpi"]
    sz = RESULTS.get("doc_sizes", {})
    w("### 1. Big npm documents")
    w("")
    w("Sizes: " + ", ".join(f"`{d}` {sz.get(d, 0) / 1e6:.1f} MB" for d in BIG) + ".")
    w("")
    w(docs_table("s1", BIG, npm_cs))
    w("")
    w("### 2. Small npm documents")
    w("")
    small = SMALL + [d for d in ("lodash", "react") if any(s["item"] == d for s in RESULTS["summary"])]
    w("Sizes: " + ", ".join(f"`{d}` {sz.get(d, 0) / 1e3:.0f} kB" for d in small) + ".")
    w("")
    w(docs_table("s2", small, npm_cs))
    w("")
    w("![p50 latency (warm, concurrency 1) and peak RSS against npm document size](benchmarks-size.png)")
    w("")
    w("### 3. Tarball and wheel streaming")
    w("")
    w("One download at a time with curl (`-o /dev/null`), each artifact once per repetition. "
      "For Verdaccio and devpi *first* is the first download (they fetch from upstream and "
      "store it), *repeat* the later ones (served from their store); direct, nginx and pkggate "
      "keep no copy, so *every* download is the same measurement. RSS growth = peak during "
      "the download − RSS before it; pkggate verifies the digest while streaming (sha512 for "
      "npm, sha256 for wheels).")
    w("")
    w("| artifact | contestant | download | MiB/s | × direct | RSS growth MiB | peak RSS MiB |")
    w("|---|---|---|---|---|---|---|")
    for s in sorted((s for s in RESULTS["summary"] if s["scenario"] == "s3"),
                    key=lambda s: (s["item"], s["phase"], ["direct", "nginx", "pkggate", "verdaccio", "devpi"].index(s["contestant"]))):
        err = f" **{s['errors']} failed**" if s["errors"] else ""
        w(f"| {s['item']} | {s['contestant']} | {s['phase']} | {cell(s, 'mib_per_s')}{err} | {ratio(s, 'mib_per_s')} | "
          f"{cell(s, 'rss_growth_mib')} | {cell(s, 'rss_peak_mib', 0)} |")
    w("")
    w("### 4. PyPI pages")
    w("")
    w("`numpy` JSON (`Accept: application/vnd.pypi.simple.v1+json`) and HTML (`Accept: text/html`), "
      f"and the `/simple/` root ({sz.get('/simple/', 0) / 1e6:.1f} MB); every contestant answers "
      "each `Accept` with the asked format (content types in `latest.json`).")
    w("")
    w(docs_table("s4", ["numpy JSON", "numpy HTML", "/simple/ root"], pypi_cs))
    w("")
    w("### 5. Start-up")
    w("")
    w(f"pkggate from `exec` to the first correct block (403 naming `{MAL_NPM[2]}` for "
      f"`{MAL_NPM[0]}@{MAL_NPM[1]}`; before the mirror is loaded pkggate answers 403 "
      "`intel_unavailable`, which does not count) with the full OSV data: an empty mirror directory "
      "(downloads nothing: the bundles are local files; ingests all three) and the mirror left "
      "by the previous start.")
    w("")
    w("| mirror | first HTTP answer s | first correct block s | ready s | VmHWM MiB |")
    w("|---|---|---|---|---|")
    for s in RESULTS["summary"]:
        if s["scenario"] == "s5" and s["phase"] != "idle":
            w(f"| {s['item']} | {cell(s, 'first_http_s', 3)} | {cell(s, 'seconds', 3)} | {cell(s, 'ready_s', 3)} | "
              f"{cell(s, 'rss_peak_mib', 0)} |")
    w("")
    for r in RESULTS["runs"]:
        if r["scenario"] == "s5" and r["phase"] == "idle":
            w(f"pkggate {r['item']}: **{r['cpu_percent']:.0f} % of a core** used while serving nothing (5 s).")
            w("")
    w("For comparison, start (fresh state) to ready (`/-/pkggate/ready`, Verdaccio `/-/ping`, "
      "devpi `/+api`, nginx listening), over every cold restart of this run: " + ", ".join(
          f"{s['contestant']} {cell(s, 'seconds', 2)} s" for s in RESULTS["summary"] if s["scenario"] == "s5x") + ".")
    w("")
    w("### 6. Real installs")
    w("")
    rc = RESULTS.get("real_counts")
    if rc:
        w(f"`npm ci --ignore-scripts` of a lockfile with {rc['npm_packages']} packages (from "
          "`bench/real/package.json`, resolved at run time directly against the public registry with "
          "`--before` 10 days ago) and `pip install --no-cache-dir --only-binary=:all: --no-deps --target` "
          f"of {rc['pip_requirements']} pinned requirements (`bench/real/requirements.txt`), through each "
          "contestant against the public registries (addresses taken from `pkggate config` defaults), "
          "empty client cache and a freshly started proxy with empty storage for every install, "
          "contestants interleaved, after one unrecorded warm-up round of every contestant (the "
          "registries' CDN caches an object on first request and the contestants do not all ask for "
          "the same objects: without it, whoever asks first pays the CDN's cold fetch). nginx rewrites PyPI file URLs to itself with `sub_filter`; npm "
          "rewrites the lockfile's registry host to the configured registry by itself.")
        w("")
        w("| install | contestant | wall time s | × direct | failed runs | peak RSS MiB |")
        w("|---|---|---|---|---|---|")
        for s in sorted((s for s in RESULTS["summary"] if s["scenario"] == "s6"),
                        key=lambda s: (s["item"], ["direct", "nginx", "pkggate", "verdaccio", "devpi"].index(s["contestant"]))):
            w(f"| {s['item']} | {s['contestant']} | {cell(s, 'seconds')} | {ratio(s, 'seconds')} | {s['errors']} | "
              f"{cell(s, 'rss_peak_mib', 0)} |")
    else:
        w("Not run in this mode (`--quick` skips it).")
    w("")
    w("### 7. Load")
    w("")
    w(f"wrk, {LOAD_CONNECTIONS} connections (2 threads), {LOAD_SECONDS} s, after a 2 s warm-up; mixed "
      "traffic: each wrk thread cycles through npm documents (express, left-pad, lodash, chalk, "
      "@babel/core, vite, react) and PyPI pages (requests, six, urllib3, django, pytz, "
      "python-dateutil; JSON and HTML). Verdaccio gets only the npm part, devpi only the PyPI part. "
      "Errors = socket errors (connect, read, write, timeout > 30 s) + non-2xx answers.")
    w("")
    w("| contestant | mix | req/s | p50 ms | p90 ms | p99 ms | errors | peak RSS MiB |")
    w("|---|---|---|---|---|---|---|---|")
    for r in RESULTS["runs"]:
        if r["scenario"] == "s7":
            det = ", ".join(f"{k} {v}" for k, v in r["error_detail"].items() if v)
            w(f"| {r['contestant']} | {r['item'][6:]} | {fmt(r['rps'])} | {r['p50_ms']:.1f} | {r['p90_ms']:.1f} | "
              f"{r['p99_ms']:.1f} | {r['errors']}{' (' + det + ')' if det else ''} | {r['rss_peak_mib']:.0f} |")
    return "\n".join(L) + "\n"


BEGIN = "<!-- bench/run:begin -->"
END = "<!-- bench/run:end -->"
HEADING = "## Side by side: pkggate, Verdaccio, devpi, nginx (issue 6)"


def update_doc(section):
    """Read-modify-write only the marked section of docs/benchmarks.md (the rest of the file
    may be edited by others at the same time)."""
    path = os.path.join(ROOT, "docs", "benchmarks.md")
    with open(path) as f:
        text = f.read()
    if BEGIN in text and END in text:
        a = text.index(BEGIN) + len(BEGIN)
        b = text.index(END)
        new = text[:a] + "\n" + section + text[b:]
    else:
        new = text.rstrip("\n") + f"\n\n{HEADING}\n\n{BEGIN}\n{section}{END}\n"
    tmp = path + ".bench-tmp"
    with open(tmp, "w") as f:
        f.write(new)
    os.replace(tmp, path)


def plot(path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    sz = RESULTS.get("doc_sizes", {})
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
    marks = {"direct": "o", "nginx": "s", "pkggate": "D", "verdaccio": "^"}
    for c in ("direct", "nginx", "pkggate", "verdaccio"):
        pts = []
        for s in RESULTS["summary"]:
            if s["scenario"] in ("s1", "s2") and s["contestant"] == c and s["phase"] == "warm" and s["conc"] == 1 \
                    and s["item"] in sz:
                pts.append((sz[s["item"]] / 1e6, s["p50_ms"]["median"], s["rss_peak_mib"]["median"]))
        pts.sort()
        if not pts:
            continue
        a1.plot([p[0] for p in pts], [p[1] for p in pts], marker=marks[c], label=c)
        a2.plot([p[0] for p in pts], [p[2] for p in pts], marker=marks[c], label=c)
    for a, t in ((a1, "p50 latency, warm, concurrency 1 (ms)"), (a2, "server peak RSS during that run (MiB, whole process)")):
        a.set_xscale("log")
        a.set_xlabel("npm document size (MB)")
        a.set_title(t, fontsize=10)
        a.grid(True, which="both", alpha=0.3)
        a.legend(fontsize=8)
    a1.set_yscale("log")
    fig.suptitle("npm documents: latency and memory against size (bench/run)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------- main ---------------

def cmd_version(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        return (out.stdout + out.stderr).strip().splitlines()[0]
    except Exception as e:
        return f"unknown ({e})"


def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem = int(line.split()[1]) / 1024 / 1024
    return {"nproc": os.cpu_count(), "cpu": cpu, "mem_gib": round(mem, 1), "kernel": platform.release()}


def git_rev():
    try:
        rev = run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]).strip()
        dirty = run(["git", "-C", ROOT, "status", "--porcelain", "--", "crates"]).strip()
        return rev + ("+uncommitted changes in crates/" if dirty else "")
    except Exception:
        return "?"


RUN = os.path.join(WORK, "run")


def main():
    shutil.rmtree(RUN, ignore_errors=True)
    os.makedirs(RUN)
    load = {"start": os.getloadavg()[0], "scenarios": {}}
    sizes = [100] if QUICK else [100, 1024]
    RESULTS["meta"] = {
        "mode": "quick" if QUICK else "full", "reps": REPS, "wrk_seconds": WRK_SECONDS,
        "load_seconds": LOAD_SECONDS, "started": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": machine(), "load": load,
        "versions": {
            "pkggate": cmd_version([PKGGATE_BIN, "--version"]) + f" (git {git_rev()})",
            "nginx": cmd_version(["nginx", "-v"]).replace("nginx version: ", ""),
            "wrk": cmd_version(["wrk", "-v"]).split(" [")[0],
            "Verdaccio": cmd_version(["node", VERDACCIO_JS, "--version"]),
            "devpi-server": cmd_version([os.path.join(VENV_BIN, "devpi-server"), "--version"]),
            "node": cmd_version(["node", "--version"]), "npm": cmd_version(["npm", "--version"]),
            "pip": cmd_version([sys.executable, "-m", "pip", "--version"]).split(" from ")[0],
            "python": platform.python_version(), "curl": cmd_version(["curl", "--version"]).split(" (")[0],
        },
        "commands": ["bench/run" + (" --quick" if QUICK else "")],
    }
    log(f"mode {'quick' if QUICK else 'full'}, {REPS} repetitions, load average {load['start']:.2f}")

    direct = Direct()
    log("laying out the fake upstream")
    RESULTS["doc_sizes"] = lay_out_upstream(direct.reg, direct.files, sizes)
    direct.start()
    nginx = NginxProxy(direct)
    nginx.start()
    pk = Pkggate(direct)
    log("starting pkggate (first start: ingesting the OSV bundles)")
    pk.start()
    vd = Verdaccio(direct)
    vd.start()
    dp = Devpi(direct)
    log("initialising devpi")
    dp.start()
    all_cs = [direct, nginx, pk, vd, dp]
    log("checking every contestant answers")
    check_contestants(all_cs, sizes)

    starts = []

    def restartable(c):
        s = c.restart(fresh=True)
        starts.append(record(scenario="s5x", item="start to ready (fresh)", contestant=c.name, phase="fresh",
                             conc=1, rep=0, seconds=round(s, 3), errors=0))

    npm_cs = [direct, nginx, pk, vd]
    pypi_cs = [direct, nginx, pk, dp]
    sz = RESULTS["doc_sizes"]
    H_NPM = {"Accept": ACCEPT_NPM}

    def npm_items(names, cold_concs=(1, 16)):
        return [(n, (lambda c, n=n: c.npm_doc(n)), H_NPM, sz[n], cold_concs) for n in names]

    failures = RESULTS.setdefault("failures", [])

    def guarded(name, fn):
        if not want(name) or (name == "s6" and QUICK):
            return
        load["scenarios"][name] = os.getloadavg()[0]
        try:
            fn()
        except Exception as e:
            import traceback
            traceback.print_exc()
            failures.append({"scenario": name, "error": f"{type(e).__name__}: {e}"})
            log(f"scenario {name} FAILED: {e}; going on with the others")

    def run_s1():
        log("scenario 1: big npm documents")
        docs_scenario("s1", npm_items(BIG), npm_cs, restartable)

    guarded("s1", run_s1)

    def run_s2():
        log("scenario 2: small npm documents")
        names = SMALL + ([] if QUICK else ["lodash", "react"])
        docs_scenario("s2", npm_items(names), npm_cs, restartable)

    guarded("s2", run_s2)

    def run_s4():
        log("scenario 4: PyPI pages")
        items = [("numpy JSON", lambda c: c.pypi_page("numpy"), {"Accept": ACCEPT_PYPI_JSON}, None, (1, 16)),
                 ("numpy HTML", lambda c: c.pypi_page("numpy"), {"Accept": ACCEPT_PYPI_HTML}, None, (1, 16)),
                 ("/simple/ root", lambda c: c.pypi_root(), {"Accept": ACCEPT_PYPI_HTML}, sz["/simple/"], (1,))]
        docs_scenario("s4", items, pypi_cs, restartable)

    guarded("s4", run_s4)

    def run_s3():
        log("scenario 3: tarball and wheel streaming " + ", ".join(f"{s} MiB" for s in sizes))
        streaming_scenario(all_cs, sizes)

    guarded("s3", run_s3)

    def run_s7():
        log(f"scenario 7: load, {LOAD_CONNECTIONS} connections, {LOAD_SECONDS} s each")
        load_scenario(all_cs)

    guarded("s7", run_s7)

    def run_s5():
        log("scenario 5: pkggate start-up with the full OSV data")
        startup_scenario(pk)

    guarded("s5", run_s5)

    def run_s6():
        log("scenario 6: real installs against the public registries")
        for c in (vd, dp, pk, nginx):
            c.stop()
        pub = public_registries()
        # The same policy with every rule in monitor mode: the installs measure what the
        # rules cost, not which of the pinned versions today's advisories refuse (the audit
        # log's `warn` lines say what enforcing would have blocked).
        with open(os.path.join(BENCH, "policy.yaml")) as f:
            pol = f.read().replace("\nmode: enforce\n", "\nmode: monitor\n")
        monitor_policy = os.path.join(RUN, "policy-monitor.yaml")
        with open(monitor_policy, "w") as f:
            f.write(pol)
        pn = NginxProxy(direct, public=pub)
        pp = Pkggate(direct, public=pub, policy=monitor_policy)
        # Reuse the already ingested mirror: this scenario is about installs, not start-up.
        os.makedirs(os.path.dirname(pp.mirror), exist_ok=True)
        for f in os.listdir(os.path.dirname(pk.mirror)):
            if f.startswith("mirror.db"):
                shutil.copyfile(os.path.join(os.path.dirname(pk.mirror), f),
                                os.path.join(os.path.dirname(pp.mirror), f))
        pv = Verdaccio(direct, public=pub)
        pd = Devpi(direct, public=pub)
        try:
            real_installs(pub, [PublicDirect(), pn, pp, pv, pd])
        finally:
            for c in (pn, pp, pv, pd):
                c.stop()
        warns = {}
        for fn in sorted(os.listdir(pp.dir)):
            if fn.startswith("audit.log"):
                with open(os.path.join(pp.dir, fn)) as f:
                    for line in f:
                        try:
                            a = json.loads(line)
                        except ValueError:
                            continue
                        if a.get("action") in ("warn", "block"):
                            k = (a.get("ecosystem"), a.get("rule"))
                            warns.setdefault(k, set()).add(f"{a.get('package')}@{a.get('version')}")
        RESULTS["real_would_block"] = {f"{e} {r}": sorted(v) for (e, r), v in warns.items()}

    guarded("s6", run_s6)

    load["end"] = os.getloadavg()[0]
    # Start-to-ready times of the restarts.
    for c in ("pkggate", "verdaccio", "devpi"):
        pass
    RESULTS["meta"]["finished"] = datetime.datetime.now().isoformat(timespec="seconds")
    RESULTS["meta"]["duration_s"] = round(time.time() - T_START, 1)
    by = summarize()
    tgt = targets(by)
    stop_all()
    section = write_report(sizes, by, tgt)
    out_json = os.path.join(BENCH, "results", "latest.json" if not ARGS.no_write else "scratch.json")
    if ARGS.no_write:
        out_json = os.path.join(RUN, "results.json")
    os.makedirs(os.path.dirname(out_json), exist_ok=True)
    with open(out_json, "w") as f:
        json.dump(RESULTS, f, indent=1)
    log(f"results: {out_json}")
    if not ARGS.no_write:
        plot(os.path.join(ROOT, "docs", "benchmarks-size.png"))
        update_doc(section)
        log("docs/benchmarks.md section and docs/benchmarks-size.png written")
    else:
        with open(os.path.join(RUN, "section.md"), "w") as f:
            f.write(section)
        plot(os.path.join(RUN, "benchmarks-size.png"))
    for x in tgt:
        log(f"target {'MET   ' if x['met'] else 'MISSED'} {x['target']}: {x['measured']}")
    log(f"done in {(time.time() - T_START) / 60:.1f} min")


def profile():
    """pkggate under `valgrind --tool=callgrind` (instrumentation switched on around each
    request only), one run per case; writes callgrind_annotate's top functions."""
    out = os.path.join(WORK, "profile")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    os.makedirs(RUN, exist_ok=True)
    direct = Direct()
    lay_out_upstream(direct.reg, direct.files, [100])
    direct.start()
    pk = Pkggate(direct)
    pk.start()  # ingest once without valgrind
    pk.stop()
    cases = [("npm-next-cold", f"/next", {"Accept": ACCEPT_NPM}),
             ("npm-next-warm", f"/next", {"Accept": ACCEPT_NPM}),
             ("npm-tarball-100m", f"/{STREAM_NPM[100]}/-/{STREAM_NPM[100]}-1.0.0.tgz", {}),
             ("pypi-root", "/simple/", {"Accept": ACCEPT_PYPI_HTML}),
             ("pypi-numpy-json-cold", "/simple/numpy/", {"Accept": ACCEPT_PYPI_JSON})]
    summary = {}
    for name, path, headers in cases:
        cg = os.path.join(out, f"callgrind.{name}.out")
        env = pk.env()
        env["PKGGATE_MIRROR_REFRESH_SECONDS"] = "86400"
        p = spawn(["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={cg}",
                   PKGGATE_BIN, "serve"], os.path.join(out, f"{name}.log"), env=env, cwd=pk.dir)
        try:
            wait_until("pkggate under callgrind", url_ok(pk.base + "/-/pkggate/ready"), 300, 0.5)
            if name == "npm-next-warm":
                http_get(pk.base + path, headers, timeout=600)
            subprocess.run(["callgrind_control", "-i", "on", str(p.pid)], capture_output=True)
            s_, _, body, t = http_get(pk.base + path, headers, timeout=900)
            subprocess.run(["callgrind_control", "-i", "off", str(p.pid)], capture_output=True)
            log(f"  profile {name}: HTTP {s_}, {len(body)} bytes, {t:.1f} s under callgrind")
        finally:
            stop_proc(p, timeout=120)
        ann = subprocess.run(["callgrind_annotate", "--threshold=99", cg], capture_output=True, text=True).stdout
        with open(os.path.join(out, f"{name}.annotate.txt"), "w") as f:
            f.write(ann)
        total = None
        top = []
        for line in ann.splitlines():
            m = re.match(r"^\s*([\d,]+)\s+\(\s*([\d.]+)%\)\s+(\S.*?)\s*$", line)
            if m and "PROGRAM TOTALS" in line:
                total = int(m.group(1).replace(",", ""))
            elif m and total is not None and len(top) < 15:
                top.append({"pct": float(m.group(2)), "ir": int(m.group(1).replace(",", "")),
                            "function": re.sub(r"^[^:]*:", "", m.group(3))[:160]})
        summary[name] = {"total_ir": total, "top": top}
        log(f"  profile {name}: {total} instructions; top: " +
            "; ".join(f"{x['pct']:.1f}% {x['function'][:70]}" for x in top[:5]))
    direct.stop()
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)


def report_only():
    global RESULTS, QUICK, REPS, WRK_SECONDS, LOAD_SECONDS
    with open(os.path.join(BENCH, "results", "latest.json")) as f:
        RESULTS = json.load(f)
    M = RESULTS["meta"]
    QUICK = M["mode"] == "quick"
    REPS, WRK_SECONDS, LOAD_SECONDS = M["reps"], M["wrk_seconds"], M["load_seconds"]
    by = summarize()
    tgt = targets(by)
    with open(os.path.join(BENCH, "results", "latest.json"), "w") as f:
        json.dump(RESULTS, f, indent=1)
    plot(os.path.join(ROOT, "docs", "benchmarks-size.png"))
    update_doc(write_report(None, by, tgt))
    log("re-rendered docs/benchmarks.md's section and docs/benchmarks-size.png")


if __name__ == "__main__":
    try:
        if ARGS.report_only:
            report_only()
        elif ARGS.profile:
            profile()
        else:
            main()
    finally:
        stop_all()
