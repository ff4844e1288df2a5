//! Reading request bodies within the limits: size (413), nesting depth and
//! JSON syntax (400 with the parse position), before anything is evaluated.
//! A body sent with `Content-Encoding: gzip` is decompressed, as OPA does,
//! and the size limit holds for the decompressed bytes.

use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::de::DeserializeOwned;

use super::error::{code, ApiError};
use crate::config::Limits;
use crate::location::Location;

/// The file name error locations use for the request body.
pub(crate) const BODY_FILE: &str = "request body";

/// A request's body, and whether it was sent gzip-compressed. (Only a
/// gzip body pays for decompression; a tower decompression layer would box
/// every response body, 3–6 % of a decision's throughput.)
#[derive(Debug)]
pub struct RequestBody {
    body: Body,
    gzip: bool,
}

impl<S: Send + Sync> axum::extract::FromRequest<S> for RequestBody {
    type Rejection = std::convert::Infallible;

    async fn from_request(request: axum::extract::Request, _: &S) -> Result<Self, Self::Rejection> {
        // As OPA: an encoding that names gzip is decompressed.
        let gzip = request
            .headers()
            .get(axum::http::header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains("gzip"));
        Ok(RequestBody {
            body: request.into_body(),
            gzip,
        })
    }
}

/// Collect the body (decompressed when it was sent gzip-compressed),
/// refusing it past `max_body_bytes`.
pub async fn read_limited(body: RequestBody, limits: &Limits) -> Result<Bytes, ApiError> {
    let bytes = match Limited::new(body.body, limits.max_body_bytes)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(err) if err.downcast_ref::<LengthLimitError>().is_some() => {
            return Err(too_large(limits))
        }
        Err(err) => {
            return Err(ApiError::invalid(format!(
                "could not read request body: {err}"
            )))
        }
    };
    if body.gzip {
        gunzip(&bytes, limits)
    } else {
        Ok(bytes)
    }
}

/// Decompress a gzip body, reading no more than `max_body_bytes` of it
/// (a compression bomb stops there).
fn gunzip(compressed: &[u8], limits: &Limits) -> Result<Bytes, ApiError> {
    use std::io::Read;
    let limit = limits.max_body_bytes as u64;
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(compressed)
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|err| ApiError::invalid(format!("could not decompress the gzip body: {err}")))?;
    if out.len() as u64 > limit {
        return Err(too_large(limits));
    }
    Ok(Bytes::from(out))
}

/// The 413 answer for an oversized body.
pub fn too_large(limits: &Limits) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        code::INVALID_PARAMETER,
        format!(
            "request body too large: the limit is {} bytes",
            limits.max_body_bytes
        ),
    )
}

/// Parse JSON after checking its nesting depth. `what` names the document in
/// messages ("input document", "batch request").
pub fn parse_json<T: DeserializeOwned>(
    bytes: &[u8],
    limits: &Limits,
    what: &str,
) -> Result<T, ApiError> {
    check_depth(bytes, limits.max_json_depth)?;
    serde_json::from_slice(bytes).map_err(|err| malformed(&err, what))
}

/// The 400 for a body that is not valid JSON of the expected shape, with
/// the parser's line and column.
pub fn malformed(err: &serde_json::Error, what: &str) -> ApiError {
    let message = format!("body contains malformed {what}: {err}");
    ApiError::invalid(message.clone()).with_detail(
        code::INVALID_PARAMETER,
        message,
        Some(Location::new(BODY_FILE, err.line(), err.column())),
    )
}

/// Refuse documents nested deeper than `max` arrays/objects. Strings are
/// skipped (with memchr), so brackets inside them do not count; the line
/// and column are worked out only when the limit is exceeded. Linear in the
/// body size, and a few percent of parsing it.
pub fn check_depth(bytes: &[u8], max: usize) -> Result<(), ApiError> {
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                // Skip to the closing quote, stepping over escapes.
                i += 1;
                loop {
                    match memchr::memchr2(b'"', b'\\', bytes.get(i..).unwrap_or_default()) {
                        Some(offset) if bytes[i + offset] == b'\\' => i += offset + 2,
                        Some(offset) => {
                            i += offset;
                            break;
                        }
                        None => {
                            // Unterminated: nothing after it is structure.
                            i = bytes.len();
                            break;
                        }
                    }
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    let (row, col) = position(bytes, i);
                    let message = format!("request body nesting depth exceeds the limit of {max}");
                    return Err(ApiError::invalid(message.clone()).with_detail(
                        code::INVALID_PARAMETER,
                        message,
                        Some(Location::new(BODY_FILE, row, col)),
                    ));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// The 1-based line and column of byte `at`.
fn position(bytes: &[u8], at: usize) -> (usize, usize) {
    let before = &bytes[..at];
    let row = 1 + memchr::memchr_iter(b'\n', before).count();
    let line_start = memchr::memrchr(b'\n', before).map_or(0, |p| p + 1);
    (row, at - line_start + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_only_structure_outside_strings() {
        assert!(check_depth(br#"{"a": [[1]]}"#, 3).is_ok());
        assert!(check_depth(br#"{"a": [[[1]]]}"#, 3).is_err());
        assert!(check_depth(br#"{"a": "[[[[[[\"[[["}"#, 1).is_ok());
        // An escaped backslash ends before the quote: the string closes.
        assert!(check_depth(br#"{"a": "x\\", "b": [[1]]}"#, 2).is_err());
        assert!(check_depth(br#"{"a": "x\\", "b": "[[["}"#, 1).is_ok());
        // An unterminated string or a lone backslash at the end is no panic.
        assert!(check_depth(br#"{"a": "[[[["#, 1).is_ok());
        assert!(check_depth(br#"{"a": "\"#, 1).is_ok());
    }

    #[test]
    fn depth_error_points_at_the_bracket() {
        let err = check_depth(b"{\n \"a\": [[1]]}", 2).unwrap_err();
        let loc = err.errors[0].location.clone().unwrap();
        assert_eq!((loc.row, loc.col), (2, 8));
        let err = check_depth(b"[\n[\n\n  [", 2).unwrap_err();
        let loc = err.errors[0].location.clone().unwrap();
        assert_eq!((loc.row, loc.col), (4, 3));
    }

    #[test]
    fn malformed_json_reports_line_and_column() {
        let limits = Limits::default();
        let err =
            parse_json::<serde_json::Value>(b"{\n  \"input\": tru }", &limits, "input document")
                .unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert_eq!(err.code, "invalid_parameter");
        let loc = err.errors[0].location.clone().unwrap();
        assert_eq!(loc.row, 2);
        assert!(loc.col > 0);
    }
}
