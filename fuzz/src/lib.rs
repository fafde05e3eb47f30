//! Helpers shared by the fuzz targets (see `README.md`).
//!
//! Most targets read their input as `<selector byte><first line>\n<body>`: the selector picks
//! options (output format, which versions to remove, how to chunk), the first line is a
//! project name or similar, the body is the document as the network would deliver it. The
//! seed script (`fuzz/seeds.py`) writes seeds in the same layout.

/// Input split as `<selector byte><head>\n<body>`. A missing `\n` gives an empty body.
pub struct Framed<'a> {
    pub sel: u8,
    pub head: &'a [u8],
    pub body: &'a [u8],
}

/// Split `data` as [`Framed`]. Empty input gives selector 0 and empty parts.
pub fn framed(data: &[u8]) -> Framed<'_> {
    let (sel, rest) = match data.split_first() {
        Some((&s, rest)) => (s, rest),
        None => (0, data),
    };
    match rest.iter().position(|&b| b == b'\n') {
        Some(i) => Framed {
            sel,
            head: &rest[..i],
            body: &rest[i + 1..],
        },
        None => Framed {
            sel,
            head: rest,
            body: &[],
        },
    }
}

/// Input split as `<selector byte><body>`.
pub fn selector(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((&s, rest)) => (s, rest),
        None => (0, data),
    }
}

/// FNV-1a, for deterministic "random" decisions (which version to remove) from a string.
pub fn fnv(s: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in s {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A decision about `s` that depends on the selector: true for roughly one in `one_in`.
pub fn pick(sel: u8, s: &str, one_in: u64) -> bool {
    one_in != 0 && (fnv(s.as_bytes()) ^ u64::from(sel)).is_multiple_of(one_in)
}

/// xorshift64*, seeded from input bytes (chunk sizes).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `1..=max`.
    pub fn size(&mut self, max: usize) -> usize {
        1 + (self.next() % max.max(1) as u64) as usize
    }
}

/// Percent-encode every byte outside RFC 3986 `unreserved`, so the result is one path
/// segment that decodes back to `s`.
pub fn pct_segment(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
    out
}

/// Page URLs the PyPI targets resolve relative links against.
pub const PAGE_URLS: [&str; 2] = [
    "https://upstream.example/simple/project/",
    "http://127.0.0.1:8080/pypi/simple/project/",
];

/// The proxy URL the PyPI targets publish for a kept file: ends with the filename, encoded
/// as one path segment (so the HTML parser's "last path segment, percent-decoded" gives the
/// filename back).
pub fn proxy_file_url(filename: &str) -> String {
    format!(
        "http://127.0.0.1:8080/files/ab/cd/{}",
        pct_segment(filename)
    )
}
