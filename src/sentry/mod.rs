//! Sentry-compatible ingest. Every Sentry path (`/api/{project}/envelope/`
//! and the legacy `/api/{project}/store/`) is normalised at the edge into one
//! [`envelope::Envelope`], as Sentry's Relay does; later stages only ever see
//! that type. This module does no I/O and knows nothing of HTTP.

pub mod envelope;
