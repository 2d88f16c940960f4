//! Sizes and durations as people type them (`1GiB`, `10s`), and rates as reported.
//!
//! Rates are in MB/s with MB = 10^6 bytes, the unit disk and network figures use.

use std::time::Duration;

/// Bytes per MB in every reported rate.
pub const BYTES_PER_MB: f64 = 1e6;

const SIZE_UNITS: &[(&str, u64)] = &[
    ("", 1),
    ("b", 1),
    ("k", 1 << 10),
    ("kib", 1 << 10),
    ("m", 1 << 20),
    ("mib", 1 << 20),
    ("g", 1 << 30),
    ("gib", 1 << 30),
    ("t", 1 << 40),
    ("tib", 1 << 40),
    ("kb", 1_000),
    ("mb", 1_000_000),
    ("gb", 1_000_000_000),
    ("tb", 1_000_000_000_000),
];

/// Parses `1GiB`, `512KiB`, `100MB`, `4096` (bytes). Binary units accept the short `k/m/g/t`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let (number, unit) = split_number(text);
    let value: u64 = number.parse().map_err(|_| {
        format!("size {text:?}: expected a whole number followed by B, KiB, MiB, GiB, KB, MB or GB")
    })?;
    let unit_lower = unit.trim().to_ascii_lowercase();
    let multiplier = SIZE_UNITS
        .iter()
        .find(|(name, _)| *name == unit_lower)
        .map(|(_, m)| *m)
        .ok_or_else(|| {
            format!("size {text:?}: unknown unit {unit:?} (use B, KiB, MiB, GiB, KB, MB or GB)")
        })?;
    value
        .checked_mul(multiplier)
        .ok_or_else(|| format!("size {text:?} does not fit in 64 bits"))
}

/// Parses `10s`, `500ms`, `2m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = split_number(text);
    let value: u64 = number.parse().map_err(|_| {
        format!("duration {text:?}: expected a whole number followed by ms, s or m")
    })?;
    match unit.trim() {
        "ms" => Ok(Duration::from_millis(value)),
        "s" | "" => Ok(Duration::from_secs(value)),
        "m" => value
            .checked_mul(60)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("duration {text:?} is too long")),
        other => Err(format!(
            "duration {text:?}: unknown unit {other:?} (use ms, s or m)"
        )),
    }
}

fn split_number(text: &str) -> (&str, &str) {
    let text = text.trim();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    text.split_at(digits)
}

/// `bytes` moved in `elapsed`, in MB/s.
pub fn mb_per_s(bytes: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        return 0.0;
    }
    bytes as f64 / BYTES_PER_MB / secs
}

/// A size for people: `1 GiB`, `512 KiB`, `1000 B`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if value.fract() == 0.0 {
        format!("{value} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        let cases: &[(&str, Result<u64, ()>)] = &[
            ("4096", Ok(4096)),
            ("1GiB", Ok(1 << 30)),
            ("1gib", Ok(1 << 30)),
            ("1G", Ok(1 << 30)),
            ("512KiB", Ok(512 << 10)),
            ("1MiB", Ok(1 << 20)),
            ("100MB", Ok(100_000_000)),
            ("3 B", Ok(3)),
            ("", Err(())),
            ("GiB", Err(())),
            ("1.5GiB", Err(())),
            ("1 parsec", Err(())),
            ("-1", Err(())),
            ("99999999999TiB", Err(())),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_size(text).map_err(|_| ()), *expected, "{text:?}");
        }
    }

    #[test]
    fn durations() {
        let cases: &[(&str, Result<Duration, ()>)] = &[
            ("10s", Ok(Duration::from_secs(10))),
            ("10", Ok(Duration::from_secs(10))),
            ("500ms", Ok(Duration::from_millis(500))),
            ("2m", Ok(Duration::from_secs(120))),
            ("1h", Err(())),
            ("s", Err(())),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_duration(text).map_err(|_| ()), *expected, "{text:?}");
        }
    }

    #[test]
    fn rates_and_sizes_for_people() {
        assert_eq!(mb_per_s(200_000_000, Duration::from_secs(2)), 100.0);
        assert_eq!(mb_per_s(1, Duration::ZERO), 0.0);
        assert_eq!(human_bytes(1 << 30), "1 GiB");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(1000), "1000 B");
    }
}
