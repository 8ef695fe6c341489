//! `GET /static/orderwatch-checkout.js`: the checkout reporter
//! (`static/orderwatch-checkout.js`), embedded in the binary and served by
//! the one static-file handler (`web::assets`). Shops load it from any origin
//! without a token; it is cached briefly and revalidated by its ETag, which
//! changes with the file.

use axum::http::HeaderMap;
use axum::response::Response;

pub const SCRIPT: &str = include_str!("../../static/orderwatch-checkout.js");

pub async fn script(headers: HeaderMap) -> Response {
    super::assets::serve(
        super::assets::find("orderwatch-checkout.js").expect("the checkout reporter is embedded"),
        &headers,
    )
}
