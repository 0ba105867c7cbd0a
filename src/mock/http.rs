//! A minimal HTTP/1.1 request reader and response writer.
//!
//! The server is written by hand, without an HTTP library, so that a response
//! can be cut off, trickled or followed by a TCP reset on purpose.

use std::io;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Maximum size of one request line or header line.
const MAX_LINE_BYTES: u64 = 16 * 1024;
/// Maximum number of header lines in one request.
const MAX_HEADERS: usize = 100;
/// Maximum request body, which is far above any token request.
pub(crate) const MAX_BODY_BYTES: usize = 1024 * 1024;

pub(crate) const JSON_CONTENT_TYPE: &str = "application/json; charset=utf-8";

/// A parsed HTTP/1.x request.
#[derive(Clone, Debug)]
pub(crate) struct Request {
    pub(crate) method: String,
    /// The request target as sent, with the query string.
    pub(crate) target: String,
    /// The target's path, without the query string.
    pub(crate) path: String,
    /// Percent-decoded query parameters in the order sent.
    pub(crate) query: Vec<(String, String)>,
    /// Minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub(crate) minor_version: u8,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

/// An error that prevented reading a request.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RequestError {
    #[error("failed to read the request: {0}")]
    Io(#[from] io::Error),
    #[error("malformed request line {0:?}")]
    RequestLine(String),
    #[error("malformed header line {0:?}")]
    HeaderLine(String),
    #[error("request line or header line longer than {MAX_LINE_BYTES} bytes")]
    LineTooLong,
    #[error("more than {MAX_HEADERS} header lines")]
    TooManyHeaders,
    #[error("invalid Content-Length {0:?}")]
    ContentLength(String),
    #[error("request body of {0} bytes exceeds the maximum of {MAX_BODY_BYTES} bytes")]
    BodyTooLarge(usize),
    #[error("chunked request bodies are not supported, send Content-Length")]
    Chunked,
}

impl RequestError {
    /// Returns the status code of the response to a request that failed this way.
    pub(crate) fn status(&self) -> u16 {
        match self {
            RequestError::LineTooLong | RequestError::TooManyHeaders => 431,
            RequestError::BodyTooLarge(_) => 413,
            RequestError::Chunked => 411,
            _ => 400,
        }
    }
}

impl Request {
    /// Returns the first value of a header, matched case-insensitively.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Returns the first value of a query parameter.
    pub(crate) fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Returns whether the client requested to close the connection after this request.
    /// HTTP/1.0 closes unless the client sent `Connection: keep-alive`.
    pub(crate) fn wants_close(&self) -> bool {
        let connection = self.header("connection").unwrap_or("").to_ascii_lowercase();
        let has = |token: &str| connection.split(',').any(|part| part.trim() == token);
        if self.minor_version == 0 {
            !has("keep-alive")
        } else {
            has("close")
        }
    }

    /// Returns whether `Accept-Encoding` lists gzip with a non-zero quality.
    pub(crate) fn accepts_gzip(&self) -> bool {
        let Some(accepted) = self.header("accept-encoding") else {
            return false;
        };
        accepted.split(',').any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let rejected = parts.any(|param| {
                let param = param.replace(' ', "").to_ascii_lowercase();
                param.strip_prefix("q=").and_then(|q| q.parse::<f64>().ok()) == Some(0.0)
            });
            coding.eq_ignore_ascii_case("gzip") && !rejected
        })
    }
}

/// Reads one line of at most `MAX_LINE_BYTES`, without the line ending.
/// Returns `None` at end of stream before any byte.
async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
) -> Result<Option<String>, RequestError> {
    let mut line = Vec::new();
    let read = (&mut *reader)
        .take(MAX_LINE_BYTES)
        .read_until(b'\n', &mut line)
        .await?;
    if read == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        if read as u64 == MAX_LINE_BYTES {
            return Err(RequestError::LineTooLong);
        }
        return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    Ok(Some(String::from_utf8_lossy(&line).into_owned()))
}

