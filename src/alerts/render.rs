//! What an alert says, per destination: the email in the hosted log service's
//! familiar form (subject, "N events matched your … search in the past hour",
//! one line per event with its link, the query, the time zone; text and HTML),
//! its webhook payload (form field `payload`, so existing consumers keep
//! working), the signed JSON variant (the same payload plus the alert), and
//! Slack and Telegram messages. Pure functions: no I/O.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Value, json};

use super::{Alert, Destination, Rule};
use crate::event::{LogEvent, facility_name, severity_name, zoned};
use crate::notify::{Message, NewNotification};

/// Telegram refuses longer messages.
const TELEGRAM_MAX_CHARS: usize = 4000;
const SLACK_MAX_CHARS: usize = 12_000;
/// A chat message shows at most this much of each line.
const CHAT_LINE_CHARS: usize = 500;

/// What happened.
#[derive(Debug, Clone)]
pub enum What<'a> {
    /// Lines matched (immediate and periodic alerts). `events` holds at most
    /// `MAX_LINES_PER_NOTIFICATION`; `total` counts them all.
    Matches { total: u64, events: &'a [LogEvent], past: String },
    /// An inactivity alert: fewer than `threshold` lines in `window`.
    Inactive { count: u64, threshold: u64, window: Duration, last_match: Option<i64> },
    /// An inactivity alert's search matches again.
    Recovered { quiet_since: i64, first: &'a LogEvent, window: Duration },
}

/// One firing of one alert.
#[derive(Debug, Clone)]
pub struct Firing<'a> {
    pub alert_id: i64,
    pub search_id: i64,
    pub search_name: &'a str,
    pub query: &'a str,
    pub alert: &'a Alert,
    pub what: What<'a>,
    /// µs, when it fired.
    pub at: i64,
    /// The window: ids after `from_id` up to `to_id`.
    pub from_id: u64,
    pub to_id: u64,
    pub public_url: &'a str,
}

/// The notification for a firing, with a key that makes storing it twice harmless.
/// What a firing says, in one word: `matches`, `inactive` or `recovered`.
pub fn tag(what: &What) -> &'static str {
    match what {
        What::Matches { .. } => "matches",
        What::Inactive { .. } => "inactive",
        What::Recovered { .. } => "recovered",
    }
}

pub fn notification(f: &Firing) -> NewNotification {
    let tag = tag(&f.what);
    NewNotification {
        source: format!("alert:{}", f.alert_id),
        dedup_key: Some(format!("alert:{}:{tag}:{}-{}", f.alert_id, f.from_id, f.to_id)),
        message: message(f),
    }
}

pub fn message(f: &Firing) -> Message {
    match &f.alert.destination {
        Destination::Email { to, cc } => {
            let (text, html) = email_body(f);
            Message::Email { to: to.clone(), cc: cc.clone(), subject: subject(f), text, html: Some(html) }
        }
        Destination::Webhook { url } => Message::Webhook { url: url.clone(), payload: payload(f).to_string() },
        Destination::WebhookJson { url, secret } => {
            let mut body = payload(f);
            body["alert"] = alert_json(f);
            Message::WebhookJson { url: url.clone(), body: body.to_string(), secret: secret.clone() }
        }
        Destination::Slack { url } => Message::Slack { url: url.clone(), text: chat_text(f, SLACK_MAX_CHARS, true) },
        Destination::Telegram { bot_token, chat_id } => Message::Telegram {
            bot_token: bot_token.clone(),
            chat_id: chat_id.clone(),
            text: chat_text(f, TELEGRAM_MAX_CHARS, false),
        },
    }
}

/// "in the past 12 seconds", "in the past 3 minutes", "in the past 2 hours".
pub fn past(micros: i64) -> String {
    let secs = (micros / 1_000_000).max(1);
    let (n, unit) = match secs {
        0..90 => (secs, "second"),
        90..3570 => ((secs + 30) / 60, "minute"),
        3570..129_600 => ((secs + 1800) / 3600, "hour"),
        _ => ((secs + 43_200) / 86_400, "day"),
    };
    if n == 1 { format!("in the past {unit}") } else { format!("in the past {n} {unit}s") }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 { format!("1 {one}") } else { format!("{n} {many}") }
}

