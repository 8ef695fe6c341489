//! Lost orders: the reason orderwatch exists. Pieces with one job each:
//!
//! - `evidence`: reads one log line or one Sentry event into a [`Piece`] of
//!   evidence about an order attempt (or nothing). Pure.
//! - `join`: partitions pieces into attempts (by request or trace id, else by
//!   client IP, endpoint and status within a window), the same whatever order
//!   they arrived in, and says which attempts are lost orders and why. Pure.
//! - `extract`: finds the customer, address and cart in captured JSON, by
//!   configured paths or by heuristics. Pure.
//! - `detector`: the I/O. It follows the log store from a cursor, takes the
//!   pieces the Sentry processor stored, joins, keeps `lost_orders` up to
//!   date and raises a notification for each new one.
//!
//! Evidence is stored as it arrives (`order_evidence`, one row per log line or
//! event, never changed but for the lost order it belongs to), so a lost order
//! can always be rebuilt from it.

pub mod detector;
pub mod evidence;
pub mod extract;
pub mod health;
pub mod join;
pub mod render;
pub mod report;
pub mod summary;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use evidence::Piece;
pub use join::Cause;

/// One order endpoint as written in the config file (`[[orders.endpoints]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointDef {
    /// A short name shown with the lost orders; default `METHOD path`.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default = "default_method")]
    pub method: String,
    /// Exact, or a glob where `*` stands for any text (`/api/v1/orders/*/confirm/`).
    pub path: String,
    /// The statuses that mean the order was placed.
    #[serde(default = "default_success")]
    pub success: Vec<u16>,
    /// Programs (syslog tag) whose access logs count; empty: any.
    #[serde(default)]
    pub programs: Vec<String>,
    /// Senders (hostname or IP) whose access logs count; empty: any.
    #[serde(default)]
    pub senders: Vec<String>,
}

fn default_method() -> String {
    "POST".into()
}

fn default_success() -> Vec<u16> {
    vec![201]
}

impl Default for EndpointDef {
    fn default() -> Self {
        EndpointDef {
            name: None,
            method: default_method(),
            path: "/api/v1/orders/".into(),
            success: default_success(),
            programs: Vec::new(),
            senders: Vec::new(),
        }
    }
}

/// A checked order endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub name: String,
    pub method: String,
    pub path: String,
    pub success: Vec<u16>,
    pub programs: Vec<String>,
    pub senders: Vec<String>,
}

impl Endpoint {
    pub fn matches(&self, method: Option<&str>, path: &str) -> bool {
        method.is_none_or(|m| m.eq_ignore_ascii_case(&self.method)) && crate::query::path_matches(&self.path, path)
    }

    pub fn is_success(&self, status: u16) -> bool {
        self.success.contains(&status)
    }
}

impl EndpointDef {
    pub fn check(&self) -> Result<Endpoint, String> {
        let method = self.method.trim().to_ascii_uppercase();
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(format!("method {:?} is not an HTTP method such as \"POST\"", self.method));
        }
        let path = self.path.trim();
        if !path.starts_with('/') || path.contains('?') {
            return Err(format!("path {:?} must start with / and hold no query, e.g. \"/api/v1/orders/\"", self.path));
        }
        if self.success.is_empty() || self.success.iter().any(|s| !(100..=999).contains(s)) {
            return Err("success must list one or more HTTP statuses, e.g. [201]".into());
        }
        Ok(Endpoint {
            name: self.name.clone().filter(|n| !n.trim().is_empty()).unwrap_or_else(|| format!("{method} {path}")),
            method,
            path: path.to_owned(),
            success: self.success.clone(),
            programs: self.programs.clone(),
            senders: self.senders.clone(),
        })
    }
}

/// JSON paths (`order.contact.phone`, `items[0].name`, a leading `$.` is
/// allowed) into a Sentry event, tried in order; the first that holds a value
/// wins. Item paths are relative to each item of `items`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FieldPaths {
    pub name: Vec<String>,
    pub phone: Vec<String>,
    pub email: Vec<String>,
    pub address: Vec<String>,
    pub items: Vec<String>,
    pub total: Vec<String>,
    pub item_name: Vec<String>,
    pub item_quantity: Vec<String>,
    pub item_price: Vec<String>,
}

/// Everything the lost-order detector runs on, checked.
#[derive(Debug, Clone)]
pub struct OrdersSettings {
    pub endpoints: Vec<Endpoint>,
    pub developer_ips: Vec<ipnet::IpNet>,
    pub developer_emails: Vec<String>,
    /// Digits only.
    pub developer_phones: Vec<String>,
    pub manager_ips: Vec<ipnet::IpNet>,
    /// `remote_user` values of the shop's managers in access logs.
    pub manager_users: Vec<String>,
    pub join_window: Duration,
    /// How long a new lost order waits for the rest of its evidence before it is announced.
    pub alert_delay: Duration,
    pub fields: FieldPaths,
    pub alerts: Vec<crate::alerts::Destination>,
    /// The head of the business, who gets the report letters.
    pub report_to: Vec<String>,
    pub report_cc: Vec<String>,
    /// `[orders.health]`: the order-flow alerts.
    pub health: health::HealthSettings,
}

impl Default for OrdersSettings {
    fn default() -> Self {
        OrdersSettings {
            endpoints: vec![EndpointDef::default().check().expect("the default endpoint is valid")],
            developer_ips: Vec::new(),
            developer_emails: Vec::new(),
            developer_phones: Vec::new(),
            manager_ips: Vec::new(),
            manager_users: Vec::new(),
            join_window: Duration::from_secs(10),
            alert_delay: Duration::from_secs(3),
            fields: FieldPaths::default(),
            alerts: Vec::new(),
            report_to: Vec::new(),
            report_cc: Vec::new(),
            health: health::HealthSettings::default(),
        }
    }
}

impl OrdersSettings {
    pub fn endpoint(&self, name: &str) -> Option<&Endpoint> {
        self.endpoints.iter().find(|e| e.name == name)
    }

    pub fn is_developer_ip(&self, ip: &str) -> bool {
        in_nets(&self.developer_ips, ip)
    }

    pub fn is_manager(&self, ip: Option<&str>, remote_user: Option<&str>) -> bool {
        ip.is_some_and(|ip| in_nets(&self.manager_ips, ip))
            || remote_user.is_some_and(|u| self.manager_users.iter().any(|m| m == u))
    }
}

fn in_nets(nets: &[ipnet::IpNet], ip: &str) -> bool {
    ip.parse::<std::net::IpAddr>().is_ok_and(|ip| nets.iter().any(|n| n.contains(&ip)))
}

/// The digits of a phone number, for comparing numbers written differently.
pub fn phone_digits(phone: &str) -> String {
    let d: String = phone.chars().filter(char::is_ascii_digit).collect();
    // Russian numbers are written with 8 or +7 in front.
    if d.len() == 11 && d.starts_with('8') { format!("7{}", &d[1..]) } else { d }
}
