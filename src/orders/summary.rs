//! What a lost order says to people: the customer and cart, what the server
//! answered, and the cause's own details. Built from an attempt's evidence
//! (the pieces and the Sentry events they point at); pure.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::evidence::{Kind, Piece};
use super::extract::{self, Cart, Customer, Extracted};
use super::{Cause, OrdersSettings, phone_digits};

/// Stored with each lost order (`lost_orders.summary`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Summary {
    pub customer: Customer,
    pub address: Option<String>,
    pub cart: Option<Cart>,
    /// Neither a phone nor an email was found in what was captured.
    pub contact_missing: bool,
    /// The browser SDK cut the captured cart short (raise `normalizeDepth`).
    pub cart_truncated: bool,
    /// What the server answered, as the frontend saw it.
    pub response: Option<Value>,
    /// rejected: the fields the server refused, `path: message`.
    pub refused: Vec<String>,
    /// network: what the frontend saw instead of an answer.
    pub network_error: Option<String>,
    /// rate_limited: the access log's user, and whether the config names the client a manager.
    pub remote_user: Option<String>,
    pub manager: bool,
    /// rate_limited: order requests from this client in the hour before.
    pub attempts_last_hour: Option<i64>,
    /// server_error: the backend's error events of this request.
    pub backend_errors: Vec<BackendError>,
    /// network: whether any backend line saw the request.
    pub backend_saw_it: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackendError {
    pub event_id: String,
    pub title: String,
}

/// The summary of an attempt. `events` holds the Sentry event JSON of its
/// frontend and backend pieces (by reference), where stored.
pub fn summarize(
    cause: Cause,
    pieces: &[&Piece],
    events: &[(String, Value)],
    settings: &OrdersSettings,
    attempts_last_hour: Option<i64>,
) -> Summary {
    let event = |p: &Piece| events.iter().find(|(id, _)| *id == p.reference).map(|(_, v)| v);
    let mut found = Extracted::default();
    let mut response = None;
    // The frontend's capture holds the cart as the customer saw it; the backend's the request it got.
    for kind in [Kind::Frontend, Kind::Backend] {
        for p in pieces.iter().filter(|p| p.kind == kind) {
            let Some(ev) = event(p) else { continue };
            found.merge(extract::from_event(ev, &settings.fields));
            if response.is_none() {
                response = ev
                    .pointer("/extra/response/body")
                    .or_else(|| ev.pointer("/extra/response/data"))
                    .or_else(|| ev.pointer("/contexts/response/data"))
                    .cloned()
                    .map(|v| json_text(&v));
            }
        }
    }
    let mut refused = Vec::new();
    if let Some(r) = &response {
        refused_fields(r, "", &mut refused);
    }
    let remote_user = pieces.iter().find_map(|p| p.remote_user.clone());
    let client_ip = pieces.iter().find_map(|p| p.client_ip.as_deref());
    let backend_errors = pieces
        .iter()
        .filter(|p| p.kind == Kind::Backend)
        .map(|p| BackendError { event_id: p.reference.clone(), title: event(p).map(title).unwrap_or_default() })
        .collect();
    Summary {
        contact_missing: !found.has_contact(),
        cart_truncated: found.truncated,
        customer: found.customer,
        address: found.address,
        cart: found.cart,
        response,
        refused,
        network_error: pieces.iter().find_map(|p| p.network_error.clone()),
        manager: settings.is_manager(client_ip, remote_user.as_deref()),
        remote_user,
        attempts_last_hour: (cause == Cause::RateLimited).then_some(attempts_last_hour).flatten(),
        backend_errors,
        backend_saw_it: pieces.iter().any(|p| matches!(p.kind, Kind::Request | Kind::ClientGone | Kind::Backend)),
    }
}

/// Why a lost order is a developer's own test, if it is one.
pub fn test_reason(settings: &OrdersSettings, client_ip: Option<&str>, s: &Summary) -> Option<String> {
    if let Some(ip) = client_ip.filter(|ip| settings.is_developer_ip(ip)) {
        return Some(format!("from a developer's address ({ip})"));
    }
    if let Some(e) =
        s.customer.email.as_deref().filter(|e| settings.developer_emails.iter().any(|d| d.eq_ignore_ascii_case(e)))
    {
        return Some(format!("a developer's email ({e})"));
    }
    let phone = s.customer.phone.as_deref().map(phone_digits).filter(|d| !d.is_empty())?;
    settings.developer_phones.contains(&phone).then(|| "a developer's phone".to_owned())
}