/// "30 minutes", "1 hour", "90 seconds".
pub(crate) fn span(d: Duration) -> String {
    let s = d.as_secs();
    if s.is_multiple_of(3600) {
        plural(s / 3600, "hour", "hours")
    } else if s.is_multiple_of(60) {
        plural(s / 60, "minute", "minutes")
    } else {
        plural(s, "second", "seconds")
    }
}

fn local(f: &Firing, micros: i64, format: &str) -> String {
    zoned(micros, &f.alert.zone).strftime(format).to_string()
}

/// `"<search>" alert: N matches (at YYYY-MM-DD HH:MM)`.
pub fn subject(f: &Firing) -> String {
    let at = local(f, f.at, "%Y-%m-%d %H:%M");
    match &f.what {
        What::Matches { total, .. } => {
            format!("\"{}\" alert: {} (at {at})", f.search_name, plural(*total, "match", "matches"))
        }
        What::Inactive { count, window, .. } => format!(
            "\"{}\" alert: {} in {} (at {at})",
            f.search_name,
            plural(*count, "match", "matches"),
            span(*window)
        ),
        What::Recovered { .. } => {
            format!("\"{}\" recovered: matching again (at {at})", f.search_name)
        }
    }
}

/// The sentence the message opens with.
fn headline(f: &Firing) -> String {
    match &f.what {
        What::Matches { total, past, .. } => {
            format!("{} matched your {} search {past}.", plural(*total, "event", "events"), f.search_name)
        }
        What::Inactive { count, threshold, window, last_match } => {
            let mut s = if *threshold == 1 {
                format!("No events matched your {} search in the past {}.", f.search_name, span(*window))
            } else {
                format!(
                    "{} matched your {} search in the past {}, fewer than {threshold}.",
                    plural(*count, "event", "events"),
                    f.search_name,
                    span(*window)
                )
            };
            match last_match {
                Some(t) => write!(s, " The last one was at {}.", local(f, *t, "%Y-%m-%d %H:%M:%S")).unwrap(),
                None => s.push_str(" None has matched since the alert was set up."),
            }
            s
        }
        What::Recovered { quiet_since, first, .. } => format!(
            "Your {} search is matching again: the first event came at {}, after the alert fired at {}.",
            f.search_name,
            local(f, first.received_at, "%Y-%m-%d %H:%M:%S"),
            local(f, *quiet_since, "%Y-%m-%d %H:%M:%S"),
        ),
    }
}

fn events<'a>(f: &'a Firing) -> &'a [LogEvent] {
    match &f.what {
        What::Matches { events, .. } => events,
        What::Recovered { first, .. } => std::slice::from_ref(*first),
        What::Inactive { .. } => &[],
    }
}

fn not_shown(f: &Firing) -> u64 {
    match &f.what {
        What::Matches { total, events, .. } => total.saturating_sub(events.len() as u64),
        _ => 0,
    }
}

/// `Jun 23 17:17:48 <sender> <program>: <message>` in the alert's zone.
pub fn line(f: &Firing, ev: &LogEvent) -> String {
    let when = local(f, ev.received_at, "%b %d %H:%M:%S");
    if ev.program.is_empty() {
        format!("{when} {} {}", ev.source_name, ev.message)
    } else {
        format!("{when} {} {}: {}", ev.source_name, ev.program, ev.message)
    }
}

fn base<'a>(f: &Firing<'a>) -> &'a str {
    f.public_url.trim_end_matches('/')
}

/// The event among the lines around it.
pub fn event_url(f: &Firing, id: u64) -> String {
    format!("{}/events/{id}", base(f))
}

