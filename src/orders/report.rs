//! Incidents and the report letter (the seed runbook's letter to the head of
//! the business): the cause in plain words, what was done, and for each lost
//! order its time, customer, phone, email, address, cart and the server's
//! answer, so that managers can call and save the order. Pure: the same
//! function gives the preview and the letter sent.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use super::Cause;
use super::render::{cart_lines, money, summary};
use crate::alerts::render::escape;
use crate::db::{IncidentRow, LostOrderRow};
use crate::event::zoned;

/// A letter exactly as it is sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Letter {
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The statuses of an incident.
pub const INCIDENT_STATUSES: [&str; 3] = ["open", "reported", "closed"];

/// What lost orders of one incident have in common: the cause and the same
/// error group, refused field or status. Lost orders with one key are
/// suggested as one incident.
pub fn incident_key(row: &LostOrderRow) -> String {
    let s = summary(row);
    let detail = if let Some(e) = s.backend_errors.first() {
        format!("error {}", e.title)
    } else if let Some(f) = s.refused.first() {
        format!("field {}", f.split(':').next().unwrap_or(f))
    } else {
        row.status_code.map_or_else(|| "no answer".to_owned(), |c| format!("status {c}"))
    };
    format!("{}: {detail}", row.cause)
}

/// A title for a suggested incident.
pub fn suggested_title(row: &LostOrderRow) -> String {
    let s = summary(row);
    match Cause::parse(&row.cause) {
        Some(Cause::Rejected) => match s.refused.first() {
            Some(f) => format!("Orders refused by the server: {}", f.split(':').next().unwrap_or(f)),
            None => format!("Orders refused by the server ({})", row.status_code.unwrap_or(400)),
        },
        Some(Cause::RateLimited) if s.manager => "A manager's orders refused by the rate limit".to_owned(),
        Some(Cause::RateLimited) => "Orders refused by the rate limit".to_owned(),
        Some(Cause::ServerError) => match s.backend_errors.first() {
            Some(e) => format!("Orders failed on the server: {}", e.title),
            None => format!(
                "Orders failed on the server ({})",
                row.status_code.map_or("no answer".into(), |c| c.to_string())
            ),
        },
        Some(Cause::Network) => "Orders that never reached the server".to_owned(),
        Some(Cause::ClientGone) => "Customers left before the server answered".to_owned(),
        None => format!("Lost orders: {}", row.cause),
    }
}

/// Groups lost orders by [`incident_key`], the largest group first.
pub fn suggest(rows: &[LostOrderRow]) -> Vec<(String, Vec<&LostOrderRow>)> {
    let mut by: BTreeMap<String, Vec<&LostOrderRow>> = BTreeMap::new();
    for r in rows {
        by.entry(incident_key(r)).or_default().push(r);
    }
    let mut out: Vec<_> = by.into_iter().collect();
    out.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then_with(|| a.0.cmp(&b.0)));
    out
}

