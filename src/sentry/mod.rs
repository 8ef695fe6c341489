//! The Sentry-compatible ingest (being built): what unmodified Sentry SDKs send,
//! normalised at the edge.
//!
//! - `auth`: the request's public key, from `X-Sentry-Auth`, `?sentry_key=` or
//!   the envelope's DSN, which must agree.

pub mod auth;
