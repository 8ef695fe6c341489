//! A lost order in the shapes people and tools read: the API's JSON, and the
//! alert raised when one is found (email, webhooks, chat), with the customer
//! and the cart, not only a log line.

use std::fmt::Write;

use serde_json::{Value, json};

use super::detector::DetectorOptions;
use super::extract::Cart;
use super::summary::Summary;
use super::{Cause, Piece};
use crate::alerts::{Destination, Rendered};
use crate::alerts::render::escape;
use crate::db::{EvidenceRow, LostOrderRow};
use crate::event::zoned;
use crate::notify::{Message, NewNotification};

/// An API time: RFC 3339 in the display zone.
pub fn time(micros: i64, zone: &jiff::tz::TimeZone) -> String {
    zoned(micros, zone).strftime("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string()
}

/// The API's lost order (DESIGN.md, "Interfaces"); `evidence` when it was read.
pub fn lost_order_json(
    row: &LostOrderRow,
    evidence: Option<&[(EvidenceRow, Option<Value>)]>,
    zone: &jiff::tz::TimeZone,
) -> Value {
    let s = summary(row);
    let cause = Cause::parse(&row.cause);
    let mut v = json!({
        "id": row.id,
        "at": time(row.at, zone),
        "detected_at": time(row.detected_at, zone),
        "updated_at": time(row.updated_at, zone),
        "endpoint": row.endpoint,
        "status_code": row.status_code,
        "cause": row.cause,
        "cause_plain": cause.map(Cause::plain),
        "status": row.status,
        "test_reason": row.test_reason,
        "client_ip": row.client_ip,
        "customer": s.customer,
        "address": s.address,
        "cart": s.cart.clone().unwrap_or_default(),
        "contact_missing": s.contact_missing,
        "cart_truncated": s.cart_truncated,
        "response": s.response,
        "refused": s.refused,
        "network_error": s.network_error,
        "remote_user": s.remote_user,
        "manager": s.manager,
        "attempts_last_hour": s.attempts_last_hour,
        "backend_errors": s.backend_errors,
        "backend_saw_it": s.backend_saw_it,
        "incident_id": row.incident_id,
    });
    if let Some(ev) = evidence {
        v["evidence"] = ev.iter().map(|(r, body)| evidence_json(r, body.as_ref(), zone)).collect();
    }
    v
}

fn evidence_json(r: &EvidenceRow, body: Option<&Value>, zone: &jiff::tz::TimeZone) -> Value {
    let p: Option<Piece> = r.piece().ok();
    let mut v = json!({
        "kind": p.as_ref().map(|p| p.kind.as_str()),
        "source": p.as_ref().map(|p| p.source.as_str()),
        "reference": p.as_ref().map(|p| p.reference.as_str()),
        "at": p.as_ref().map(|p| time(p.at, zone)),
        "received_at": time(r.received_at, zone),
        "status_code": p.as_ref().and_then(|p| p.status),
        "client_ip": p.as_ref().and_then(|p| p.client_ip.as_deref()),
        "request_id": p.as_ref().and_then(|p| p.request_id.as_deref()),
    });
    if let Some(raw) = &r.raw {
        v["raw"] = raw.as_str().into();
    }
    if let Some(pid) = r.project_id {
        v["project_id"] = pid.into();
    }
    if let Some(b) = body {
        v["event"] = b.clone();
    }
    v
}

pub fn summary(row: &LostOrderRow) -> Summary {
    serde_json::from_str(&row.summary).unwrap_or_default()
}

/// "8 448.00"
pub fn money(x: f64) -> String {
    let s = format!("{:.2}", x.abs());
    let (int, frac) = s.split_once('.').unwrap_or((&s, "00"));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(' ');
        }
        grouped.push(c);
    }
    format!("{}{grouped}.{frac}", if x < 0.0 { "-" } else { "" })
}

/// The cart's lines: "Штукатурка … × 12 × 489.00 = 5 868.00".
pub fn cart_lines(cart: &Cart) -> Vec<String> {
    cart.items
        .iter()
        .map(|i| {
            let name = i.name.as_deref().unwrap_or("(unnamed item)");
            let q = i.quantity.unwrap_or(1.0);
            match i.price {
                Some(p) => format!("{name} × {} × {} = {}", trim_num(q), money(p), money(p * q)),
                None => format!("{name} × {}", trim_num(q)),
            }
        })
        .collect()
}