/// The letter about an incident.
pub fn letter(
    incident: &IncidentRow,
    orders: &[LostOrderRow],
    to: &[String],
    cc: &[String],
    zone: &jiff::tz::TimeZone,
) -> Letter {
    let n = orders.len();
    let subject = format!("Lost order{}: {} ({n})", if n == 1 { "" } else { "s" }, incident.title.trim());
    let when = |t: i64| zoned(t, zone).strftime("%Y-%m-%d %H:%M:%S %Z").to_string();
    let mut t = String::new();
    let mut h = String::from("<!DOCTYPE html>\n<html><body style=\"font-family:sans-serif\">\n");
    writeln!(t, "What happened:\n{}\n", incident.plain_cause.trim()).unwrap();
    writeln!(
        h,
        "<h3>What happened</h3>\n<p style=\"white-space:pre-wrap\">{}</p>",
        escape(incident.plain_cause.trim())
    )
    .unwrap();
    let actions = if incident.actions.trim().is_empty() { "(not written yet)" } else { incident.actions.trim() };
    writeln!(t, "What was done:\n{actions}\n").unwrap();
    writeln!(h, "<h3>What was done</h3>\n<p style=\"white-space:pre-wrap\">{}</p>", escape(actions)).unwrap();
    let lost: f64 = orders.iter().filter_map(|o| summary(o).cart.and_then(|c| c.total)).sum();
    writeln!(t, "Lost orders: {n}, carts worth {} in all. Please call the customers:\n", money(lost)).unwrap();
    writeln!(
        h,
        "<h3>Lost orders: {n}</h3>\n<p>Carts worth {} in all. Please call the customers:</p>\n<ol>",
        money(lost)
    )
    .unwrap();
    for o in orders {
        let s = summary(o);
        let answer = match o.status_code {
            Some(c) => format!("the server answered {c}"),
            None => "no answer from the server".to_owned(),
        };
        writeln!(t, "{}. {} — {}, {answer}", o.id, when(o.at), o.cause).unwrap();
        writeln!(h, "<li><p><b>{}</b> — {}, {}<br>", escape(&when(o.at)), escape(&o.cause), escape(&answer)).unwrap();
        let c = &s.customer;
        let missing = "(not found in what the site reported)";
        for (label, v) in
            [("Customer", &c.name), ("Phone", &c.phone), ("Email", &c.email), ("Delivery address", &s.address)]
        {
            let v = v.as_deref().unwrap_or(missing);
            writeln!(t, "   {label}: {v}").unwrap();
            writeln!(h, "{label}: {}<br>", escape(v)).unwrap();
        }
        match &s.cart {
            Some(cart) if !cart.items.is_empty() || cart.total.is_some() => {
                writeln!(t, "   Cart:").unwrap();
                h.push_str("Cart:</p>\n<ul>\n");
                for l in cart_lines(cart) {
                    writeln!(t, "     {l}").unwrap();
                    writeln!(h, "<li>{}</li>", escape(&l)).unwrap();
                }
                h.push_str("</ul>\n<p>");
                if let Some(total) = cart.total {
                    writeln!(t, "   Total: {}", money(total)).unwrap();
                    writeln!(h, "Total: <b>{}</b><br>", money(total)).unwrap();
                }
            }
            _ => {
                writeln!(t, "   Cart: {missing}").unwrap();
                writeln!(h, "Cart: {missing}<br>").unwrap();
            }
        }
        if s.cart_truncated {
            let note = "the cart arrived cut short by the browser SDK (normalizeDepth)";
            writeln!(t, "   Note: {note}").unwrap();
            writeln!(h, "Note: {note}<br>").unwrap();
        }
        let server = if !s.refused.is_empty() {
            Some(s.refused.join("; "))
        } else {
            s.response.as_ref().map(|r| match r {
                serde_json::Value::String(x) => x.clone(),
                other => other.to_string(),
            })
        }
        .or_else(|| s.backend_errors.first().map(|e| e.title.clone()))
        .or_else(|| s.network_error.clone());
        if let Some(v) = server {
            writeln!(t, "   The server's answer: {v}").unwrap();
            writeln!(h, "The server's answer: <code>{}</code>", escape(&v)).unwrap();
        }
        t.push('\n');
        h.push_str("</p></li>\n");
    }
    h.push_str("</ol>\n</body></html>\n");
    Letter { to: to.to_vec(), cc: cc.to_vec(), subject, text: t, html: h }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orders::extract::{Cart, CartItem, Customer};
    use crate::orders::summary::Summary;

    fn order(id: i64, cause: &str, status: Option<i64>, s: &Summary) -> LostOrderRow {
        LostOrderRow {
            id,
            at: 1_529_763_482_000_000,
            detected_at: 0,
            updated_at: 0,
            endpoint: "POST /api/v1/orders/".into(),
            status_code: status,
            cause: cause.into(),
            status: "new".into(),
            client_ip: None,
            summary: serde_json::to_string(s).unwrap(),
            test_reason: None,
            notified_at: None,
            incident_id: None,
        }
    }

    fn irina() -> Summary {
        Summary {
            customer: Customer {
                name: Some("Ирина Соколова".into()),
                phone: Some("+7 917 555-12-34".into()),
                email: Some("irina.sokolova@example.ru".into()),
            },
            address: Some("Волгоград, ул. Мира, house 17, apartment 4, floor -1".into()),
            cart: Some(Cart {
                items: vec![CartItem {
                    name: Some("Штукатурка".into()), quantity: Some(12.0), price: Some(489.0)
                }],
                total: Some(5868.0),
            }),
            refused: vec!["delivery.floor: Ensure this value is greater than or equal to 0.".into()],
            ..Summary::default()
        }
    }

    #[test]
    fn the_letter_holds_what_managers_need() {
        let inc = IncidentRow {
            id: 1,
            title: "We did not allow a basement floor".into(),
            cause: "rejected".into(),
            plain_cause: "We changed the order API and did not allow a floor below zero.".into(),
            actions: "Fixed the validation; deployed at 18:40.".into(),
            assignee: None,
            status: "open".into(),
            created_at: 0,
            updated_at: 0,
            lost_orders: 2,
        };
        let nobody = Summary { contact_missing: true, ..Summary::default() };
        let orders = [order(4, "rejected", Some(400), &irina()), order(9, "rejected", Some(400), &nobody)];
        let l = letter(
            &inc,
            &orders,
            &["head@shop.example".into()],
            &["dev@shop.example".into()],
            &jiff::tz::TimeZone::get("Europe/Volgograd").unwrap(),
        );
        assert_eq!(l.subject, "Lost orders: We did not allow a basement floor (2)");
        assert_eq!(
            (l.to.as_slice(), l.cc.as_slice()),
            (&["head@shop.example".to_owned()][..], &["dev@shop.example".to_owned()][..])
        );
        for want in [
            "did not allow a floor below zero",
            "Fixed the validation",
            "2018-06-23 17:18:02",
            "Ирина Соколова",
            "+7 917 555-12-34",
            "irina.sokolova@example.ru",
            "floor -1",
            "Штукатурка × 12 × 489.00 = 5 868.00",
            "Total: 5 868.00",
            "delivery.floor: Ensure this value is greater than or equal to 0.",
            "Phone: (not found in what the site reported)",
        ] {
            assert!(l.text.contains(want), "text lacks {want:?}:\n{}", l.text);
        }
        assert!(l.html.contains("Ирина Соколова") && !l.html.contains("&lt;"));
        assert!(l.html.contains("<b>5 868.00</b>"));
    }

    #[test]
    fn suggestions_group_by_cause_and_what_failed() {
        let mut other = irina();
        other.refused = vec!["items[0].qty: must be positive".into()];
        let rows = [
            order(1, "rejected", Some(400), &irina()),
            order(2, "rejected", Some(400), &irina()),
            order(3, "rejected", Some(400), &other),
            order(4, "rate_limited", Some(429), &Summary::default()),
        ];
        let s = suggest(&rows);
        assert_eq!(s[0].0, "rejected: field delivery.floor");
        assert_eq!(s[0].1.len(), 2);
        assert_eq!(s.len(), 3);
        assert_eq!(suggested_title(&rows[0]), "Orders refused by the server: delivery.floor");
    }
}
