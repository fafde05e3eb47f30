//! Upload timestamps (`upload-time`, `upload_time_iso_8601`, legacy naive `upload_time`).

use std::cmp::Ordering;

/// A parsed upload time: the raw string and the instant it denotes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UploadTime {
    /// As upstream wrote it.
    pub raw: String,
    /// Seconds since the Unix epoch (UTC).
    pub unix_seconds: i64,
    /// Fraction of the second, in nanoseconds.
    pub nanos: u32,
}

impl UploadTime {
    /// Parse RFC 3339 `YYYY-MM-DDTHH:MM:SS(.fraction)?(Z|±HH:MM)?` (`T` or space; a missing
    /// offset means UTC, as in PyPI's legacy naive `upload_time`). `None` when invalid.
    pub fn parse(raw: &str) -> Option<UploadTime> {
        let (unix_seconds, nanos) = UploadTime::instant(raw)?;
        Some(UploadTime {
            raw: raw.to_string(),
            unix_seconds,
            nanos,
        })
    }

    /// [`UploadTime::parse`] without keeping the string: `(unix_seconds, nanos)`.
    pub(crate) fn instant(raw: &str) -> Option<(i64, u32)> {
        // `trim` walks Unicode whitespace; text that starts and ends with a printable ASCII
        // byte (as every real timestamp does) has none to trim.
        let graphic = |c: Option<&u8>| c.is_some_and(u8::is_ascii_graphic);
        let s = if graphic(raw.as_bytes().first()) && graphic(raw.as_bytes().last()) {
            raw
        } else {
            raw.trim()
        };
        let b = s.as_bytes();
        if b.len() < 19 || b.len() > 64 {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            let part = b.get(r)?;
            if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
                return None;
            }
            part.iter()
                .try_fold(0i64, |acc, &d| Some(acc * 10 + i64::from(d - b'0')))
        };
        if b[4] != b'-'
            || b[7] != b'-'
            || !matches!(b[10], b'T' | b't' | b' ')
            || b[13] != b':'
            || b[16] != b':'
        {
            return None;
        }
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&month)
            || day < 1
            || day > days_in_month(year, month)
            || hour > 23
            || minute > 59
            || second > 60
        {
            return None;
        }
        let mut i = 19;
        let mut nanos: u32 = 0;
        if b.get(i) == Some(&b'.') {
            let start = i + 1;
            let mut end = start;
            while end < b.len() && b[end].is_ascii_digit() {
                end += 1;
            }
            if end == start {
                return None;
            }
            for (k, &d) in b[start..end].iter().enumerate() {
                if k < 9 {
                    nanos = nanos * 10 + u32::from(d - b'0');
                }
            }
            for _ in (end - start)..9 {
                nanos *= 10;
            }
            i = end;
        }
        let offset_seconds = match &b[i..] {
            [] | [b'Z'] | [b'z'] => 0,
            [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
                let h = num(i + 1..i + 3)?;
                let m = num(i + 4..i + 6)?;
                if h > 23 || m > 59 {
                    return None;
                }
                let off = h * 3600 + m * 60;
                if *sign == b'+' { off } else { -off }
            }
            _ => return None,
        };
        let days = days_from_civil(year, month, day);
        let unix_seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
        Some((unix_seconds, nanos))
    }

    /// Order by instant.
    pub fn instant_cmp(&self, other: &UploadTime) -> Ordering {
        (self.unix_seconds, self.nanos).cmp(&(other.unix_seconds, other.nanos))
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pypi_forms() {
        let t = UploadTime::parse("2012-01-22T05:08:17.091441Z").unwrap();
        assert_eq!(t.unix_seconds, 1_327_208_897);
        assert_eq!(t.nanos, 91_441_000);
        assert_eq!(
            UploadTime::parse("2012-01-22T05:08:17")
                .unwrap()
                .unix_seconds,
            1_327_208_897
        );
        assert_eq!(
            UploadTime::parse("2012-01-22T07:08:17+02:00")
                .unwrap()
                .unix_seconds,
            1_327_208_897
        );
        assert_eq!(
            UploadTime::parse("1970-01-01T00:00:00Z")
                .unwrap()
                .unix_seconds,
            0
        );
        assert_eq!(
            UploadTime::parse("2024-02-29T00:00:00Z")
                .unwrap()
                .unix_seconds,
            1_709_164_800
        );
        let a = UploadTime::parse("2020-01-01T00:00:17Z").unwrap();
        let b = UploadTime::parse("2020-01-01T00:00:17.5Z").unwrap();
        assert_eq!(a.instant_cmp(&b), Ordering::Less);
    }

    #[test]
    fn rejects_garbage() {
        for s in [
            "",
            "2012-01-22",
            "2012-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2012-01-22T25:00:00Z",
            "2012-01-22T05:08:17.Z",
            "2012-01-22T05:08:17+0200",
            "2012-01-22T05:08:17Zjunk",
            "２０１２-01-22T05:08:17Z",
            "+012-01-22T05:08:17Z",
        ] {
            assert_eq!(UploadTime::parse(s), None, "{s}");
        }
    }
}
