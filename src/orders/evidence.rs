//! One log line or one Sentry event read as evidence about an order attempt.
//!
//! A [`Piece`] holds only what joining and the cause need (who, which
//! endpoint, what status, when, which request); the raw line or event stays
//! where it is stored and the piece points at it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Endpoint;
use crate::event::LogEvent;
use crate::parse::access::{AccessLog, Kind as AccessKind};

/// What a piece of evidence is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// An access-log line of a finished request (uWSGI, nginx, …).
    Request,
    /// A line saying the client went away (Broken pipe, SIGPIPE).
    ClientGone,
    /// The shop's frontend reporting a failed order submission (Sentry browser SDK or the checkout reporter).
    Frontend,
    /// An error event the backend raised while serving an order request.
    Backend,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Request => "request",
            Kind::ClientGone => "client_gone",
            Kind::Frontend => "frontend",
            Kind::Backend => "backend",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        [Kind::Request, Kind::ClientGone, Kind::Frontend, Kind::Backend].into_iter().find(|k| k.as_str() == s)
    }
}

/// Evidence about one order attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Piece {
    pub kind: Kind,
    /// Where it is stored: the log event id, or the Sentry event id.
    pub reference: String,
    /// Within one attempt each source speaks once: the program for log lines
    /// (nginx and uWSGI lines of one request are two sources), "frontend" or
    /// "backend" for events.
    pub source: String,
    /// The name of the order endpoint.
    pub endpoint: String,
    pub method: Option<String>,
    pub path: Option<String>,
    pub status: Option<u16>,
    /// A request line whose status is one of the endpoint's successes: the order was placed.
    pub success: bool,
    pub client_ip: Option<String>,
    /// `X-Request-ID` (or the like): two different ones are two requests.
    pub request_id: Option<String>,
    /// A trace id: the same one joins; different ones say nothing (a browser
    /// keeps its own trace when it does not propagate it).
    pub trace_id: Option<String>,
    pub remote_user: Option<String>,
    /// When it happened, µs since the epoch, on the server's clock as far as can be told.
    pub at: i64,
    /// A frontend failure without a response (timeout, connection error): its message.
    pub network_error: Option<String>,
}

/// The first endpoint a request (method, path) from `program`/`sender` is for.
fn endpoint_for<'a>(
    endpoints: &'a [Endpoint],
    method: Option<&str>,
    path: &str,
    program: Option<&str>,
    senders: &[&str],
) -> Option<&'a Endpoint> {
    endpoints.iter().find(|e| {
        (e.programs.is_empty() || program.is_some_and(|p| e.programs.iter().any(|x| x == p)))
            && (e.senders.is_empty() || senders.iter().any(|s| e.senders.iter().any(|x| x == s)))
            && e.matches(method, path)
    })
}

/// A log line as evidence: a request line of an order endpoint (any status:
/// successes count for the flow's health and end an attempt), or a
/// client-gone line naming one.
pub fn from_log(ev: &LogEvent, access: &AccessLog, endpoints: &[Endpoint]) -> Option<Piece> {
    let path = access.path.as_deref()?;
    let program = (!ev.program.is_empty()).then(|| &*ev.program);
    let ep = endpoint_for(endpoints, access.method.as_deref(), path, program, &[&ev.source_name, &ev.source_ip])?;
    let kind = match access.kind {
        AccessKind::Request => {
            access.status?;
            Kind::Request
        }
        AccessKind::ClientGone => Kind::ClientGone,
    };
    Some(Piece {
        kind,
        reference: ev.id.to_string(),
        source: format!("log:{}", program.unwrap_or("-")),
        endpoint: ep.name.clone(),
        method: access.method.clone(),
        path: Some(path.to_owned()),
        status: access.status.filter(|_| kind == Kind::Request),
        success: kind == Kind::Request && access.status.is_some_and(|s| ep.is_success(s)),
        client_ip: access.client_ip.clone(),
        request_id: access.request_id.clone().filter(|r| !r.is_empty() && r != "-"),
        trace_id: None,
        remote_user: access.remote_user.clone(),
        at: ev.generated_at,
        network_error: None,
    })
}

