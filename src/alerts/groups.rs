//! Error-group alerts: `[[sentry.alerts]]` in the config file says who hears
//! of a new error group (`first_seen`) and of a resolved group that is back
//! (`regression`), per project or for all, through the same destinations as a
//! saved search's alerts. What each message says is written here (pure
//! functions, like `render.rs`); the Sentry worker stores the notifications in
//! the transaction that records the event (`Db::record_envelope`).
//!
//! Every destination gets the same facts: the project, the group's title,
//! culprit, event count, first and last seen (ISO 8601 in the display zone),
//! the event that raised it, and a link to the group when `http.public_url` is
//! set. `webhook_json` posts them as signed JSON; `webhook` (the hosted log
//! service's form) posts the same JSON as its form field `payload`, since
//! a group has no log lines to put in that service's payload shape.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Destination, Rendered};
use super::render::escape;
use crate::db::{ErrorGroup, GroupAlertEvent};
use crate::event::zoned;
use crate::notify::{Message, NewNotification, truncate_chars};

/// What happened to a group that people hear of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupAlertKind {
    /// The first event of a new group.
    FirstSeen,
    /// An event received after its group was resolved (the group is unresolved again).
    Regression,
}

impl GroupAlertKind {
    pub const ALL: [GroupAlertKind; 2] = [GroupAlertKind::FirstSeen, GroupAlertKind::Regression];

    pub fn as_str(self) -> &'static str {
        match self {
            GroupAlertKind::FirstSeen => "first_seen",
            GroupAlertKind::Regression => "regression",
        }
    }
}

fn both() -> Vec<GroupAlertKind> {
    GroupAlertKind::ALL.to_vec()
}

/// One `[[sentry.alerts]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupAlertDef {
    /// A project's numeric id; none: every project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<i64>,
    /// What it tells of; default both.
    #[serde(default = "both")]
    pub on: Vec<GroupAlertKind>,
    pub destination: Destination,
}

impl GroupAlertDef {
    /// Errors name the field and say what is expected.
    pub fn check(&self) -> Result<(), String> {
        if let Some(p) = self.project
            && p < 1
        {
            return Err(format!(
                "project: {p} is not a project id; write a project's number from GET /api/v1/projects \
                 (e.g. 1), or leave it out for every project"
            ));
        }
        if self.on.is_empty() {
            return Err("on: name at least one of \"first_seen\", \"regression\" (leave it out for both)".into());
        }
        super::check_destination(&self.destination)
    }

    pub fn wants(&self, project_id: i64, kind: GroupAlertKind) -> bool {
        self.project.is_none_or(|p| p == project_id) && self.on.contains(&kind)
    }
}

/// The checked `[[sentry.alerts]]` and what their messages need.
#[derive(Debug, Clone)]
pub struct GroupAlerts {
    pub defs: Vec<GroupAlertDef>,
    /// `http.public_url` when it is set: messages link to `{public_url}/error-groups/{id}`.
    pub public_url: Option<String>,
    /// The zone times are shown in.
    pub zone: jiff::tz::TimeZone,
}

impl GroupAlerts {
    pub fn none() -> GroupAlerts {
        GroupAlerts { defs: Vec::new(), public_url: None, zone: jiff::tz::TimeZone::UTC }
    }

    /// The notifications of one group alert, one per entry that wants it.
    /// Their keys (`group:{id}:first_seen:{entry}`,
    /// `group:{id}:regression:{event id}:{entry}`) make storing one twice harmless.
    pub fn notifications(&self, ev: &GroupAlertEvent<'_>, project_name: &str) -> Vec<NewNotification> {
        let f = GroupFiring {
            kind: ev.kind,
            group: ev.group,
            project_name,
            event_id: ev.event_id,
            resolved_at: ev.resolved_at,
            zone: &self.zone,
            public_url: self.public_url.as_deref(),
        };
        self.defs
            .iter()
            .enumerate()
            .filter(|(_, d)| d.wants(ev.group.project_id, ev.kind))
            .map(|(entry, d)| NewNotification {
                source: format!("error_group:{}", ev.group.id),
                dedup_key: Some(dedup_key(&f, entry)),
                message: message(&f, &d.destination),
            })
            .collect()
    }
}

fn dedup_key(f: &GroupFiring, entry: usize) -> String {
    match f.kind {
        GroupAlertKind::FirstSeen => format!("group:{}:first_seen:{entry}", f.group.id),
        GroupAlertKind::Regression => format!("group:{}:regression:{}:{entry}", f.group.id, f.event_id),
    }
}