pub fn search_url(f: &Firing) -> String {
    let mut u = reqwest::Url::parse(&format!("{}/search", base(f))).expect("public_url is a URL");
    u.query_pairs_mut().append_pair("q", f.query);
    u.into()
}

pub fn edit_url(f: &Firing) -> String {
    format!("{}/searches/{}/edit", base(f), f.search_id)
}

fn zone_line(f: &Firing) -> String {
    let offset = zoned(f.at, &f.alert.zone).strftime("%:z").to_string();
    format!("Times are in {} (UTC{offset}).", f.alert.zone_name)
}

fn email_body(f: &Firing) -> (String, String) {
    let mut text = headline(f);
    text.push_str("\n\n");
    let mut html =
        format!("<!DOCTYPE html>\n<html><body style=\"font-family:sans-serif\">\n<p>{}</p>\n", escape(&headline(f)));
    let evs = events(f);
    if !evs.is_empty() {
        html.push_str("<pre style=\"font-family:monospace;white-space:pre-wrap\">\n");
        for ev in evs {
            let l = line(f, ev);
            let url = event_url(f, ev.id);
            writeln!(text, "{l}\n    {url}").unwrap();
            writeln!(html, "<a href=\"{}\">{}</a>", escape(&url), escape(&l)).unwrap();
        }
        html.push_str("</pre>\n");
        let more = not_shown(f);
        if more > 0 {
            let s = format!("… and {more} more; see them all in the search.");
            writeln!(text, "{s}").unwrap();
            writeln!(html, "<p>{}</p>", escape(&s)).unwrap();
        }
        text.push('\n');
    }
    let search = search_url(f);
    let edit = edit_url(f);
    let zone = zone_line(f);
    writeln!(text, "Query: {}\nSearch: {search}\nEdit this alert: {edit}\n{zone}", f.query).unwrap();
    writeln!(
        html,
        "<p>Query: <code>{}</code><br>\n<a href=\"{}\">Open the search</a> · <a href=\"{}\">Edit this alert</a><br>\n{}</p>\n</body></html>",
        escape(f.query),
        escape(&search),
        escape(&edit),
        escape(&zone)
    )
    .unwrap();
    (text, html)
}

/// The hosted service's webhook payload (see `papertrail-webhook-payload.json`).
pub fn payload(f: &Firing) -> Value {
    let evs: Vec<Value> = events(f).iter().map(|ev| event_json(f, ev)).collect();
    let frequency = match f.alert.rule {
        Rule::Periodic { period, .. } => period.frequency().to_owned(),
        Rule::Immediate { .. } => "immediate".to_owned(),
        Rule::Inactivity { window, .. } => span(window),
    };
    let min_id = events(f).first().map_or(f.from_id + 1, |e| e.id);
    let max_id = events(f).last().map_or(f.to_id, |e| e.id);
    let mut p = json!({
        "events": evs,
        "saved_search": {
            "id": f.search_id,
            "name": f.search_name,
            "query": f.query,
            "html_edit_url": edit_url(f),
            "html_search_url": search_url(f),
        },
        "max_id": max_id.to_string(),
        "min_id": min_id.to_string(),
        "reached_record_limit": not_shown(f) > 0,
        "frequency": frequency,
    });
    let inactivity = match &f.what {
        What::Inactive { count, threshold, window, .. } => Some(("inactive", Some(*count), Some(*threshold), window)),
        What::Recovered { window, .. } => Some(("recovered", None, None, window)),
        What::Matches { .. } => None,
    };
    if let Some((state, count, threshold, window)) = inactivity {
        p["inactivity"] = json!({
            "state": state,
            "window_seconds": window.as_secs(),
            "count": count,
            "threshold": threshold,
        });
    }
    p
}

