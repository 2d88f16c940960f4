//! The cheapest HTTP/1.1 client that can hammer one URL: a keep-alive connection that
//! writes the same prebuilt request bytes again and again and parses only what it needs
//! of each response (status, length, and the challenge of a `401`).
//!
//! Against a server that does nothing, a general client (hyper's) spent about 1.6 times
//! the CPU per request of `wrk` here; this one spends about as little as wrk, which
//! matters because the client shares the machine's two cores with the server under test. Nothing is allocated per request: the
//! request is built once, the response is read into one reused buffer.

use http::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::error::BenchError;

/// Largest response accepted (head and body); a manifest is a few KiB, its limit 4 MiB.
pub const RESPONSE_BYTES_MAX: usize = 8 << 20;
/// Headers parsed per response; registries send about ten.
const HEADERS_MAX: usize = 64;
/// Free buffer space kept before each read.
const READ_SPARE_BYTES: usize = 16 * 1024;

/// The request bytes of `GET path` with the given headers.
pub fn build_get(
    path: &str,
    authority: &str,
    accept: &str,
    authorization: Option<&HeaderValue>,
) -> Vec<u8> {
    let mut request =
        format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nAccept: {accept}\r\n").into_bytes();
    if let Some(authorization) = authorization {
        request.extend_from_slice(b"Authorization: ");
        request.extend_from_slice(authorization.as_bytes());
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"\r\n");
    request
}

/// What a complete response head says.
#[derive(Debug, PartialEq, Eq)]
pub struct Head {
    /// The status code.
    pub status: u16,
    /// Bytes of the head, blank line included.
    pub head_bytes: usize,
    /// Bytes of the body that follows.
    pub body_bytes: usize,
    /// The server will close the connection after this response.
    pub close: bool,
    /// All headers, kept only for a `401` (to answer its challenge).
    pub challenge: Option<HeaderMap>,
}

/// Parses a response head from the start of `buf`: `Ok(None)` while it is incomplete.
/// Bodies must be sized by `Content-Length` (or be empty by status), which is how
/// registries send manifests; anything else is reported, not guessed at.
pub fn parse_head(buf: &[u8]) -> Result<Option<Head>, String> {
    let mut headers = [httparse::EMPTY_HEADER; HEADERS_MAX];
    let mut response = httparse::Response::new(&mut headers);
    let head_bytes = match response.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("malformed response head: {e}")),
    };
    let status = response.code.unwrap_or(0);
    let mut body_bytes = None;
    let mut close = false;
    for header in response.headers.iter() {
        if header.name.eq_ignore_ascii_case("content-length") {
            let text = std::str::from_utf8(header.value).unwrap_or("");
            body_bytes = Some(
                text.trim()
                    .parse::<usize>()
                    .map_err(|_| format!("bad Content-Length {text:?}"))?,
            );
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(
                "chunked responses are not supported by the builtin driver (try --driver wrk)"
                    .into(),
            );
        } else if header.name.eq_ignore_ascii_case("connection") {
            close |= header.value.eq_ignore_ascii_case(b"close");
        }
    }
    let body_bytes = match (body_bytes, status) {
        (Some(n), _) => n,
        (None, 100..=199 | 204 | 304) => 0,
        (None, _) => {
            return Err(format!(
                "HTTP {status} without Content-Length (the builtin driver needs one)"
            ));
        }
    };
    let challenge = (status == 401).then(|| to_header_map(response.headers));
    Ok(Some(Head {
        status,
        head_bytes,
        body_bytes,
        close,
        challenge,
    }))
}

fn to_header_map(headers: &[httparse::Header<'_>]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for header in headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(header.name.as_bytes()),
            HeaderValue::from_bytes(header.value),
        ) {
            map.append(name, value);
        }
    }
    map
}

