//! orderwatch: one self-hosted binary that makes sure an online shop never
//! loses a customer's order without knowing why. See ARCHITECTURE.md for the
//! flow and the code map.

pub mod alerts;
pub mod cli;
pub mod config;
pub mod db;
pub mod demo;
pub mod event;
pub mod ingest;
pub mod logstore;
pub mod notify;
pub mod orders;
pub mod parse;
pub mod query;
pub mod sentry;
pub mod serve;
pub mod telemetry;
pub mod web;
