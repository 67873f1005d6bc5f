//! Timestamps as access logs write them -> unix microseconds (UTC). Hand-written: this runs once
//! per log line, and the formats are fixed-width.

fn num(b: &[u8]) -> Option<i64> {
    if b.is_empty() {
        return None;
    }
    let mut v: i64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as i64;
    }
    Some(v)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn month(b: &[u8]) -> Option<i64> {
    const M: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    M.iter()
        .position(|m| m.eq_ignore_ascii_case(b))
        .map(|i| i as i64 + 1)
}

fn valid(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64) -> bool {
    (1970..=9999).contains(&y)
        && (1..=12).contains(&mo)
        && (1..=31).contains(&d)
        && h < 24
        && mi < 60
        && s <= 60
}

/// `25/Oct/2016:14:49:34 +0200` (without the brackets).
pub(crate) fn clf(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[2] != b'/'
        || b[6] != b'/'
        || b[11] != b':'
        || b[14] != b':'
        || b[17] != b':'
    {
        return None;
    }
    // consecutive lines mostly share their minute and zone: `dd/Mon/yyyy:hh:mm` and ` +zzzz`
    // are parsed once per thread per minute, leaving the seconds
    thread_local! {
        static MINUTE: std::cell::Cell<([u8; 17], [u8; 6], i64)> =
            const { std::cell::Cell::new(([0; 17], [0; 6], 0)) };
    }
    if b.len() >= 26 && b[20] == b' ' {
        let (date, zone) = (&b[..17], &b[20..26]);
        let (last_date, last_zone, base) = MINUTE.get();
        let sec = num(&b[18..20])?;
        if last_date == date && last_zone == zone {
            return (sec <= 60).then_some((base + sec) * 1_000_000);
        }
        let t = clf_full(b)?;
        let base = t / 1_000_000 - sec;
        let mut d = [0; 17];
        d.copy_from_slice(date);
        let mut z = [0; 6];
        z.copy_from_slice(zone);
        MINUTE.set((d, z, base));
        return Some(t);
    }
    clf_full(b)
}

/// `clf` without the per-minute cache.
fn clf_full(b: &[u8]) -> Option<i64> {
    // consecutive lines mostly share their day: the date part is parsed once per thread per day
    thread_local! {
        static DAY: std::cell::Cell<([u8; 11], i64)> = const { std::cell::Cell::new(([0; 11], 0)) };
    }
    let (h, mi, sec) = (num(&b[12..14])?, num(&b[15..17])?, num(&b[18..20])?);
    let (last, last_days) = DAY.get();
    let days = if last == b[..11] {
        last_days
    } else {
        let d = num(&b[0..2])?;
        let mo = month(&b[3..6])?;
        let y = num(&b[7..11])?;
        if !valid(y, mo, d, 0, 0, 0) {
            return None;
        }
        let days = days_from_civil(y, mo, d);
        let mut key = [0; 11];
        key.copy_from_slice(&b[..11]);
        DAY.set((key, days));
        days
    };
    if !valid(1970, 1, 1, h, mi, sec) {
        return None;
    }
    let mut offset = 0;
    if b.len() >= 26 && b[20] == b' ' {
        let sign = match b[21] {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        offset = sign * (num(&b[22..24])? * 3600 + num(&b[24..26])? * 60);
    }
    Some((days * 86_400 + h * 3600 + mi * 60 + sec - offset) * 1_000_000)
}

/// RFC 3339 / ISO 8601: `2018-07-02T22:23:00.186641Z`, `2024-03-12T10:00:01+01:00`,
/// also a space instead of `T`. Without a zone, UTC.
pub fn iso(s: &str) -> Option<i64> {
    let b = s.trim().as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b' ') {
        return None;
    }
    let (y, mo, d) = (num(&b[0..4])?, num(&b[5..7])?, num(&b[8..10])?);
    let (h, mi, sec) = (num(&b[11..13])?, num(&b[14..16])?, num(&b[17..19])?);
    if b[13] != b':' || b[16] != b':' || !valid(y, mo, d, h, mi, sec) {
        return None;
    }
    let mut i = 19;
    let mut micros = 0i64;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let frac = &b[start..i];
        let mut scale = 100_000i64;
        for &c in frac.iter().take(6) {
            micros += (c - b'0') as i64 * scale;
            scale /= 10;
        }
    }
    let mut offset = 0i64;
    if i < b.len() {
        match b[i] {
            b'Z' | b'z' => {}
            b'+' | b'-' => {
                let sign = if b[i] == b'+' { 1 } else { -1 };
                let z = &b[i + 1..];
                let (hh, mm) = match z.len() {
                    5 if z[2] == b':' => (num(&z[0..2])?, num(&z[3..5])?),
                    4 => (num(&z[0..2])?, num(&z[2..4])?),
                    2 => (num(&z[0..2])?, 0),
                    _ => return None,
                };
                offset = sign * (hh * 3600 + mm * 60);
            }
            _ => return None,
        }
    }
    Some(
        (days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset) * 1_000_000
            + micros,
    )
}