/// One group alert, with what its messages show.
#[derive(Debug, Clone)]
pub struct GroupFiring<'a> {
    pub kind: GroupAlertKind,
    pub group: &'a ErrorGroup,
    pub project_name: &'a str,
    pub event_id: &'a str,
    /// A regression: when the group had been resolved.
    pub resolved_at: Option<i64>,
    pub zone: &'a jiff::tz::TimeZone,
    pub public_url: Option<&'a str>,
}

/// Chat messages show at most this much of a title or culprit.
const CHAT_FIELD_CHARS: usize = 500;

pub fn message(f: &GroupFiring, d: &Destination) -> Message {
    let (text, html) = email_body(f);
    d.message(Rendered { subject: subject(f), text, html, json: payload(f), chat: chat_text(f) })
}

/// A title on one line (a subject must not break), at most `max` characters.
fn one_line(s: &str, max: usize) -> String {
    let flat: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    truncate_chars(flat.trim(), max)
}

/// `[orderwatch] New error: <title>` or `[orderwatch] Regression: <title>`.
pub fn subject(f: &GroupFiring) -> String {
    let what = match f.kind {
        GroupAlertKind::FirstSeen => "New error",
        GroupAlertKind::Regression => "Regression",
    };
    format!("[orderwatch] {what}: {}", one_line(&f.group.title, 150))
}