/// Reads the next request from a connection, or `None` if the client closed it
/// between requests.
pub(crate) async fn read_request<R: AsyncBufRead + Unpin>(
    reader: &mut R,
) -> Result<Option<Request>, RequestError> {
    // RFC 9112, section 2.2: a server ignores empty lines before the request line.
    let request_line = loop {
        match read_line(reader).await? {
            None => return Ok(None),
            Some(line) if line.is_empty() => continue,
            Some(line) => break line,
        }
    };
    let (method, target, minor_version) = parse_request_line(&request_line)?;
    let headers = read_headers(reader).await?;
    let mut request = Request {
        path: target.split('?').next().unwrap_or("").to_string(),
        query: parse_query(target.split_once('?').map_or("", |(_, query)| query)),
        method,
        target,
        minor_version,
        headers,
        body: Vec::new(),
    };
    request.body = read_body(reader, &request).await?;
    Ok(Some(request))
}

fn parse_request_line(line: &str) -> Result<(String, String, u8), RequestError> {
    let invalid = || RequestError::RequestLine(line.chars().take(200).collect());
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid());
    };
    let minor_version = match version {
        "HTTP/1.1" => 1,
        "HTTP/1.0" => 0,
        _ => return Err(invalid()),
    };
    if method.is_empty() || !target.starts_with('/') {
        return Err(invalid());
    }
    Ok((method.to_string(), target.to_string(), minor_version))
}

async fn read_headers<R: AsyncBufRead + Unpin>(
    reader: &mut R,
) -> Result<Vec<(String, String)>, RequestError> {
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader)
            .await?
            .ok_or_else(|| RequestError::Io(io::ErrorKind::UnexpectedEof.into()))?;
        if line.is_empty() {
            return Ok(headers);
        }
        if headers.len() == MAX_HEADERS {
            return Err(RequestError::TooManyHeaders);
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(RequestError::HeaderLine(line.chars().take(200).collect()));
        };
        if name.is_empty() || name.contains([' ', '\t']) {
            return Err(RequestError::HeaderLine(line.chars().take(200).collect()));
        }
        headers.push((name.to_string(), value.trim().to_string()));
    }
}

async fn read_body<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    request: &Request,
) -> Result<Vec<u8>, RequestError> {
    if request.header("transfer-encoding").is_some() {
        return Err(RequestError::Chunked);
    }
    let Some(length) = request.header("content-length") else {
        return Ok(Vec::new());
    };
    let length: usize = length
        .parse()
        .map_err(|_| RequestError::ContentLength(length.to_string()))?;
    if length > MAX_BODY_BYTES {
        return Err(RequestError::BodyTooLarge(length));
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await?;
    Ok(body)
}

/// Decodes `application/x-www-form-urlencoded` text, which is also the format
/// of a query string: `+` is a space and `%XX` a byte.
pub(crate) fn parse_query(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name), percent_decode(value))
        })
        .collect()
}

/// Decodes `+` and `%XX` escapes. Invalid escapes are kept as they are and
/// invalid UTF-8 is replaced with U+FFFD.
pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escaped = bytes.get(index + 1..index + 3).and_then(|hex| {
            std::str::from_utf8(hex)
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        });
        match (bytes[index], escaped) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                index += 3;
            }
            (b'+', _) => {
                decoded.push(b' ');
                index += 1;
            }
            (byte, _) => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// The delivery mode of a response body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// The whole body at once.
    Whole,
    /// The first `n` bytes of the body, then a TCP reset.
    ResetAfter(usize),
    /// The body in small chunks spread evenly over this duration.
    Trickle(Duration),
}

/// An HTTP response. `Content-Length` and `Connection` are added when it is written.
#[derive(Clone, Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    pub(crate) delivery: Delivery,
}

impl Response {
    pub(crate) fn new(status: u16, content_type: &str, body: Vec<u8>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".to_string(), content_type.to_string())],
            body,
            delivery: Delivery::Whole,
        }
    }

    pub(crate) fn json(status: u16, value: &Value) -> Response {
        let body = serde_json::to_vec(value).expect("a serde_json::Value always serialises");
        Response::new(status, JSON_CONTENT_TYPE, body)
    }

    /// Builds a JSON response `{"message": message}`.
    pub(crate) fn message(status: u16, message: &str) -> Response {
        Response::json(status, &serde_json::json!({ "message": message }))
    }

    pub(crate) fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Replaces the value of a header, or adds the header.
    pub(crate) fn set_header(&mut self, name: &str, value: &str) {
        self.headers
            .retain(|(key, _)| !key.eq_ignore_ascii_case(name));
        self.headers.push((name.to_string(), value.to_string()));
    }
}