/// W3C `date` and `time` fields: `2019-12-04` + `21:02:31` (UTC); IIS may write `2007-4-11`.
pub(crate) fn w3c(date: &str, time: &str) -> Option<i64> {
    let mut dp = date.split('-');
    let y = num(dp.next()?.as_bytes())?;
    let mo = num(dp.next()?.as_bytes())?;
    let d = num(dp.next()?.as_bytes())?;
    let mut tp = time.split(':');
    let h = num(tp.next()?.as_bytes())?;
    let mi = num(tp.next()?.as_bytes())?;
    let s_str = tp.next()?;
    let (s, frac) = s_str.split_once('.').unwrap_or((s_str, ""));
    let sec = num(s.as_bytes())?;
    if !valid(y, mo, d, h, mi, sec) {
        return None;
    }
    let mut micros = 0;
    let mut scale = 100_000;
    for c in frac.bytes().take(6) {
        if !c.is_ascii_digit() {
            return None;
        }
        micros += (c - b'0') as i64 * scale;
        scale /= 10;
    }
    Some((days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec) * 1_000_000 + micros)
}

/// Unix time as a number: seconds, milliseconds, microseconds or nanoseconds, told by magnitude.
pub fn unix_any(v: f64) -> Option<i64> {
    if !v.is_finite() || v < 0.0 {
        return None;
    }
    let us = if v >= 1e17 {
        v / 1e3
    } else if v >= 1e14 {
        v
    } else if v >= 1e11 {
        v * 1e3
    } else {
        v * 1e6
    };
    Some(us as i64)
}