fn event_json(f: &Firing, ev: &LogEvent) -> Value {
    json!({
        "id": ev.id.to_string(),
        "received_at": local(f, ev.received_at, "%Y-%m-%dT%H:%M:%S%:z"),
        "display_received_at": local(f, ev.received_at, "%b %d %H:%M:%S"),
        "source_ip": &*ev.source_ip,
        "source_name": &*ev.source_name,
        "source_id": source_id(&ev.source_name),
        "hostname": &*ev.source_name,
        "program": &*ev.program,
        "severity": severity_name(ev.severity),
        "facility": facility_name(ev.facility),
        "message": &*ev.message,
        "url": event_url(f, ev.id),
    })
}

/// A stable number per sender, where the hosted service has its system id.
fn source_id(name: &str) -> u32 {
    crc32fast::hash(name.as_bytes()) & 0x7fff_ffff
}

fn alert_json(f: &Firing) -> Value {
    let (kind, extra) = match f.alert.rule {
        Rule::Immediate { batch } => ("immediate", json!({ "batch_ms": batch.as_millis() as u64 })),
        Rule::Periodic { period, threshold } => {
            ("periodic", json!({ "frequency": period.frequency(), "threshold": threshold }))
        }
        Rule::Inactivity { window, threshold, .. } => {
            ("inactivity", json!({ "window_seconds": window.as_secs(), "threshold": threshold }))
        }
    };
    let count = match &f.what {
        What::Matches { total, .. } => *total,
        What::Inactive { count, .. } => *count,
        What::Recovered { .. } => 1,
    };
    json!({
        "id": f.alert_id,
        "kind": kind,
        "settings": extra,
        "time_zone": f.alert.zone_name,
        "fired_at": local(f, f.at, "%Y-%m-%dT%H:%M:%S%:z"),
        "subject": subject(f),
        "summary": headline(f),
        "count": count,
    })
}

fn chat_text(f: &Firing, max_chars: usize, slack: bool) -> String {
    let mut out = if slack {
        format!("*{}*\n{}\n", subject(f), headline(f))
    } else {
        format!("{}\n{}\n", subject(f), headline(f))
    };
    let evs = events(f);
    let tail =
        format!("{}Query: {}\n{}\n{}", if evs.is_empty() { "" } else { "\n" }, f.query, search_url(f), zone_line(f));
    if !evs.is_empty() {
        out.push_str(if slack { "```\n" } else { "\n" });
        let fence = if slack { "```\n" } else { "" };
        let mut shown = 0usize;
        for ev in evs {
            let mut l: String = line(f, ev).chars().take(CHAT_LINE_CHARS).collect();
            l = if slack { l.replace("```", "'''") } else { l };
            let room = max_chars.saturating_sub(out.chars().count() + tail.chars().count() + fence.len() + 40);
            if l.chars().count() + 1 > room {
                break;
            }
            out.push_str(&l);
            out.push('\n');
            shown += 1;
        }
        out.push_str(fence);
        let more = not_shown(f) + (evs.len() - shown) as u64;
        if more > 0 {
            writeln!(out, "… and {more} more").unwrap();
        }
    }
    out.push_str(&tail);
    if slack {
        // Slack reads `<…>` as links and mentions (`<!channel>`): a logged
        // line must not ping anyone. Its three control characters are escaped.
        out = out.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    }
    out
}