/// One keep-alive connection.
pub struct Connection {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Connection {
    /// Connects with Nagle off (requests are single small writes).
    pub async fn open(authority: &str) -> Result<Self, BenchError> {
        let stream = TcpStream::connect(authority)
            .await
            .map_err(|e| BenchError::io(format!("connecting to {authority}"), e))?;
        stream
            .set_nodelay(true)
            .map_err(|e| BenchError::io("setting TCP_NODELAY", e))?;
        Ok(Self {
            stream,
            buf: Vec::with_capacity(2 * READ_SPARE_BYTES),
        })
    }

    /// Sends `request` and reads the whole response; the caller drops the connection on
    /// error or when the head says `close`.
    pub async fn exchange(&mut self, request: &[u8]) -> Result<Head, String> {
        self.stream
            .write_all(request)
            .await
            .map_err(|e| format!("writing the request: {e}"))?;
        self.buf.clear();
        loop {
            if let Some(head) = parse_head(&self.buf)? {
                let total = head.head_bytes + head.body_bytes;
                if total > RESPONSE_BYTES_MAX {
                    return Err(format!(
                        "response of {total} bytes is over the {RESPONSE_BYTES_MAX}-byte limit"
                    ));
                }
                if self.buf.len() >= total {
                    return Ok(head);
                }
            } else if self.buf.len() >= RESPONSE_BYTES_MAX {
                return Err(format!("response head is over {RESPONSE_BYTES_MAX} bytes"));
            }
            if self.buf.capacity() - self.buf.len() < READ_SPARE_BYTES {
                self.buf.reserve(READ_SPARE_BYTES);
            }
            let read = self
                .stream
                .read_buf(&mut self.buf)
                .await
                .map_err(|e| format!("reading the response: {e}"))?;
            if read == 0 {
                return Err("the server closed the connection mid-response".into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_built_once_with_every_header() {
        let mut token = HeaderValue::from_static("Bearer abc");
        token.set_sensitive(true);
        let cases = [
            (
                None,
                "GET /v2/a/manifests/t HTTP/1.1\r\nHost: h:1\r\nAccept: x/y\r\n\r\n",
            ),
            (
                Some(&token),
                "GET /v2/a/manifests/t HTTP/1.1\r\nHost: h:1\r\nAccept: x/y\r\nAuthorization: Bearer abc\r\n\r\n",
            ),
        ];
        for (authorization, expected) in cases {
            assert_eq!(
                build_get("/v2/a/manifests/t", "h:1", "x/y", authorization),
                expected.as_bytes()
            );
        }
    }

    fn head(status: u16, head_bytes: usize, body_bytes: usize, close: bool) -> Head {
        Head {
            status,
            head_bytes,
            body_bytes,
            close,
            challenge: None,
        }
    }

    #[test]
    fn response_heads() {
        let ok = "HTTP/1.1 200 OK\r\nContent-Type: a/b\r\nContent-Length: 397\r\n\r\n";
        let cases: Vec<(&str, Result<Option<Head>, ()>)> = vec![
            (ok, Ok(Some(head(200, ok.len(), 397, false)))),
            (&ok[..20], Ok(None)),
            ("", Ok(None)),
            (
                "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nConnection: close\r\n\r\n",
                Ok(Some(head(404, 64, 0, true))),
            ),
            (
                "HTTP/1.1 204 No Content\r\n\r\n",
                Ok(Some(head(204, 27, 0, false))),
            ),
            ("HTTP/1.1 200 OK\r\n\r\n", Err(())),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                Err(()),
            ),
            ("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", Err(())),
            ("garbage\r\n\r\n", Err(())),
        ];
        for (text, expected) in cases {
            assert_eq!(
                parse_head(text.as_bytes()).map_err(|_| ()),
                expected,
                "{text:?}"
            );
        }
    }

    #[test]
    fn a_401_keeps_its_challenge() {
        let text = "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"r\"\r\nContent-Length: 2\r\n\r\n{}";
        let head = parse_head(text.as_bytes()).unwrap().unwrap();
        assert_eq!((head.status, head.body_bytes), (401, 2));
        let challenge = head.challenge.unwrap();
        assert_eq!(
            challenge.get("www-authenticate").unwrap(),
            "Bearer realm=\"r\""
        );
    }
}
