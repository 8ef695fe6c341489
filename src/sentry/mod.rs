//! Sentry-compatible ingest (being built). Every Sentry path
//! (`/api/{project}/envelope/` and the legacy `/api/{project}/store/`) is
//! normalised at the edge into one [`envelope::Envelope`], as Sentry's Relay
//! does; later stages only ever see that type. No I/O here, no HTTP.
//!
//! - `envelope`: the tolerant envelope splitter (written by hand: no crate
//!   reads envelopes the way SDKs really send them) and the `/store/` body;
//! - `auth`: the request's public key, from `X-Sentry-Auth`, `?sentry_key=` or
//!   the envelope's DSN, which must agree.

pub mod auth;
pub mod envelope;
pub mod group;
pub mod process;