/// (year, month, day) of a day number since 1970-01-01 (Howard Hinnant's algorithm).
pub(crate) fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Unix microseconds -> RFC 3339 UTC with second precision (`2016-10-25T12:49:34Z`).
pub fn to_rfc3339(us: i64) -> String {
    let mut out = Vec::with_capacity(20);
    push_rfc3339(us, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// `push_rfc3339` that remembers the last day's date: rows of a URL list share few days.
#[derive(Default)]
pub struct Stamper {
    day: Option<(i64, [u8; 11])>,
}

impl Stamper {
    pub fn push(&mut self, us: i64, out: &mut Vec<u8>) {
        let secs = us.div_euclid(1_000_000);
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let date = match self.day {
            Some((d, date)) if d == days => date,
            _ => {
                let mut b = Vec::with_capacity(20);
                push_rfc3339(days * 86_400_000_000, &mut b);
                let (true, Ok(date)) = (b.len() == 20, <[u8; 11]>::try_from(&b[..11])) else {
                    // outside years 0-9999: no shortcut
                    push_rfc3339(us, out);
                    return;
                };
                self.day = Some((days, date));
                date
            }
        };
        let pair = |v: i64| [b'0' + (v / 10) as u8, b'0' + (v % 10) as u8];
        let (h, mi, sec) = (pair(rem / 3600), pair(rem % 3600 / 60), pair(rem % 60));
        out.extend_from_slice(&date);
        out.extend_from_slice(&[h[0], h[1], b':', mi[0], mi[1], b':', sec[0], sec[1], b'Z']);
    }
}

/// `to_rfc3339` appended to a byte buffer.
pub(crate) fn push_rfc3339(us: i64, out: &mut Vec<u8>) {
    let secs = us.div_euclid(1_000_000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        out.extend_from_slice(
            format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
                rem / 3600,
                rem % 3600 / 60,
                rem % 60
            )
            .as_bytes(),
        );
        return;
    }
    // two digits at a time
    let pair = |v: i64| {
        let v = v as u8;
        [b'0' + v / 10, b'0' + v % 10]
    };
    let (c, yy, mo, dd) = (pair(y / 100), pair(y % 100), pair(m), pair(d));
    let (h, mi, sec) = (pair(rem / 3600), pair(rem % 3600 / 60), pair(rem % 60));
    out.extend_from_slice(&[
        c[0], c[1], yy[0], yy[1], b'-', mo[0], mo[1], b'-', dd[0], dd[1], b'T', h[0], h[1], b':',
        mi[0], mi[1], b':', sec[0], sec[1], b'Z',
    ]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamper_writes_what_to_rfc3339_writes() {
        let mut st = Stamper::default();
        for us in [
            0,
            1_477_399_774_123_456,
            1_477_399_775_000_000,
            1_477_440_000_000_000,
            -1,
            253_402_300_800_000_000,
        ] {
            let mut b = Vec::new();
            st.push(us, &mut b);
            assert_eq!(String::from_utf8(b).unwrap(), to_rfc3339(us), "{us}");
        }
    }

    /// The per-minute cache returns what the full parse does, whatever the order of the lines
    /// (same minute, other zone, other second, invalid seconds after a valid minute).
    #[test]
    fn clf_minute_cache_agrees_with_full_parse() {
        let mut rng = 99u64;
        let mut lines = Vec::new();
        for _ in 0..5000 {
            rng = crate::urls::mix(rng);
            let d = 1 + rng % 3;
            let m = rng >> 8 & 1;
            let sec = (rng >> 16) % 63; // 61 and 62 are invalid
            let zone = ["+0000", "-0700", "+0530"][(rng >> 24) as usize % 3];
            lines.push(format!("{d:02}/Mar/2024:10:{m:02}:{sec:02} {zone}"));
        }
        for s in &lines {
            assert_eq!(clf(s), clf_full(s.as_bytes()), "{s}");
        }
        assert_eq!(clf("01/Mar/2024:10:00:61 +0000"), None);
    }

    #[test]
    fn formats_agree() {
        // 2016-10-25T12:49:34Z
        let want = 1_477_399_774_000_000;
        assert_eq!(clf("25/Oct/2016:14:49:34 +0200"), Some(want));
        assert_eq!(iso("2016-10-25T12:49:34Z"), Some(want));
        assert_eq!(iso("2016-10-25T14:49:34+02:00"), Some(want));
        assert_eq!(iso("2016-10-25 12:49:34"), Some(want));
        assert_eq!(w3c("2016-10-25", "12:49:34"), Some(want));
        assert_eq!(
            iso("2018-07-02T22:23:00.186641Z"),
            Some(1_530_570_180_186_641)
        );
        assert_eq!(unix_any(1_477_399_774.0), Some(want));
        assert_eq!(unix_any(1_477_399_774_000.0), Some(want));
        assert_eq!(unix_any(1_477_399_774_000_000_000.0), Some(want));
        assert_eq!(w3c("2007-4-11", "15:53:49"), iso("2007-04-11T15:53:49Z"));
        assert_eq!(to_rfc3339(want), "2016-10-25T12:49:34Z");
        for days in [-1000, 0, 59, 60, 365, 11_016, 19_000, 20_000, 100_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(to_rfc3339(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn rejects_junk() {
        for s in [
            "",
            "25/Oct/2016",
            "32/Oct/2016:14:49:34 +0200",
            "25/Foo/2016:14:49:34 +0200",
            "25/Oct/2016:14:49:34 x0200",
            // the separators between hours, minutes and seconds are checked too
            "25/Oct/2016:14]49:34 +0200",
            "25/Oct/2016:14:49x34 +0200",
        ] {
            assert_eq!(clf(s), None, "{s}");
        }
        for s in [
            "2016-13-25T12:49:34Z",
            "2016-10-25T12:49",
            "2016-10-25T12:49:34Q",
            "yesterday",
        ] {
            assert_eq!(iso(s), None, "{s}");
        }
    }
}