/// A Sentry event as evidence: a frontend report of a failed order
/// submission, or a backend error raised while serving an order request.
/// `clock_offset_us` moves the SDK's clock onto the server's (received −
/// sent_at, as Relay does); `received_at` stands in for a missing timestamp.
pub fn from_event(ev: &Value, endpoints: &[Endpoint], received_at: i64, clock_offset_us: i64) -> Option<Piece> {
    let reference = ev.get("event_id").and_then(Value::as_str)?.to_owned();
    let frontend = is_frontend(ev);
    let tags = Tags(ev.get("tags"));
    // Where the failed API request may be named, most specific first.
    let mut candidates: Vec<(Option<String>, String)> = Vec::new();
    if let Some(url) = tags.get("api.endpoint") {
        candidates.push((tags.get("api.method"), url));
    }
    for req in [ev.pointer("/extra/request"), ev.get("request")].into_iter().flatten() {
        if let Some(url) = req.get("url").and_then(Value::as_str) {
            candidates.push((req.get("method").and_then(Value::as_str).map(str::to_owned), url.to_owned()));
        }
    }
    let (method, path, ep) = candidates.into_iter().find_map(|(method, url)| {
        let path = url_path(&url)?;
        let ep = endpoint_for(endpoints, method.as_deref(), &path, None, &[])?;
        Some((method, path, ep))
    })?;
    let status = tags
        .get("api.status")
        .and_then(|s| s.trim().parse::<u16>().ok())
        .or_else(|| ev.pointer("/contexts/response/status_code").and_then(as_u16))
        .or_else(|| ev.pointer("/extra/response/status").and_then(as_u16))
        .filter(|s| (100..=999).contains(s));
    if status.is_some_and(|s| ep.is_success(s)) {
        // The order was placed; whatever went wrong afterwards did not lose it.
        return None;
    }
    let headers = ev.pointer("/request/headers");
    let client_ip = if frontend {
        ev.pointer("/user/ip_address").and_then(Value::as_str).map(str::to_owned)
    } else {
        // A backend event's connection is the backend's proxy: the customer is in the headers.
        header(headers, "x-real-ip")
            .or_else(|| {
                header(headers, "x-forwarded-for").and_then(|v| v.split(',').next().map(|s| s.trim().to_owned()))
            })
            .or_else(|| ev.pointer("/request/env/REMOTE_ADDR").and_then(Value::as_str).map(str::to_owned))
            .or_else(|| ev.pointer("/user/ip_address").and_then(Value::as_str).map(str::to_owned))
    }
    .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok());
    let request_id = tags
        .get("request_id")
        .or_else(|| tags.get("request.id"))
        .or_else(|| tags.get("x-request-id"))
        .or_else(|| if frontend { None } else { header(headers, "x-request-id") })
        .or_else(|| header(ev.pointer("/extra/response/headers"), "x-request-id"))
        .filter(|r| !r.is_empty());
    let trace_id = ev.pointer("/contexts/trace/trace_id").and_then(Value::as_str).map(str::to_owned);
    // An SDK's clock a day off (or a nonsense timestamp) is not believed.
    let at = event_time(ev)
        .map(|t| t.saturating_add(clock_offset_us))
        .filter(|t| t.abs_diff(received_at) <= DAY_US)
        .unwrap_or(received_at);
    let network_error = (frontend && status.is_none()).then(|| {
        ev.pointer("/exception/values/0/value")
            .or_else(|| ev.pointer("/extra/error"))
            .or_else(|| ev.get("message"))
            .and_then(Value::as_str)
            .unwrap_or("no response")
            .to_owned()
    });
    Some(Piece {
        kind: if frontend { Kind::Frontend } else { Kind::Backend },
        reference,
        source: if frontend { "frontend".into() } else { "backend".into() },
        endpoint: ep.name.clone(),
        method,
        path: Some(path),
        status,
        success: false,
        client_ip,
        request_id,
        trace_id,
        remote_user: None,
        at,
        network_error,
    })
}

const DAY_US: u64 = 86_400_000_000;

/// A browser's event: the browser SDKs (platform `javascript`) and the
/// checkout reporter. A Node or Next.js server's event (platform `node`) is
/// the backend's, although its SDK's name starts with `sentry.javascript`.
pub fn is_frontend(ev: &Value) -> bool {
    let sdk = ev.pointer("/sdk/name").and_then(Value::as_str).unwrap_or("");
    ev.get("platform").and_then(Value::as_str) == Some("javascript") || sdk == "orderwatch.checkout"
}

/// The event's own time, µs: `timestamp` in seconds or RFC 3339.
pub fn event_time(ev: &Value) -> Option<i64> {
    match ev.get("timestamp")? {
        Value::Number(n) => n.as_f64().filter(|f| f.is_finite() && f.abs() < 1e12).map(|f| (f * 1e6) as i64),
        Value::String(s) => s.parse::<jiff::Timestamp>().ok().map(|t| t.as_microsecond()),
        _ => None,
    }
}

/// Sentry tags: an object, or an array of `[key, value]` pairs.
struct Tags<'a>(Option<&'a Value>);

impl Tags<'_> {
    fn get(&self, key: &str) -> Option<String> {
        let v = match self.0? {
            Value::Object(m) => m.get(key)?,
            Value::Array(pairs) => pairs.iter().find_map(|p| {
                let p = p.as_array()?;
                (p.first()?.as_str()? == key).then(|| p.get(1)).flatten()
            })?,
            _ => return None,
        };
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
}

/// A header, by name in any case, from an object or an array of pairs.
fn header(headers: Option<&Value>, name: &str) -> Option<String> {
    let v = match headers? {
        Value::Object(m) => m.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)?,
        Value::Array(pairs) => pairs.iter().find_map(|p| {
            let p = p.as_array()?;
            p.first()?.as_str()?.eq_ignore_ascii_case(name).then(|| p.get(1)).flatten()
        })?,
        _ => return None,
    };
    v.as_str().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

