//! Which error group (what Sentry calls an issue) an event belongs to, its
//! title and culprit. The grouping key is the event's `fingerprint` with
//! `{{ default }}` replaced by the default key; the default key is, for an
//! exception, its type, its value with numbers and ids normalised away, and
//! its in-app frames (module or file, and function: no line numbers, so an
//! edit elsewhere in the file does not split a group); else the message.

use serde_json::Value;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grouping {
    /// sha256 (hex) of the grouping key.
    pub fingerprint: String,
    pub title: String,
    pub culprit: Option<String>,
}

pub fn group(event: &Value) -> Grouping {
    let default = default_key(event);
    let parts: Vec<String> = match event.get("fingerprint").and_then(Value::as_array) {
        Some(fp) if !fp.is_empty() => fp
            .iter()
            .flat_map(|v| {
                let s = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let bare: String = s.chars().filter(|c| !c.is_whitespace()).collect();
                if bare == "{{default}}" { default.clone() } else { vec![s] }
            })
            .collect(),
        _ => default,
    };
    let mut h = Sha256::new();
    for p in &parts {
        h.update(p.as_bytes());
        h.update(b"\n");
    }
    let fingerprint = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    // NUL is no text for a database (PostgreSQL refuses it).
    let clean = |s: String| s.replace('\0', "");
    Grouping { fingerprint, title: clean(title(event)), culprit: culprit(event).map(clean) }
}

fn exception(event: &Value) -> Option<&Value> {
    // The last of the chain is the one raised (Sentry's order).
    event.pointer("/exception/values").and_then(Value::as_array).and_then(|v| v.last())
}

fn message(event: &Value) -> Option<String> {
    let m = event.get("logentry").or_else(|| event.get("message"))?;
    match m {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o
            .get("formatted")
            .or_else(|| o.get("message"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        _ => None,
    }
    .filter(|s| !s.trim().is_empty())
}

fn default_key(event: &Value) -> Vec<String> {
    if let Some(values) = event.pointer("/exception/values").and_then(Value::as_array).filter(|v| !v.is_empty()) {
        let mut parts = Vec::new();
        for ex in values {
            parts.push(format!("type:{}", ex.get("type").and_then(Value::as_str).unwrap_or("")));
            parts.push(format!("value:{}", normalise(ex.get("value").and_then(Value::as_str).unwrap_or(""))));
            for f in in_app_frames(ex) {
                parts.push(format!("frame:{f}"));
            }
        }
        return parts;
    }
    match message(event) {
        Some(m) => vec![format!("message:{}", normalise(&m))],
        None => vec!["no-message".into()],
    }
}

fn in_app_frames(ex: &Value) -> Vec<String> {
    let Some(frames) = ex.pointer("/stacktrace/frames").and_then(Value::as_array) else { return Vec::new() };
    frames
        .iter()
        .filter(|f| f.get("in_app").and_then(Value::as_bool) == Some(true))
        .map(|f| {
            let s = |k: &str| f.get(k).and_then(Value::as_str).unwrap_or("");
            let place = if s("module").is_empty() { s("filename") } else { s("module") };
            format!("{place} {}", s("function"))
        })
        .collect()
}

/// Numbers, hex ids and UUIDs become placeholders, so `order 1187 failed` and
/// `order 1188 failed` are one group.
pub fn normalise(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if !word.is_empty() {
            let hexish = word.len() >= 8 && word.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
            if word.chars().all(|c| c.is_ascii_digit()) {
                out.push_str("<n>");
            } else if hexish && word.chars().any(|c| c.is_ascii_digit()) {
                out.push_str("<id>");
            } else {
                out.push_str(word);
            }
            word.clear();
        }
    };
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || c == '-' {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

fn title(event: &Value) -> String {
    let t = match exception(event) {
        Some(ex) => {
            let ty = ex.get("type").and_then(Value::as_str).unwrap_or("Error");
            match ex.get("value").and_then(Value::as_str).filter(|v| !v.is_empty()) {
                Some(v) => format!("{ty}: {v}"),
                None => ty.to_owned(),
            }
        }
        None => message(event).unwrap_or_else(|| "<no message>".into()),
    };
    let first = t.lines().next().unwrap_or("").to_owned();
    if first.chars().count() > 200 { first.chars().take(199).chain(['…']).collect() } else { first }
}

fn culprit(event: &Value) -> Option<String> {
    if let Some(t) = event.get("transaction").and_then(Value::as_str).filter(|t| !t.is_empty()) {
        return Some(t.to_owned());
    }
    let ex = exception(event)?;
    let frames = ex.pointer("/stacktrace/frames").and_then(Value::as_array)?;
    let f = frames.iter().rev().find(|f| f.get("in_app").and_then(Value::as_bool) == Some(true)).or(frames.last())?;
    let s = |k: &str| f.get(k).and_then(Value::as_str).unwrap_or("");
    let place = if s("module").is_empty() { s("filename") } else { s("module") };
    Some(format!("{place} in {}", s("function")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ex(ty: &str, value: &str, line: u64) -> Value {
        json!({"exception": {"values": [{"type": ty, "value": value, "stacktrace": {"frames": [
            {"module": "django.core", "function": "handle", "in_app": false, "lineno": 10},
            {"module": "shop.orders.views", "function": "create_order", "in_app": true, "lineno": line},
        ]}}]}})
    }

    #[test]
    fn same_error_same_group_whatever_the_numbers_and_lines() {
        let a = group(&ex("IntegrityError", "order 1187 failed: duplicate key 9f86d081884c", 42));
        let b = group(&ex("IntegrityError", "order 1188 failed: duplicate key 2c26b46b68ff", 57));
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_eq!(a.title, "IntegrityError: order 1187 failed: duplicate key 9f86d081884c");
        assert_eq!(a.culprit.as_deref(), Some("shop.orders.views in create_order"));
        assert_ne!(a.fingerprint, group(&ex("ValueError", "order 1187 failed: duplicate key 9f86d081884c", 42)).fingerprint);
        assert_ne!(a.fingerprint, group(&ex("IntegrityError", "payment refused", 42)).fingerprint);
    }

    #[test]
    fn fingerprints_with_and_without_the_default() {
        let mut e = ex("OrderSubmitError", "POST /api/v1/orders/ failed with 400", 1);
        let plain = group(&e).fingerprint;
        e["fingerprint"] = json!(["{{ default }}"]);
        assert_eq!(group(&e).fingerprint, plain);
        e["fingerprint"] = json!(["{{default}}", "400"]);
        let with_status = group(&e).fingerprint;
        assert_ne!(with_status, plain);
        e["fingerprint"] = json!(["checkout", "400"]);
        let mut other = ex("Other", "x", 1);
        other["fingerprint"] = json!(["checkout", "400"]);
        assert_eq!(group(&e).fingerprint, group(&other).fingerprint, "a custom fingerprint alone decides");
    }

    #[test]
    fn messages_and_odd_events() {
        let a = group(&json!({"message": "payment gateway timeout after 30000 ms"}));
        let b = group(&json!({"logentry": {"formatted": "payment gateway timeout after 15000 ms"}}));
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_eq!(a.title, "payment gateway timeout after 30000 ms");
        assert_eq!(group(&json!({})).title, "<no message>");
        assert_eq!(group(&json!({"exception": {"values": []}, "message": "m"})).title, "m");
        assert_eq!(normalise("id 550e8400-e29b-41d4-a716-446655440000 at 12:30"), "id <id> at <n>:<n>");
    }
}