fn trim_num(x: f64) -> String {
    if x.fract() == 0.0 { format!("{}", x as i64) } else { format!("{x}") }
}

/// The text every alert shares: the cause, the customer, the cart, what the server said.
pub fn describe(row: &LostOrderRow, opts: &DetectorOptions) -> (String, String) {
    let s = summary(row);
    let cause = Cause::parse(&row.cause);
    let at = zoned(row.at, &opts.zone).strftime("%Y-%m-%d %H:%M:%S %Z").to_string();
    let who = s.customer.name.clone().unwrap_or_else(|| "unknown customer".into());
    let total = s.cart.as_ref().and_then(|c| c.total).map(money);
    let subject =
        format!("Lost order: {} — {who}{}", row.cause, total.as_ref().map(|t| format!(", {t}")).unwrap_or_default());
    let mut t = String::new();
    writeln!(t, "A customer's order was lost at {at}.").unwrap();
    writeln!(t, "Cause: {}", cause.map(Cause::plain).unwrap_or(&row.cause)).unwrap();
    writeln!(
        t,
        "Request: {}{}",
        row.endpoint,
        row.status_code.map(|c| format!(", answered {c}")).unwrap_or_else(|| ", no answer".into())
    )
    .unwrap();
    for r in &s.refused {
        writeln!(t, "  refused: {r}").unwrap();
    }
    if let Some(n) = s.attempts_last_hour {
        writeln!(t, "  {n} order attempts from this address in the hour before").unwrap();
    }
    if s.manager {
        writeln!(t, "  this is a shop manager: the managers' exemption from the limit may be broken").unwrap();
    }
    for e in &s.backend_errors {
        writeln!(t, "  backend error: {} ({})", e.title, e.event_id).unwrap();
    }
    if let Some(n) = &s.network_error {
        writeln!(t, "  the browser saw: {n}").unwrap();
    }
    t.push('\n');
    if s.contact_missing {
        writeln!(t, "No phone or email was found in what the site reported.").unwrap();
    }
    let c = &s.customer;
    for (label, v) in [("Name", &c.name), ("Phone", &c.phone), ("Email", &c.email), ("Address", &s.address)] {
        if let Some(v) = v {
            writeln!(t, "{label}: {v}").unwrap();
        }
    }
    if let Some(cart) = &s.cart {
        if !cart.items.is_empty() {
            writeln!(t, "Cart:").unwrap();
            for l in cart_lines(cart) {
                writeln!(t, "  {l}").unwrap();
            }
        }
        if let Some(total) = cart.total {
            writeln!(t, "Total: {}", money(total)).unwrap();
        }
    }
    if s.cart_truncated {
        writeln!(t, "The cart arrived cut short by the browser SDK: raise its normalizeDepth (10 works).").unwrap();
    }
    writeln!(t, "\n{}/lost-orders/{}", opts.public_url, row.id).unwrap();
    (subject, t)
}

/// One notification per configured destination.
pub fn notifications(row: &LostOrderRow, opts: &DetectorOptions) -> Vec<NewNotification> {
    let (subject, text) = describe(row, opts);
    opts.settings
        .alerts
        .iter()
        .enumerate()
        .map(|(i, dest)| NewNotification {
            source: format!("lost_order:{}", row.id),
            dedup_key: Some(format!("lost_order:{}:{i}", row.id)),
            message: message(dest, &subject, &text, || json!({"lost_order": lost_order_json(row, None, &opts.zone)})),
        })
        .collect()
}

/// A plain-text notification for a destination: the subject (after
/// `[orderwatch] `), the text as the email (also as HTML) and the chats' body,
/// and the webhooks' JSON.
pub fn message(dest: &Destination, subject: &str, text: &str, json: impl FnOnce() -> serde_json::Value) -> Message {
    dest.message(Rendered {
        subject: format!("[orderwatch] {subject}"),
        html: format!(
            "<!DOCTYPE html>\n<html><body style=\"font-family:sans-serif\">\n<pre style=\"font-family:sans-serif;white-space:pre-wrap\">{}</pre>\n</body></html>\n",
            escape(text)
        ),
        json: json(),
        chat: text.to_owned(),
        text: text.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_reads_like_money() {
        assert_eq!(money(8448.0), "8 448.00");
        assert_eq!(money(23.5), "23.50");
        assert_eq!(money(1234567.891), "1 234 567.89");
        assert_eq!(money(-5.0), "-5.00");
    }
}
