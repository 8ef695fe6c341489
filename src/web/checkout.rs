//! `GET /static/orderwatch-checkout.js`: the checkout reporter
//! (`static/orderwatch-checkout.js`), embedded in the binary. Shops load it
//! from any origin without a token; it is cached briefly and revalidated by
//! its ETag, which changes with the file.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

pub const SCRIPT: &str = include_str!("../../static/orderwatch-checkout.js");

/// FNV-1a of the script, computed at compile time: the ETag changes whenever the file does.
const HASH: u64 = {
    let b = SCRIPT.as_bytes();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < b.len() {
        h ^= b[i] as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    h
};

fn etag() -> String {
    format!("\"{}-{HASH:016x}\"", env!("CARGO_PKG_VERSION"))
}

pub async fn script(headers: HeaderMap) -> Response {
    let etag = etag();
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let common = [
        (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300")),
        (header::ETAG, HeaderValue::from_str(&etag).expect("an ASCII ETag")),
        (header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*")),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
    ];
    if fresh {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (common, [(header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8"))], SCRIPT)
        .into_response()
}