/// "IntegrityError: null value in column …", or the message.
pub fn title(ev: &Value) -> String {
    if let Some(e) = ev.pointer("/exception/values").and_then(Value::as_array).and_then(|v| v.last()) {
        let ty = e.get("type").and_then(Value::as_str).unwrap_or("Error");
        return match e.get("value").and_then(Value::as_str) {
            Some(v) => format!("{ty}: {v}"),
            None => ty.to_owned(),
        };
    }
    ev.pointer("/logentry/formatted")
        .or_else(|| ev.pointer("/logentry/message"))
        .or_else(|| ev.get("message"))
        .and_then(Value::as_str)
        .unwrap_or("(no message)")
        .to_owned()
}

fn json_text(v: &Value) -> Value {
    match v {
        Value::String(s) => serde_json::from_str(s).unwrap_or_else(|_| v.clone()),
        _ => v.clone(),
    }
}

/// A validation error body (`{"delivery": {"floor": ["Ensure …"]}}`, Django
/// REST framework's shape and the like) as `delivery.floor: Ensure …` lines.
pub fn refused_fields(v: &Value, at: &str, out: &mut Vec<String>) {
    if out.len() >= 50 {
        return;
    }
    let join = |k: &str| if at.is_empty() { k.to_owned() } else { format!("{at}.{k}") };
    match v {
        Value::Object(o) => {
            for (k, v) in o {
                // Envelopes around the errors name no field.
                let key = if matches!(k.as_str(), "errors" | "error" | "detail" | "details" | "fields") && at.is_empty()
                {
                    String::new()
                } else {
                    join(k)
                };
                refused_fields(v, &key, out);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                match v {
                    Value::String(_) | Value::Number(_) => refused_fields(v, at, out),
                    _ => refused_fields(v, &if at.is_empty() { i.to_string() } else { format!("{at}[{i}]") }, out),
                }
            }
        }
        Value::String(s) => out.push(if at.is_empty() { s.clone() } else { format!("{at}: {s}") }),
        Value::Number(n) => out.push(if at.is_empty() { n.to_string() } else { format!("{at}: {n}") }),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn refused_fields_read_like_the_letter_needs() {
        let mut out = Vec::new();
        refused_fields(
            &json!({"delivery": {"floor": ["Ensure this value is greater than or equal to 0."]}}),
            "",
            &mut out,
        );
        assert_eq!(out, ["delivery.floor: Ensure this value is greater than or equal to 0."]);
        let mut out = Vec::new();
        refused_fields(&json!({"detail": "Request was throttled."}), "", &mut out);
        assert_eq!(out, ["Request was throttled."]);
        let mut out = Vec::new();
        refused_fields(&json!({"items": [{"qty": ["must be > 0"]}, {}]}), "", &mut out);
        assert_eq!(out, ["items[0].qty: must be > 0"]);
    }

    #[test]
    fn a_summary_stored_before_a_field_was_added_still_reads() {
        let old = r#"{"customer": {"name": "Ирина"}, "cart": {"items": [{"name": "Цемент"}]}}"#;
        let s: Summary = serde_json::from_str(old).unwrap();
        assert_eq!(s.customer.name.as_deref(), Some("Ирина"));
        assert_eq!(s.cart.unwrap().items[0].name.as_deref(), Some("Цемент"));
    }

    #[test]
    fn test_orders() {
        let settings = OrdersSettings {
            developer_ips: vec!["10.1.0.0/16".parse().unwrap()],
            developer_emails: vec!["dev@shop.example".into()],
            developer_phones: vec![phone_digits("8 900 000-00-01")],
            ..OrdersSettings::default()
        };
        let mut s = Summary::default();
        assert!(test_reason(&settings, Some("10.1.2.3"), &s).is_some());
        assert!(test_reason(&settings, Some("10.2.2.3"), &s).is_none());
        s.customer.email = Some("DEV@shop.example".into());
        assert!(test_reason(&settings, None, &s).is_some());
        s.customer.email = None;
        s.customer.phone = Some("+7 (900) 000 00 01".into());
        assert_eq!(test_reason(&settings, None, &s).as_deref(), Some("a developer's phone"));
    }
}