fn time(f: &GroupFiring, micros: i64) -> String {
    zoned(micros, f.zone).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

/// `https://orderwatch.shop.example/error-groups/7`, when `http.public_url` is set.
pub fn group_url(f: &GroupFiring) -> Option<String> {
    f.public_url.map(|u| format!("{}/error-groups/{}", u.trim_end_matches('/'), f.group.id))
}

fn project(f: &GroupFiring) -> String {
    format!("{} (project {})", f.project_name, f.group.project_id)
}

/// The sentence the message opens with.
pub fn headline(f: &GroupFiring) -> String {
    match (f.kind, f.resolved_at) {
        (GroupAlertKind::FirstSeen, _) => format!("A new error in {}.", project(f)),
        (GroupAlertKind::Regression, Some(r)) => {
            format!("An error in {} that was resolved at {} is back.", project(f), time(f, r))
        }
        (GroupAlertKind::Regression, None) => format!("A resolved error in {} is back.", project(f)),
    }
}

/// (label, value) in the order every message shows them.
fn facts(f: &GroupFiring) -> Vec<(&'static str, String)> {
    let g = f.group;
    let mut out = vec![
        ("Title", g.title.clone()),
        ("Culprit", g.culprit.clone().unwrap_or_else(|| "(none)".into())),
        ("Events", g.count.to_string()),
        ("First seen", time(f, g.first_seen)),
        ("Last seen", time(f, g.last_seen)),
        ("Event id", f.event_id.to_owned()),
    ];
    if let Some(u) = group_url(f) {
        out.push(("Link", u));
    }
    out
}

fn email_body(f: &GroupFiring) -> (String, String) {
    let mut text = format!("{}\n\n", headline(f));
    let mut html = format!(
        "<!DOCTYPE html>\n<html><body style=\"font-family:sans-serif\">\n<p>{}</p>\n<table>\n",
        escape(&headline(f))
    );
    for (label, value) in facts(f) {
        writeln!(text, "{:<11} {value}", format!("{label}:")).unwrap();
        let value = if label == "Link" {
            format!("<a href=\"{0}\">{0}</a>", escape(&value))
        } else if label == "Title" || label == "Culprit" {
            format!("<code>{}</code>", escape(&value))
        } else {
            escape(&value)
        };
        writeln!(html, "<tr><td>{label}</td><td>{value}</td></tr>").unwrap();
    }
    html.push_str("</table>\n</body></html>\n");
    (text, html)
}

/// The JSON both webhook destinations carry.
pub fn payload(f: &GroupFiring) -> Value {
    let g = f.group;
    json!({
        "kind": f.kind.as_str(),
        "subject": subject(f),
        "summary": headline(f),
        "project": { "id": g.project_id, "name": f.project_name },
        "group": {
            "id": g.id,
            "title": g.title,
            "culprit": g.culprit,
            "count": g.count,
            "status": g.status.as_str(),
            "first_seen": time(f, g.first_seen),
            "last_seen": time(f, g.last_seen),
            "url": group_url(f),
        },
        "event_id": f.event_id,
        "resolved_at": f.resolved_at.map(|r| time(f, r)),
    })
}

/// The chats' text after the subject.
fn chat_text(f: &GroupFiring) -> String {
    let mut out = format!("{}\n", headline(f));
    for (label, value) in facts(f) {
        let value = if label == "Title" || label == "Culprit" { one_line(&value, CHAT_FIELD_CHARS) } else { value };
        writeln!(out, "{label}: {value}").unwrap();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::GroupStatus;

    // 2018-06-23T17:17:48+03:00
    const T: i64 = 1_529_763_468_000_000;

    fn group() -> ErrorGroup {
        ErrorGroup {
            id: 7,
            project_id: 1,
            title: "ValueError: order <failed>: delivery.floor must be >= 0".into(),
            culprit: Some("shop.orders in create".into()),
            count: 3,
            first_seen: T,
            last_seen: T + 60_000_000,
            status: GroupStatus::Unresolved,
            resolved_at: None,
        }
    }

    fn firing<'a>(g: &'a ErrorGroup, kind: GroupAlertKind, zone: &'a jiff::tz::TimeZone) -> GroupFiring<'a> {
        GroupFiring {
            kind,
            group: g,
            project_name: "default",
            event_id: "9b2d5c1e7f0a4c3d8e6b1a2f3c4d5e6f",
            resolved_at: (kind == GroupAlertKind::Regression).then_some(T + 30_000_000),
            zone,
            public_url: Some("https://ow.shop.example/"),
        }
    }

    fn dest(json: &str) -> Destination {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn email_says_what_and_where() {
        let zone = jiff::tz::TimeZone::get("Europe/Volgograd").unwrap();
        let g = group();
        let f = firing(&g, GroupAlertKind::FirstSeen, &zone);
        let Message::Email { subject: s, text, html, to, .. } =
            message(&f, &dest(r#"{"email":{"to":["dev@shop.example"]}}"#))
        else {
            panic!()
        };
        assert_eq!(to, ["dev@shop.example"]);
        assert_eq!(s, "[orderwatch] New error: ValueError: order <failed>: delivery.floor must be >= 0");
        assert!(text.starts_with("A new error in default (project 1).\n\n"), "{text}");
        for want in [
            "Title:      ValueError: order <failed>",
            "Culprit:    shop.orders in create\n",
            "Events:     3\n",
            "First seen: 2018-06-23T17:17:48+03:00\n",
            "Last seen:  2018-06-23T17:18:48+03:00\n",
            "Event id:   9b2d5c1e7f0a4c3d8e6b1a2f3c4d5e6f\n",
            "Link:       https://ow.shop.example/error-groups/7\n",
        ] {
            assert!(text.contains(want), "{want:?} in {text}");
        }
        let html = html.unwrap();
        assert!(html.contains("order &lt;failed&gt;") && !html.contains("<failed>"), "{html}");
        assert!(html.contains("<a href=\"https://ow.shop.example/error-groups/7\">"), "{html}");

        let f = firing(&g, GroupAlertKind::Regression, &zone);
        assert_eq!(subject(&f), "[orderwatch] Regression: ValueError: order <failed>: delivery.floor must be >= 0");
        assert!(headline(&f).contains("resolved at 2018-06-23T17:18:18+03:00 is back"), "{}", headline(&f));
        // No public_url: no link.
        let f = GroupFiring { public_url: None, ..f };
        let Message::Email { text, .. } = message(&f, &dest(r#"{"email":{"to":["dev@shop.example"]}}"#)) else {
            panic!()
        };
        assert!(!text.contains("Link:") && !text.contains("error-groups"), "{text}");
    }

    #[test]
    fn a_title_never_breaks_the_subject() {
        let zone = jiff::tz::TimeZone::UTC;
        let g = ErrorGroup { title: format!("line one\r\nBcc: x@y.example {}", "z".repeat(300)), ..group() };
        let s = subject(&firing(&g, GroupAlertKind::FirstSeen, &zone));
        assert!(!s.contains(['\r', '\n']) && s.chars().count() < 200 && s.ends_with('…'), "{s}");
    }

    #[test]
    fn both_webhooks_carry_the_same_json() {
        let zone = jiff::tz::TimeZone::UTC;
        let g = group();
        let f = firing(&g, GroupAlertKind::Regression, &zone);
        let Message::WebhookJson { body, secret, .. } =
            message(&f, &dest(r#"{"webhook_json":"https://h.example/x","secret":"0123456789abcdef"}"#))
        else {
            panic!()
        };
        assert_eq!(secret, "0123456789abcdef");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["kind"], "regression");
        assert_eq!(v["project"], json!({"id": 1, "name": "default"}));
        assert_eq!(v["group"]["id"], 7);
        assert_eq!(v["group"]["count"], 3);
        assert_eq!(v["group"]["status"], "unresolved");
        assert_eq!(v["group"]["culprit"], "shop.orders in create");
        assert_eq!(v["group"]["first_seen"], "2018-06-23T14:17:48+00:00");
        assert_eq!(v["group"]["url"], "https://ow.shop.example/error-groups/7");
        assert_eq!(v["event_id"], "9b2d5c1e7f0a4c3d8e6b1a2f3c4d5e6f");
        assert_eq!(v["resolved_at"], "2018-06-23T14:18:18+00:00");
        let Message::Webhook { payload: form, .. } = message(&f, &dest(r#"{"webhook":"https://h.example/p"}"#)) else {
            panic!()
        };
        assert_eq!(serde_json::from_str::<Value>(&form).unwrap(), v);
        let f = GroupFiring { kind: GroupAlertKind::FirstSeen, resolved_at: None, public_url: None, ..f };
        let v = payload(&f);
        assert_eq!(
            (v["kind"].as_str(), v["resolved_at"].is_null(), v["group"]["url"].is_null()),
            (Some("first_seen"), true, true)
        );
    }

    #[test]
    fn chat_messages_are_escaped_for_slack_and_plain_for_telegram() {
        let zone = jiff::tz::TimeZone::UTC;
        let g = ErrorGroup { title: "<!channel> order & payment failed".into(), ..group() };
        let f = firing(&g, GroupAlertKind::FirstSeen, &zone);
        let Message::Slack { text, .. } = message(&f, &dest(r#"{"slack":"https://hooks.example/x"}"#)) else {
            panic!()
        };
        assert!(text.starts_with("*[orderwatch] New error: &lt;!channel&gt; order &amp; payment failed*\n"), "{text}");
        assert!(!text.contains("<!channel>") && text.contains("Events: 3\n"), "{text}");
        let Message::Telegram { text, chat_id, .. } =
            message(&f, &dest(r#"{"telegram":{"bot_token":"1:A","chat_id":5}}"#))
        else {
            panic!()
        };
        assert_eq!(chat_id, "5");
        assert!(text.starts_with("[orderwatch] New error: <!channel> order & payment failed\nA new error in default"));
        assert!(text.contains("Link: https://ow.shop.example/error-groups/7\n"), "{text}");
    }

    #[test]
    fn entries_choose_projects_and_kinds_and_keys_differ_per_entry() {
        let alerts = GroupAlerts {
            defs: vec![
                serde_json::from_str(r#"{"destination":{"slack":"https://hooks.example/a"}}"#).unwrap(),
                serde_json::from_str(r#"{"project":2,"destination":{"slack":"https://hooks.example/b"}}"#).unwrap(),
                serde_json::from_str(r#"{"on":["regression"],"destination":{"slack":"https://hooks.example/c"}}"#)
                    .unwrap(),
            ],
            public_url: None,
            zone: jiff::tz::TimeZone::UTC,
        };
        let g = group();
        let ev = |kind| GroupAlertEvent { kind, group: &g, event_id: "e1", resolved_at: None };
        let first = alerts.notifications(&ev(GroupAlertKind::FirstSeen), "default");
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].dedup_key.as_deref(), Some("group:7:first_seen:0"));
        assert_eq!(first[0].source, "error_group:7");
        let back = alerts.notifications(&ev(GroupAlertKind::Regression), "default");
        let keys: Vec<_> = back.iter().map(|n| n.dedup_key.clone().unwrap()).collect();
        assert_eq!(keys, ["group:7:regression:e1:0", "group:7:regression:e1:2"]);
    }

    #[test]
    fn definitions_are_checked() {
        let def = |json: &str| serde_json::from_str::<GroupAlertDef>(json).map_err(|e| e.to_string());
        let d = def(r#"{"destination":{"webhook":"http://127.0.0.1:9/"}}"#).unwrap();
        assert_eq!((d.project, d.on.as_slice()), (None, &GroupAlertKind::ALL[..]));
        assert!(d.check().is_ok());
        for (json, want) in [
            (r#"{"project":0,"destination":{"webhook":"http://a/"}}"#, "project: 0"),
            (r#"{"on":[],"destination":{"webhook":"http://a/"}}"#, "on: name at least one"),
            (r#"{"destination":{"webhook":"ftp://a/"}}"#, "http(s) URL"),
            (r#"{"destination":{"webhook_json":"http://a/","secret":"short"}}"#, "16 characters"),
        ] {
            let err = def(json).unwrap().check().unwrap_err();
            assert!(err.contains(want), "{json}: {err}");
        }
        assert!(def(r#"{"on":["first"],"destination":{"webhook":"http://a/"}}"#).unwrap_err().contains("first_seen"));
        assert!(def(r#"{"kind":"x","destination":{"webhook":"http://a/"}}"#).unwrap_err().contains("unknown field"));
    }
}
