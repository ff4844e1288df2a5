//! Writing the pieces of a decision-log line straight into its buffer:
//! JSON strings, integers, RFC 3339 timestamps and socket addresses, with
//! no intermediate `String` and no `fmt` machinery on the common paths.

use std::net::{IpAddr, SocketAddr};
use std::time::{SystemTime, UNIX_EPOCH};

/// Whether a byte must be escaped inside a JSON string.
fn needs_escape(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\'
}

/// `text` as a JSON string.
pub fn string(out: &mut Vec<u8>, text: &str) {
    if text.bytes().any(needs_escape) {
        // Writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, text);
    } else {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    }
}

/// `parts` joined by `/` as one JSON string.
pub fn joined_string(out: &mut Vec<u8>, parts: &[String]) {
    if parts.iter().any(|part| part.bytes().any(needs_escape)) {
        string(out, &parts.join("/"));
        return;
    }
    out.push(b'"');
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(part.as_bytes());
    }
    out.push(b'"');
}

/// An unsigned integer in decimal.
pub fn integer(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// `value` in exactly `width` decimal digits (zero-padded; higher digits
/// are dropped, which the callers' ranges never need).
fn fixed_digits(out: &mut Vec<u8>, mut value: u64, width: usize) {
    let start = out.len();
    out.resize(start + width, b'0');
    for slot in out[start..].iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// The civil date (year, month, day) of a day count since 1970-01-01, in
/// the proleptic Gregorian calendar: days are counted from 0000-03-01 so
/// that each 400-year era, and each year within it, ends with February.
fn civil_date(days_since_epoch: u64) -> (u64, u64, u64) {
    const DAYS_PER_ERA: u64 = 146_097;
    // 1970-01-01 is day 719 468 after 0000-03-01.
    let days = days_since_epoch + 719_468;
    let era = days / DAYS_PER_ERA;
    let day_of_era = days % DAYS_PER_ERA;
    // Leap days: every 4th year, but not the 100th, but the 400th.
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months from March: 31, 30, 31, 30, 31, 31, 30, 31, 30, 31, 31, 28/29.
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
}

/// `at` as a JSON string in RFC 3339 UTC with nanoseconds, the form OPA
/// writes (`"2026-11-30T23:10:46.123456789Z"`). Times before 1970 are
/// written as the epoch.
pub fn timestamp(out: &mut Vec<u8>, at: SystemTime) {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since.as_secs();
    let (year, month, day) = civil_date(seconds / 86_400);
    let of_day = seconds % 86_400;
    out.push(b'"');
    fixed_digits(out, year, 4);
    out.push(b'-');
    fixed_digits(out, month, 2);
    out.push(b'-');
    fixed_digits(out, day, 2);
    out.push(b'T');
    fixed_digits(out, of_day / 3600, 2);
    out.push(b':');
    fixed_digits(out, of_day % 3600 / 60, 2);
    out.push(b':');
    fixed_digits(out, of_day % 60, 2);
    out.push(b'.');
    fixed_digits(out, u64::from(since.subsec_nanos()), 9);
    out.extend_from_slice(b"Z\"");
}

/// A socket address as a JSON string (`"127.0.0.1:5000"`, `"[::1]:5000"`).
pub fn address(out: &mut Vec<u8>, addr: SocketAddr) {
    match addr.ip() {
        IpAddr::V4(ip) => {
            out.push(b'"');
            for (i, octet) in ip.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                integer(out, u64::from(octet));
            }
            out.push(b':');
            integer(out, u64::from(addr.port()));
            out.push(b'"');
        }
        IpAddr::V6(_) => {
            use std::io::Write;
            // Writing into a Vec cannot fail.
            let _ = write!(out, "\"{addr}\"");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn written(write: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        write(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn timestamps_match_rfc3339_with_nanoseconds() {
        let seconds = [
            0,
            59,
            86_399,
            86_400,
            951_782_400,   // 2000-02-29
            951_868_800,   // 2000-03-01
            1_709_164_800, // 2024-02-29
            4_102_444_799, // 2099-12-31T23:59:59
            4_107_542_400, // 2100-03-01 (2100 is not a leap year)
            253_402_300_799,
        ];
        for (i, second) in seconds.into_iter().enumerate() {
            let at = UNIX_EPOCH + Duration::new(second, (i as u32) * 123_456_789 % 1_000_000_000);
            let expected = format!("\"{}\"", humantime::format_rfc3339_nanos(at));
            assert_eq!(written(|out| timestamp(out, at)), expected, "{second}");
        }
        // Every day across several leap cycles.
        for day in (0..200_000u64).step_by(7) {
            let at = UNIX_EPOCH + Duration::from_secs(day * 86_400 + 3_723);
            let expected = format!("\"{}\"", humantime::format_rfc3339_nanos(at));
            assert_eq!(written(|out| timestamp(out, at)), expected, "day {day}");
        }
    }

    #[test]
    fn strings_are_escaped_only_when_needed() {
        assert_eq!(written(|out| string(out, "plain-id")), r#""plain-id""#);
        assert_eq!(written(|out| string(out, "a\"b\\c\nd")), r#""a\"b\\c\nd""#);
        let parts = ["provisioning".to_string(), "decision".to_string()];
        assert_eq!(
            written(|out| joined_string(out, &parts)),
            r#""provisioning/decision""#
        );
        let parts = ["a\"".to_string(), "b".to_string()];
        assert_eq!(written(|out| joined_string(out, &parts)), r#""a\"/b""#);
        assert_eq!(written(|out| joined_string(out, &[])), r#""""#);
    }

    #[test]
    fn addresses_and_integers() {
        let v4: SocketAddr = "10.0.255.7:50123".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::1]:443".parse().unwrap();
        assert_eq!(written(|out| address(out, v4)), r#""10.0.255.7:50123""#);
        assert_eq!(written(|out| address(out, v6)), r#""[2001:db8::1]:443""#);
        assert_eq!(written(|out| integer(out, 0)), "0");
        assert_eq!(written(|out| integer(out, u64::MAX)), u64::MAX.to_string());
    }
}
