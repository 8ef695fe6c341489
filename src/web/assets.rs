//! Static files embedded in the binary and served under `/static/`: the
//! dashboard's CSS and JS, vendored htmx (`static/vendor/`, with its license),
//! and the checkout reporter (`web::checkout`). One handler answers them all:
//! a content type, `nosniff`, an ETag that changes with the file (FNV-1a,
//! computed at compile time) and `If-None-Match` → 304.

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// One embedded file.
pub struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
    pub hash: u64,
    /// `max-age` in seconds; versioned vendor files can be cached long.
    pub max_age: u32,
    /// Loaded by shops' pages from any origin (the checkout reporter).
    pub cross_origin: bool,
}

/// FNV-1a, usable in a `const`.
pub const fn fnv(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < b.len() {
        h ^= b[i] as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    h
}

macro_rules! asset {
    ($path:literal, $file:literal, $ct:literal, $age:expr, $cors:expr) => {{
        const BODY: &[u8] = include_bytes!(concat!("../../static/", $file));
        Asset { path: $path, content_type: $ct, body: BODY, hash: fnv(BODY), max_age: $age, cross_origin: $cors }
    }};
}

pub static ASSETS: &[Asset] = &[
    asset!("orderwatch-checkout.js", "orderwatch-checkout.js", "text/javascript; charset=utf-8", 300, true),
    asset!("app.css", "app.css", "text/css; charset=utf-8", 300, false),
    asset!("app.js", "app.js", "text/javascript; charset=utf-8", 300, false),
    // The log viewer, error groups and settings pages.
    asset!("logviewer.css", "logviewer.css", "text/css; charset=utf-8", 300, false),
    asset!("logviewer.js", "logviewer.js", "text/javascript; charset=utf-8", 300, false),
    asset!(
        "vendor/htmx-2.0.11.min.js",
        "vendor/htmx-2.0.11.min.js",
        "text/javascript; charset=utf-8",
        86400 * 30,
        false
    ),
    asset!("vendor/htmx-LICENSE.txt", "vendor/htmx-LICENSE.txt", "text/plain; charset=utf-8", 86400, false),
];

pub fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// `GET /static/{*path}`.
pub async fn get(Path(path): Path<String>, headers: HeaderMap) -> Response {
    match find(&path) {
        Some(a) => serve(a, &headers),
        None => (StatusCode::NOT_FOUND, "no such file\n").into_response(),
    }
}

pub fn serve(a: &Asset, headers: &HeaderMap) -> Response {
    let etag = format!("\"{}-{:016x}\"", env!("CARGO_PKG_VERSION"), a.hash);
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut h = HeaderMap::new();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_str(&format!("public, max-age={}", a.max_age)).unwrap());
    h.insert(header::ETAG, HeaderValue::from_str(&etag).expect("an ASCII ETag"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if a.cross_origin {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    }
    if fresh {
        return (StatusCode::NOT_MODIFIED, h).into_response();
    }
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(a.content_type));
    (h, a.body).into_response()
}
