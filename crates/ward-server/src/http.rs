//! Small pure helpers for the HTTP surface: query strings, byte ranges,
//! pagination links. No I/O here, so all of it is tested in place.

use axum::http::{HeaderMap, Uri, header};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// The decoded `key=value` pairs of a URI's query, in order, repeats kept.
pub fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    uri.query()
        .map(|q| {
            form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// The first value of `key`.
pub fn query_value<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Every value of `key`.
pub fn query_values<'a>(
    pairs: &'a [(String, String)],
    key: &'a str,
) -> impl Iterator<Item = &'a str> {
    pairs
        .iter()
        .filter(move |(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// A header's value as text, if present and printable.
pub fn header_str<'a>(headers: &'a HeaderMap, name: &header::HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The outcome of a `Range` request header against an object of `size` bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ByteRange {
    /// Serve everything (no header, or one we do not honour such as multiple ranges).
    Full,
    /// Serve `start..end` (end exclusive) with 206.
    Partial {
        /// First byte.
        start: u64,
        /// One past the last byte.
        end: u64,
    },
    /// Answer 416.
    Unsatisfiable,
}

/// Interprets an RFC 9110 `Range: bytes=...` header (a single range; several
/// ranges are answered in full, which the RFC allows).
pub fn byte_range(header: Option<&str>, size: u64) -> ByteRange {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return ByteRange::Full;
    };
    if spec.contains(',') {
        return ByteRange::Full;
    }
    let Some((a, b)) = spec.split_once('-') else {
        return ByteRange::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    let parse = |s: &str| s.parse::<u64>().ok();
    match (a.is_empty(), b.is_empty()) {
        // bytes=-N: the last N bytes.
        (true, false) => match parse(b) {
            Some(0) => ByteRange::Unsatisfiable,
            Some(_) if size == 0 => ByteRange::Unsatisfiable,
            Some(n) => ByteRange::Partial {
                start: size.saturating_sub(n),
                end: size,
            },
            None => ByteRange::Full,
        },
        // bytes=A-
        (false, true) => match parse(a) {
            Some(start) if start < size => ByteRange::Partial { start, end: size },
            Some(_) => ByteRange::Unsatisfiable,
            None => ByteRange::Full,
        },
        // bytes=A-B
        (false, false) => match (parse(a), parse(b)) {
            (Some(start), Some(last)) if start <= last && start < size => ByteRange::Partial {
                start,
                end: last.saturating_add(1).min(size),
            },
            (Some(_), Some(_)) => ByteRange::Unsatisfiable,
            _ => ByteRange::Full,
        },
        (true, true) => ByteRange::Full,
    }
}

/// Parses an upload `Content-Range` of the OCI form `start-end` (inclusive,
/// no `bytes` prefix); returns `(start, end_inclusive)`.
pub fn upload_content_range(value: &str) -> Option<(u64, u64)> {
    let (a, b) = value.trim().split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    if !digits(a) || !digits(b) {
        return None;
    }
    let (start, end) = (a.parse().ok()?, b.parse().ok()?);
    (start <= end).then_some((start, end))
}

/// The upload `Range` header value for `size` bytes received: `0-<last byte>`,
/// and `0-0` when nothing has arrived (the convention clients expect).
pub fn upload_range(size: u64) -> String {
    format!("0-{}", size.saturating_sub(1))
}

const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A `Link: <path?last=...&n=...>; rel="next"` value for the next page.
pub fn next_link(path: &str, params: &[(&str, &str)]) -> String {
    let query: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, QUERY_VALUE)))
        .collect();
    format!("<{path}?{}>; rel=\"next\"", query.join("&"))
}

/// Parses the `n` page-size parameter: absent is `None`, garbage is an error.
pub fn page_size(pairs: &[(String, String)]) -> Result<Option<u32>, String> {
    match query_value(pairs, "n") {
        None => Ok(None),
        Some(v) => v
            .parse::<u32>()
            .map(Some)
            .map_err(|_| format!("invalid page size n={v:?}: use a non-negative integer")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_ranges_follow_rfc_9110() {
        let size = 2048;
        let cases = [
            (None, ByteRange::Full),
            (
                Some("bytes=500-1499"),
                ByteRange::Partial {
                    start: 500,
                    end: 1500,
                },
            ),
            (
                Some("bytes=500-"),
                ByteRange::Partial {
                    start: 500,
                    end: 2048,
                },
            ),
            (
                Some("bytes=-500"),
                ByteRange::Partial {
                    start: 1548,
                    end: 2048,
                },
            ),
            (
                Some("bytes=2000-5000"),
                ByteRange::Partial {
                    start: 2000,
                    end: 2048,
                },
            ),
            (
                Some("bytes=-5000"),
                ByteRange::Partial {
                    start: 0,
                    end: 2048,
                },
            ),
            (Some("bytes=500-0"), ByteRange::Unsatisfiable),
            (Some("bytes=5000-10000"), ByteRange::Unsatisfiable),
            (Some("bytes=2048-"), ByteRange::Unsatisfiable),
            (Some("bytes=-0"), ByteRange::Unsatisfiable),
            (Some("bytes=0-1,5-6"), ByteRange::Full),
            (Some("items=0-1"), ByteRange::Full),
            (Some("bytes=x-1"), ByteRange::Full),
        ];
        for (h, want) in cases {
            assert_eq!(byte_range(h, size), want, "{h:?}");
        }
        assert_eq!(byte_range(Some("bytes=0-"), 0), ByteRange::Unsatisfiable);
    }

    #[test]
    fn upload_ranges_use_the_oci_form() {
        assert_eq!(upload_content_range("0-1023"), Some((0, 1023)));
        assert_eq!(upload_content_range("1024-1024"), Some((1024, 1024)));
        for bad in [
            "bytes=0-1",
            "bytes 0-1/2",
            "5-4",
            "-1",
            "1-",
            "a-b",
            "0-1/2",
            "",
        ] {
            assert_eq!(upload_content_range(bad), None, "{bad}");
        }
        assert_eq!(upload_range(0), "0-0");
        assert_eq!(upload_range(1024), "0-1023");
    }

    #[test]
    fn links_encode_their_cursor() {
        assert_eq!(
            next_link("/v2/_catalog", &[("last", "a/b"), ("n", "1")]),
            "</v2/_catalog?last=a%2Fb&n=1>; rel=\"next\""
        );
    }

    #[test]
    fn page_sizes() {
        let q = |s: &str| query_pairs(&format!("/x?{s}").parse::<Uri>().unwrap());
        assert_eq!(page_size(&q("")), Ok(None));
        assert_eq!(page_size(&q("n=5")), Ok(Some(5)));
        assert!(page_size(&q("n=-1")).is_err());
        assert!(page_size(&q("n=x")).is_err());
        assert_eq!(
            query_values(&q("tag=a&tag=b&x=1"), "tag").collect::<Vec<_>>(),
            vec!["a", "b"]
        );
    }
}