/// HTML text and attribute escaping.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::AlertDef;

    fn ev(id: u64, received_at: i64, msg: &str) -> LogEvent {
        LogEvent {
            id,
            received_at,
            generated_at: received_at,
            source_name: "website-backend".into(),
            source_ip: "10.0.3.14".into(),
            program: "website-backend".into(),
            severity: Some(6),
            facility: Some(3),
            message: msg.into(),
            raw: bytes::Bytes::new(),
            flags: 0,
        }
    }

    fn alert(json: &str) -> Alert {
        serde_json::from_str::<AlertDef>(json).unwrap().check(&jiff::tz::TimeZone::UTC).unwrap()
    }

    const LINE: &str = "[pid: 20593|app: 0|req: 154/4946604] 176.114.214.14 () {48 vars in 1018 bytes} [Sat Jun 23 17:17:48 2018] POST /api/v1/orders/ => generated 99 bytes in 2 msecs (HTTP/2.0 429) 8 headers in 295 bytes (1 switches on core 0)";
    const QUERY: &str =
        "POST /api/v1/orders/ - \"HTTP/2.0 201\" - \"HTTP/1.1 201\" - \"Broken pipe\" program:website-backend";
    // 2018-06-23T17:17:48+03:00
    const T: i64 = 1_529_763_468_000_000;

    fn firing<'a>(a: &'a Alert, what: What<'a>) -> Firing<'a> {
        Firing {
            alert_id: 7,
            search_id: 42,
            search_name: "non-ok website orders",
            query: QUERY,
            alert: a,
            what,
            at: T + 60_000_000,
            from_id: 100,
            to_id: 924738417398165504,
            public_url: "http://127.0.0.1:8080/",
        }
    }

    #[test]
    fn email_in_the_familiar_form() {
        let a = alert(
            r#"{"kind":"periodic","interval":"1h","time_zone":"Europe/Volgograd","destination":{"email":{"to":["head@shop.example"]}}}"#,
        );
        let evs = [ev(924738417398165504, T, LINE)];
        let f = firing(&a, What::Matches { total: 1, events: &evs, past: "in the past hour".into() });
        let Message::Email { subject, text, html, to, .. } = message(&f) else { panic!() };
        assert_eq!(to, ["head@shop.example"]);
        assert_eq!(subject, "\"non-ok website orders\" alert: 1 match (at 2018-06-23 17:18)");
        assert!(text.starts_with("1 event matched your non-ok website orders search in the past hour.\n\n"), "{text}");
        assert!(text.contains(&format!("Jun 23 17:17:48 website-backend website-backend: {LINE}\n    http://127.0.0.1:8080/events/924738417398165504\n")), "{text}");
        assert!(text.contains(&format!("Query: {QUERY}\n")));
        assert!(text.contains("Times are in Europe/Volgograd (UTC+03:00)."), "{text}");
        let html = html.unwrap();
        assert!(html.contains("&quot;HTTP/2.0 201&quot;"), "the query is escaped: {html}");
        assert!(
            html.contains(
                "<a href=\"http://127.0.0.1:8080/events/924738417398165504\">Jun 23 17:17:48 website-backend"
            )
        );
    }

    #[test]
    fn webhook_payload_has_the_hosted_shape() {
        let a = alert(
            r#"{"kind":"periodic","interval":"1h","time_zone":"Europe/Volgograd","destination":{"webhook":"http://127.0.0.1:9/"}}"#,
        );
        let evs = [ev(924738417398165504, T, LINE)];
        let f = firing(&a, What::Matches { total: 1, events: &evs, past: "in the past hour".into() });
        let Message::Webhook { payload, .. } = message(&f) else { panic!() };
        let got: Value = serde_json::from_str(&payload).unwrap();
        let want: Value = serde_json::from_str(include_str!("../../testdata/papertrail-webhook-payload.json")).unwrap();
        // Every key of the reference is there with the same value, except the links and the sender's number.
        fn check(want: &Value, got: &Value, path: &str) {
            match want {
                Value::Object(m) => {
                    for (k, v) in m {
                        let p = format!("{path}.{k}");
                        let g = got.get(k).unwrap_or_else(|| panic!("{p} missing"));
                        if ["html_edit_url", "html_search_url", "source_id", "id"].contains(&k.as_str())
                            && !v.is_string()
                        {
                            assert_eq!(g.is_number(), v.is_number(), "{p}");
                            continue;
                        }
                        if k.starts_with("html_") {
                            continue;
                        }
                        check(v, g, &p);
                    }
                }
                Value::Array(a) => {
                    for (i, v) in a.iter().enumerate() {
                        check(v, &got[i], &format!("{path}[{i}]"));
                    }
                }
                v => assert_eq!(v, got, "{path}"),
            }
        }
        check(&want, &got, "");
    }

    #[test]
    fn inactivity_and_recovery_say_so() {
        let a = alert(
            r#"{"kind":"inactivity","interval":"30m","active_hours":"09:00-21:00","time_zone":"Europe/Volgograd","destination":{"telegram":{"bot_token":"1:A","chat_id":5}}}"#,
        );
        let f = firing(
            &a,
            What::Inactive {
                count: 0,
                threshold: 1,
                window: Duration::from_secs(1800),
                last_match: Some(T - 3_600_000_000),
            },
        );
        assert_eq!(subject(&f), "\"non-ok website orders\" alert: 0 matches in 30 minutes (at 2018-06-23 17:18)");
        let Message::Telegram { text, chat_id, .. } = message(&f) else { panic!() };
        assert_eq!(chat_id, "5");
        assert!(text.contains("No events matched your non-ok website orders search in the past 30 minutes. The last one was at 2018-06-23 16:17:48."), "{text}");
        let first = ev(5, T, "ok");
        let f = firing(
            &a,
            What::Recovered { quiet_since: T - 60_000_000, first: &first, window: Duration::from_secs(1800) },
        );
        assert_eq!(subject(&f), "\"non-ok website orders\" recovered: matching again (at 2018-06-23 17:18)");
        assert_eq!(payload(&f)["inactivity"]["state"], "recovered");
    }

    #[test]
    fn chat_messages_fit_their_limits() {
        let a = alert(r#"{"kind":"immediate","destination":{"telegram":{"bot_token":"1:A","chat_id":5}}}"#);
        let evs: Vec<LogEvent> = (0..200).map(|i| ev(i, T, &"x".repeat(300))).collect();
        let f = firing(&a, What::Matches { total: 5000, events: &evs, past: past(2_000_000) });
        let Message::Telegram { text, .. } = message(&f) else { panic!() };
        assert!(text.chars().count() <= TELEGRAM_MAX_CHARS, "{}", text.chars().count());
        assert!(text.contains(" more\n"), "{text}");
        assert!(text.starts_with("\"non-ok website orders\" alert: 5000 matches"));
        let a = alert(r#"{"kind":"immediate","destination":{"slack":"https://hooks.example/x"}}"#);
        let f = firing(&a, What::Matches { total: 1, events: &evs[..1], past: past(2_000_000) });
        let Message::Slack { text, .. } = message(&f) else { panic!() };
        assert!(text.contains("```\n") && text.contains("in the past 2 seconds"), "{text}");
        let loud = [ev(1, T, "<!channel> a & b")];
        let f = firing(&a, What::Matches { total: 1, events: &loud, past: past(2_000_000) });
        let Message::Slack { text, .. } = message(&f) else { panic!() };
        assert!(text.contains("&lt;!channel&gt; a &amp; b") && !text.contains("<!channel>"), "{text}");
    }

    #[test]
    fn signed_json_carries_the_alert() {
        let a = alert(
            r#"{"kind":"immediate","destination":{"webhook_json":"http://127.0.0.1:9/","secret":"0123456789abcdef"}}"#,
        );
        let evs = [ev(1, T, LINE)];
        let f = firing(&a, What::Matches { total: 1, events: &evs, past: past(1) });
        let Message::WebhookJson { body, secret, .. } = message(&f) else { panic!() };
        assert_eq!(secret, "0123456789abcdef");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["alert"]["kind"], "immediate");
        assert_eq!(v["events"][0]["message"], LINE);
        assert_eq!(v["saved_search"]["id"], 42);
    }

    #[test]
    fn past_reads_naturally() {
        assert_eq!(past(0), "in the past second");
        assert_eq!(past(12_000_000), "in the past 12 seconds");
        assert_eq!(past(600_000_000), "in the past 10 minutes");
        assert_eq!(past(3_600_000_000), "in the past hour");
        assert_eq!(past(3 * 86_400_000_000), "in the past 3 days");
    }
}