fn as_u16(v: &Value) -> Option<u16> {
    match v {
        Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The path of an absolute or relative URL, without query or fragment.
fn url_path(url: &str) -> Option<String> {
    let url = url.trim();
    let rest = match url.find("://") {
        Some(i) => {
            let after = &url[i + 3..];
            &after[after.find('/')?..]
        }
        None => url,
    };
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    let path = &rest[..end];
    path.starts_with('/').then(|| path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orders::EndpointDef;

    fn endpoints() -> Vec<Endpoint> {
        vec![EndpointDef::default().check().unwrap()]
    }

    fn browser_event() -> Value {
        let body =
            std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/sentry-browser-order-400.envelope")).unwrap();
        let line = body.split(|&b| b == b'\n').nth(2).unwrap();
        let mut v: Value = serde_json::from_slice(line).unwrap();
        v["user"]["ip_address"] = "188.32.201.9".into();
        v
    }

    #[test]
    fn the_reference_browser_event_is_a_failed_order_submission() {
        let p = from_event(&browser_event(), &endpoints(), 1_529_763_483_000_000, 0).unwrap();
        assert_eq!(p.kind, Kind::Frontend);
        assert_eq!(p.endpoint, "POST /api/v1/orders/");
        assert_eq!(p.status, Some(400));
        assert_eq!(p.client_ip.as_deref(), Some("188.32.201.9"));
        assert_eq!(p.request_id.as_deref(), Some("7d1f0c2ab35e4e6f9a0b1c2d3e4f5a6b"));
        assert_eq!(p.at, 1_529_763_482_412_000);
        assert_eq!(p.network_error, None);
    }

    #[test]
    fn the_reference_backend_event_is_an_error_serving_an_order() {
        let v: Value = serde_json::from_str(
            &std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/testdata/sentry-python-order-500.event.json"
            ))
            .unwrap(),
        )
        .unwrap();
        let p = from_event(&v, &endpoints(), 1_529_763_490_000_000, 0).unwrap();
        assert_eq!(p.kind, Kind::Backend);
        assert_eq!(p.client_ip.as_deref(), Some("5.18.77.140"), "from X-Real-Ip, not the connection");
        assert_eq!(p.request_id.as_deref(), Some("c0ffee00c0ffee00c0ffee00c0ffee00"));
        assert_eq!(p.status, None);
        assert_eq!(p.at, 1_529_763_489_201_000);
    }

    #[test]
    fn events_that_are_not_about_orders_are_not_evidence() {
        let mut v = browser_event();
        v["tags"] = serde_json::json!({});
        v["extra"]["request"]["url"] = "/api/v1/catalog/".into();
        assert_eq!(from_event(&v, &endpoints(), 0, 0), None, "the page URL is /cart/checkout/, not an order endpoint");
        let mut ok = browser_event();
        ok["tags"]["api.status"] = "201".into();
        assert_eq!(from_event(&ok, &endpoints(), 0, 0), None, "a placed order is not lost");
        let mut items = browser_event();
        items["tags"]["api.endpoint"] = "/api/v1/orders/1187/items/".into();
        items["extra"]["request"]["url"] = "/api/v1/orders/1187/items/".into();
        assert_eq!(from_event(&items, &endpoints(), 0, 0), None);
    }

    #[test]
    fn a_network_failure_has_no_status_and_says_what_failed() {
        let v = serde_json::json!({
            "event_id": "a".repeat(32), "platform": "javascript", "timestamp": 10.5,
            "exception": {"values": [{"type": "TypeError", "value": "Failed to fetch"}]},
            "request": {"url": "https://shop.example/api/v1/orders/?x=1", "method": "POST"},
            "tags": [["api.status", "network"]],
            "user": {"ip_address": "10.0.0.1"}
        });
        let p = from_event(&v, &endpoints(), 99, 2_000_000).unwrap();
        assert_eq!(p.status, None);
        assert_eq!(p.network_error.as_deref(), Some("Failed to fetch"));
        assert_eq!(p.at, 12_500_000, "the SDK's clock moved by the offset");
        assert_eq!(p.path.as_deref(), Some("/api/v1/orders/"));
    }

    #[test]
    fn a_server_side_javascript_event_is_the_backends_and_a_clock_a_day_off_is_not_believed() {
        let v = serde_json::json!({
            "event_id": "b".repeat(32), "platform": "node", "sdk": {"name": "sentry.javascript.nextjs"},
            "timestamp": 1e300,
            "request": {"url": "https://shop.example/api/v1/orders/", "method": "POST"},
        });
        let p = from_event(&v, &endpoints(), 5_000_000_000_000_000, i64::MAX).unwrap();
        assert_eq!(p.kind, Kind::Backend);
        assert_eq!(p.network_error, None);
        assert_eq!(p.at, 5_000_000_000_000_000, "the received time stands in");
    }

    #[test]
    fn urls() {
        assert_eq!(url_path("https://a.b/api/v1/orders/?q#f").as_deref(), Some("/api/v1/orders/"));
        assert_eq!(url_path("/x?y").as_deref(), Some("/x"));
        assert_eq!(url_path("https://a.b").as_deref(), None);
        assert_eq!(url_path("orders").as_deref(), None);
    }
}