/// Returns the reason phrase of a status code.
pub(crate) fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

fn response_head(response: &Response, close: bool) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        response.status,
        reason_phrase(response.status)
    );
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n", response.body.len()));
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// Writes a response. For `Delivery::ResetAfter` it writes the head and the
/// first part of the body and sets a zero linger time, so the caller must drop
/// the stream next, which resets the connection.
pub(crate) async fn write_response(
    stream: &mut TcpStream,
    response: &Response,
    close: bool,
) -> io::Result<()> {
    stream.write_all(&response_head(response, close)).await?;
    match response.delivery {
        Delivery::Whole => stream.write_all(&response.body).await?,
        Delivery::ResetAfter(sent) => {
            stream
                .write_all(&response.body[..sent.min(response.body.len())])
                .await?;
            stream.flush().await?;
            // With a zero linger time, dropping the socket sends RST instead of FIN.
            return stream.set_zero_linger();
        }
        Delivery::Trickle(total) => trickle(stream, &response.body, total).await?,
    }
    stream.flush().await
}

/// Number of chunks a trickled body is split into.
const TRICKLE_CHUNKS: usize = 50;

async fn trickle(stream: &mut TcpStream, body: &[u8], total: Duration) -> io::Result<()> {
    let chunk_size = body.len().div_ceil(TRICKLE_CHUNKS).max(1);
    let chunks = body.len().div_ceil(chunk_size).max(1);
    let pause = total / chunks as u32;
    for chunk in body.chunks(chunk_size) {
        stream.write_all(chunk).await?;
        stream.flush().await?;
        tokio::time::sleep(pause).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(raw: &str) -> Result<Option<Request>, RequestError> {
        let mut reader = tokio::io::BufReader::new(raw.as_bytes());
        read_request(&mut reader).await
    }

    #[tokio::test]
    async fn request_with_query_and_body_parses() {
        let raw = "POST /a/b?take=5&skip=10&q=%C3%A6+x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc";
        let request = parse(raw).await.unwrap().unwrap();
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/a/b");
        assert_eq!(request.query_param("take"), Some("5"));
        assert_eq!(request.query_param("q"), Some("æ x"));
        assert_eq!(request.header("HOST"), Some("x"));
        assert_eq!(request.body, b"abc");
    }

    #[tokio::test]
    async fn closed_connection_reads_none() {
        assert!(parse("").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn garbage_request_line_is_rejected() {
        let error = parse("HELLO\r\n\r\n").await.unwrap_err();
        assert_eq!(error.status(), 400);
    }

    #[tokio::test]
    async fn chunked_body_is_rejected() {
        let raw = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
        assert_eq!(parse(raw).await.unwrap_err().status(), 411);
    }

    #[tokio::test]
    async fn http10_closes_by_default() {
        let request = parse("GET / HTTP/1.0\r\n\r\n").await.unwrap().unwrap();
        assert!(request.wants_close());
        let request = parse("GET / HTTP/1.1\r\nConnection: Close\r\n\r\n")
            .await
            .unwrap()
            .unwrap();
        assert!(request.wants_close());
    }

    #[tokio::test]
    async fn gzip_quality_zero_not_accepted() {
        let request = parse("GET / HTTP/1.1\r\nAccept-Encoding: br, gzip;q=0\r\n\r\n")
            .await
            .unwrap()
            .unwrap();
        assert!(!request.accepts_gzip());
        let request = parse("GET / HTTP/1.1\r\nAccept-Encoding: deflate, GZIP\r\n\r\n")
            .await
            .unwrap()
            .unwrap();
        assert!(request.accepts_gzip());
    }

    #[test]
    fn percent_decode_keeps_invalid_escapes() {
        assert_eq!(percent_decode("a%2Bb%zz%4"), "a+b%zz%4");
        assert_eq!(percent_decode("%C3%B8"), "ø");
    }
}
