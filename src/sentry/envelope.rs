//! The Sentry envelope: splitting a decompressed request body into its
//! header and items, tolerantly, the way Sentry's own server does.
//!
//! Wire format (<https://develop.sentry.dev/sdk/data-model/envelopes/>):
//!
//! ```text
//! {"event_id":"9b2d…","dsn":"…","sent_at":"…","sdk":{…}}\n   envelope header: one JSON object on one line
//! {"type":"event","length":41}\n                              item header: JSON object, `type` required
//! <41 bytes of payload, may contain \n>\n                     payload, then an optional \n
//! {"type":"session"}\n                                         no `length`: the payload ends at
//! {"sid":"…","status":"ok"}                                    the next \n or at EOF
//! ```
//!
//! Tolerance rules (what a server accepts, beyond what SDKs emit):
//! - `length` present: the payload is exactly that many bytes (it may contain
//!   newlines); a following `\n` or `\r\n` is optional.
//! - `length` absent (or `null`): the payload runs to the next `\n` or EOF; one
//!   trailing `\r` is dropped, so `\r\n` bodies parse as `\n` bodies.
//! - Header lines may end in `\r\n`; whitespace and blank lines before the
//!   envelope header and before each item header are skipped; the last item
//!   may end without a newline; an envelope with no items is valid.
//! - An item header at EOF without its newline has an empty payload.
//! - Unknown item types are kept as [`ItemType::Unknown`] and unknown header
//!   keys are kept in the raw maps: neither is ever a reason to refuse.
//!
//! Refused: a missing or non-object envelope header, an item header that is
//! not a JSON object or has no string `type`, a `length` that is not a
//! non-negative integer or runs past the end of the body, more than
//! [`MAX_ITEMS`] items, and an `event_id` that is neither 32 hex digits nor a
//! dashed UUID. Every error names the byte offset, and the item index where
//! there is one.
//!
//! Items borrow their payloads from the request body ([`Bytes::slice`]), so
//! parsing copies no payload bytes. [`from_store_body`] turns a legacy
//! `/store/` body (a bare event JSON) into the same [`Envelope`].

use bytes::Bytes;
use serde_json::{Map, Value};

/// Most items one envelope may hold. Real SDKs send a handful (an event, its
/// attachments, a session, a client report); the cap bounds the work one
/// request can cause.
pub const MAX_ITEMS: usize = 1000;

/// A parsed envelope: its header and its items in wire order.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub header: EnvelopeHeader,
    pub items: Vec<Item>,
}

/// The envelope header. The typed fields are views of `raw`, which holds the
/// header object exactly as received and is what [`serialize`] writes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EnvelopeHeader {
    /// 32 lowercase hex digits (a dashed or uppercase UUID is normalised).
    pub event_id: Option<String>,
    pub dsn: Option<String>,
    pub sent_at: Option<String>,
    pub sdk_name: Option<String>,
    pub sdk_version: Option<String>,
    pub raw: Map<String, Value>,
}

/// One item: its header and its payload bytes (a slice of the body).
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub header: ItemHeader,
    pub payload: Bytes,
}

/// An item header. `ty` and `length` come from `type` and `length`;
/// `content_type` and `filename` are views of `raw`, which holds the whole
/// header object as received (`type` and `length` included).
#[derive(Debug, Clone, PartialEq)]
pub struct ItemHeader {
    pub ty: ItemType,
    /// The declared `length`, `None` when the payload was newline-delimited.
    pub length: Option<usize>,
    pub content_type: Option<String>,
    pub filename: Option<String>,
    pub raw: Map<String, Value>,
}

/// Item types by their wire names
/// (<https://develop.sentry.dev/sdk/data-model/envelope-items/>).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ItemType {
    Event,
    Transaction,
    Attachment,
    Session,
    Sessions,
    ClientReport,
    UserReport,
    Feedback,
    CheckIn,
    ReplayEvent,
    ReplayRecording,
    Profile,
    Statsd,
    Span,
    /// Any other type, kept by its wire name: new SDKs send types this server
    /// does not know yet, and that must not fail the envelope.
    Unknown(String),
}

impl ItemType {
    /// Every known type, for tests and exhaustive handling.
    pub const KNOWN: [ItemType; 14] = [
        ItemType::Event,
        ItemType::Transaction,
        ItemType::Attachment,
        ItemType::Session,
        ItemType::Sessions,
        ItemType::ClientReport,
        ItemType::UserReport,
        ItemType::Feedback,
        ItemType::CheckIn,
        ItemType::ReplayEvent,
        ItemType::ReplayRecording,
        ItemType::Profile,
        ItemType::Statsd,
        ItemType::Span,
    ];

    /// The wire name (snake_case).
    pub fn as_str(&self) -> &str {
        match self {
            ItemType::Event => "event",
            ItemType::Transaction => "transaction",
            ItemType::Attachment => "attachment",
            ItemType::Session => "session",
            ItemType::Sessions => "sessions",
            ItemType::ClientReport => "client_report",
            ItemType::UserReport => "user_report",
            ItemType::Feedback => "feedback",
            ItemType::CheckIn => "check_in",
            ItemType::ReplayEvent => "replay_event",
            ItemType::ReplayRecording => "replay_recording",
            ItemType::Profile => "profile",
            ItemType::Statsd => "statsd",
            ItemType::Span => "span",
            ItemType::Unknown(name) => name,
        }
    }
}

impl From<&str> for ItemType {
    fn from(name: &str) -> Self {
        ItemType::KNOWN
            .into_iter()
            .find(|t| t.as_str() == name)
            .unwrap_or_else(|| ItemType::Unknown(name.to_owned()))
    }
}

impl std::fmt::Display for ItemType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a body is not an envelope. Offsets are bytes from the start of the
/// decompressed body; item indexes count from 0.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error(
        "envelope header missing: the body is empty or blank (expected a JSON object on the first line)"
    )]
    MissingHeader,
    #[error("envelope header at byte {offset} is not valid JSON: {reason}")]
    InvalidHeader { offset: usize, reason: String },
    #[error("envelope header at byte {offset} is a JSON {found}, expected an object")]
    HeaderNotObject { offset: usize, found: &'static str },
    #[error(
        "envelope header at byte {offset}: invalid event_id {value}: expected 32 hex digits or a dashed UUID"
    )]
    InvalidEventId { offset: usize, value: String },
    #[error("item {index}: header at byte {offset} is not a JSON object: {reason}")]
    InvalidItemHeader {
        index: usize,
        offset: usize,
        reason: String,
    },
    #[error("item {index}: header at byte {offset} has no \"type\" string")]
    MissingItemType { index: usize, offset: usize },
    #[error(
        "item {index}: header at byte {offset} has an invalid length {value}: expected a non-negative integer"
    )]
    InvalidLength {
        index: usize,
        offset: usize,
        value: String,
    },
    #[error(
        "item {index}: length {length} from byte {offset} runs past the end of the body ({available} bytes left)"
    )]
    LengthPastEnd {
        index: usize,
        offset: usize,
        length: usize,
        available: usize,
    },
    #[error(
        "too many items: item {index} at byte {offset} exceeds the limit of {max} per envelope"
    )]
    TooManyItems {
        index: usize,
        offset: usize,
        max: usize,
    },
    #[error("store body is not a JSON object: {reason}")]
    InvalidStoreBody { reason: String },
}

impl Envelope {
    /// The first `event` or `transaction` item, if any.
    pub fn event(&self) -> Option<&Item> {
        self.items
            .iter()
            .find(|i| matches!(i.header.ty, ItemType::Event | ItemType::Transaction))
    }
}

impl Item {
    /// An item in the form [`serialize`] writes: header `{"type", "length"}`.
    pub fn new(ty: ItemType, payload: Bytes) -> Item {
        let mut raw = Map::new();
        raw.insert("type".into(), Value::String(ty.as_str().to_owned()));
        raw.insert("length".into(), Value::from(payload.len()));
        Item {
            header: ItemHeader {
                ty,
                length: Some(payload.len()),
                content_type: None,
                filename: None,
                raw,
            },
            payload,
        }
    }
}

impl EnvelopeHeader {
    /// Builds the header from its JSON object, deriving the typed fields.
    /// `offset` is only used in errors.
    pub fn from_map(raw: Map<String, Value>, offset: usize) -> Result<Self, EnvelopeError> {
        let event_id = match raw.get("event_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => {
                Some(
                    normalise_event_id(s).ok_or_else(|| EnvelopeError::InvalidEventId {
                        offset,
                        value: format!("{s:?}"),
                    })?,
                )
            }
            Some(other) => {
                return Err(EnvelopeError::InvalidEventId {
                    offset,
                    value: other.to_string(),
                });
            }
        };
        let sdk = raw.get("sdk").and_then(Value::as_object);
        let sdk_field = |key: &str| {
            sdk.and_then(|o| o.get(key))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        Ok(EnvelopeHeader {
            event_id,
            dsn: str_field(&raw, "dsn"),
            sent_at: str_field(&raw, "sent_at"),
            sdk_name: sdk_field("name"),
            sdk_version: sdk_field("version"),
            raw,
        })
    }
}

fn str_field(map: &Map<String, Value>, key: &str) -> Option<String> {
    map.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// Accepts 32 hex digits or the dashed 8-4-4-4-12 UUID form, any case, and
/// returns 32 lowercase hex digits (the one reading of event ids: envelope
/// headers, event payloads, API paths).
pub fn normalise_event_id(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let hex: Vec<u8> = match b.len() {
        32 => b.to_vec(),
        36 => {
            if [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
                return None;
            }
            b.iter().copied().filter(|&c| c != b'-').collect()
        }
        _ => return None,
    };
    if hex.len() != 32 || !hex.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    Some(hex.iter().map(|c| c.to_ascii_lowercase() as char).collect())
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Index of the first byte at or after `pos` that is not ASCII whitespace.
fn skip_whitespace(body: &[u8], mut pos: usize) -> usize {
    while pos < body.len() && matches!(body[pos], b' ' | b'\t' | b'\r' | b'\n') {
        pos += 1;
    }
    pos
}

/// The line starting at `pos`: (end of its content, start of the next line).
/// The content excludes the `\n`; a line at EOF has no `\n`.
fn line_end(body: &[u8], pos: usize) -> (usize, usize) {
    match memchr::memchr(b'\n', &body[pos..]) {
        Some(i) => (pos + i, pos + i + 1),
        None => (body.len(), body.len()),
    }
}

/// Splits a decompressed envelope body. Payloads are slices of `body`.
pub fn parse(body: &Bytes) -> Result<Envelope, EnvelopeError> {
    let buf: &[u8] = body;

    let start = skip_whitespace(buf, 0);
    if start == buf.len() {
        return Err(EnvelopeError::MissingHeader);
    }
    let (end, mut pos) = line_end(buf, start);
    let header = match serde_json::from_slice::<Value>(&buf[start..end]) {
        Ok(Value::Object(map)) => EnvelopeHeader::from_map(map, start)?,
        Ok(other) => {
            return Err(EnvelopeError::HeaderNotObject {
                offset: start,
                found: json_kind(&other),
            });
        }
        Err(e) => {
            return Err(EnvelopeError::InvalidHeader {
                offset: start,
                reason: e.to_string(),
            });
        }
    };

    let mut items = Vec::new();
    loop {
        pos = skip_whitespace(buf, pos);
        if pos == buf.len() {
            break;
        }
        let index = items.len();
        if index == MAX_ITEMS {
            return Err(EnvelopeError::TooManyItems {
                index,
                offset: pos,
                max: MAX_ITEMS,
            });
        }
        let header_at = pos;
        let (end, payload_start) = line_end(buf, header_at);
        let header = parse_item_header(&buf[header_at..end], index, header_at)?;

        let payload_end = match header.length {
            Some(length) => {
                let available = buf.len() - payload_start;
                if length > available {
                    return Err(EnvelopeError::LengthPastEnd {
                        index,
                        offset: payload_start,
                        length,
                        available,
                    });
                }
                // The newline after an explicit-length payload is optional;
                // the whitespace skip at the top of the loop consumes it.
                pos = payload_start + length;
                pos
            }
            None => {
                let (mut end, next) = line_end(buf, payload_start);
                pos = next;
                if end > payload_start && buf[end - 1] == b'\r' {
                    end -= 1;
                }
                end
            }
        };
        items.push(Item {
            header,
            payload: body.slice(payload_start..payload_end),
        });
    }
    Ok(Envelope { header, items })
}

fn parse_item_header(
    line: &[u8],
    index: usize,
    offset: usize,
) -> Result<ItemHeader, EnvelopeError> {
    let raw = match serde_json::from_slice::<Value>(line) {
        Ok(Value::Object(map)) => map,
        Ok(other) => {
            return Err(EnvelopeError::InvalidItemHeader {
                index,
                offset,
                reason: format!("found a JSON {}", json_kind(&other)),
            });
        }
        Err(e) => {
            return Err(EnvelopeError::InvalidItemHeader {
                index,
                offset,
                reason: e.to_string(),
            });
        }
    };
    let ty = match raw.get("type") {
        Some(Value::String(name)) => ItemType::from(name.as_str()),
        _ => return Err(EnvelopeError::MissingItemType { index, offset }),
    };
    let length = match raw.get("length") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| EnvelopeError::InvalidLength {
                    index,
                    offset,
                    value: v.to_string(),
                })?,
        ),
    };
    Ok(ItemHeader {
        ty,
        length,
        content_type: str_field(&raw, "content_type"),
        filename: str_field(&raw, "filename"),
        raw,
    })
}

/// Turns a legacy `/store/` body (one bare event JSON object, decompressed)
/// into an envelope with one `event` item whose payload is the whole body.
/// The envelope's `event_id` is the event's, when it has one.
pub fn from_store_body(body: Bytes) -> Result<Envelope, EnvelopeError> {
    let event = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(map)) => map,
        Ok(other) => {
            return Err(EnvelopeError::InvalidStoreBody {
                reason: format!("found a JSON {}", json_kind(&other)),
            });
        }
        Err(e) => {
            return Err(EnvelopeError::InvalidStoreBody {
                reason: e.to_string(),
            });
        }
    };
    let mut raw = Map::new();
    if let Some(id) = event.get("event_id").filter(|v| !v.is_null()) {
        raw.insert("event_id".into(), id.clone());
    }
    let header = EnvelopeHeader::from_map(raw, 0)?;
    Ok(Envelope {
        header,
        items: vec![Item::new(ItemType::Event, body)],
    })
}

/// Writes the envelope in canonical form: the header's `raw` object, then per
/// item its `raw` header with `type` and `length` set from the item, the
/// payload and a `\n`. `parse(serialize(e))` gives back `e` whenever every
/// item's header already says `"length": payload.len()` (as [`Item::new`] and
/// any parse of a serialized envelope do).
pub fn serialize(envelope: &Envelope) -> Vec<u8> {
    let payloads: usize = envelope.items.iter().map(|i| i.payload.len() + 64).sum();
    let mut out = Vec::with_capacity(256 + payloads);
    // Serialising a map of JSON values to a Vec cannot fail.
    serde_json::to_writer(&mut out, &envelope.header.raw).expect("JSON map serialises");
    out.push(b'\n');
    for item in &envelope.items {
        let mut raw = item.header.raw.clone();
        raw.insert(
            "type".into(),
            Value::String(item.header.ty.as_str().to_owned()),
        );
        raw.insert("length".into(), Value::from(item.payload.len()));
        serde_json::to_writer(&mut out, &raw).expect("JSON map serialises");
        out.push(b'\n');
        out.extend_from_slice(&item.payload);
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BROWSER_ENVELOPE: &[u8] =
        include_bytes!("../../testdata/sentry-browser-order-400.envelope");
    const PYTHON_EVENT: &[u8] = include_bytes!("../../testdata/sentry-python-order-500.event.json");

    fn parse_str(s: &str) -> Result<Envelope, EnvelopeError> {
        parse(&Bytes::copy_from_slice(s.as_bytes()))
    }

    fn types(e: &Envelope) -> Vec<&str> {
        e.items.iter().map(|i| i.header.ty.as_str()).collect()
    }

    fn payloads(e: &Envelope) -> Vec<&[u8]> {
        e.items.iter().map(|i| &i.payload[..]).collect()
    }

    #[test]
    fn browser_fixture_splits_into_event_session_client_report_replay() {
        let body = Bytes::from_static(BROWSER_ENVELOPE);
        let env = parse(&body).unwrap();
        assert_eq!(
            env.header.event_id.as_deref(),
            Some("9b2d5c1e7f0a4c3d8e6b1a2f3c4d5e6f")
        );
        assert_eq!(
            env.header.sent_at.as_deref(),
            Some("2018-06-23T14:18:02.431Z")
        );
        assert_eq!(
            env.header.sdk_name.as_deref(),
            Some("sentry.javascript.browser")
        );
        assert_eq!(env.header.sdk_version.as_deref(), Some("7.120.0"));
        assert!(
            env.header
                .dsn
                .as_deref()
                .unwrap()
                .ends_with("@127.0.0.1:8080/2")
        );
        assert_eq!(
            env.items
                .iter()
                .map(|i| i.header.ty.clone())
                .collect::<Vec<_>>(),
            [
                ItemType::Event,
                ItemType::Session,
                ItemType::ClientReport,
                ItemType::ReplayEvent
            ]
        );
        assert_eq!(env.items[0].header.length, Some(2609));
        assert_eq!(env.items[1].header.length, None);
        assert_eq!(&env.items[3].payload[..], b"{}");

        let event = env.event().unwrap();
        let json: Value = serde_json::from_slice(&event.payload).unwrap();
        assert_eq!(json["event_id"], "9b2d5c1e7f0a4c3d8e6b1a2f3c4d5e6f");
        let extra = json["extra"].as_object().expect("extra is an object");
        let cart_text = serde_json::to_string(extra).unwrap();
        assert!(
            extra.keys().any(|k| k.contains("cart")),
            "no cart key in extra: {:?}",
            extra.keys().collect::<Vec<_>>()
        );
        assert!(
            cart_text.contains("-1"),
            "the basement floor -1 is in the cart"
        );
        // The other payloads are JSON too, so the split points are right.
        for item in &env.items[1..] {
            serde_json::from_slice::<Value>(&item.payload).unwrap();
        }
        // Zero-copy: the event payload points into the body.
        let start = event.payload.as_ptr() as usize - body.as_ptr() as usize;
        assert!(start < body.len());
    }

    #[test]
    fn python_store_body_becomes_one_event_item() {
        let env = from_store_body(Bytes::from_static(PYTHON_EVENT)).unwrap();
        assert_eq!(
            env.header.event_id.as_deref(),
            Some("1a2b3c4d5e6f40718293a4b5c6d7e8f9")
        );
        assert_eq!(types(&env), ["event"]);
        let event = env.event().unwrap();
        assert_eq!(&event.payload[..], PYTHON_EVENT);
        let json: Value = serde_json::from_slice(&event.payload).unwrap();
        assert_eq!(json["request"]["data"]["total"], 9400.0);
        assert_eq!(parse(&Bytes::from(serialize(&env))).unwrap(), env);
    }

    #[test]
    fn store_body_without_event_id_and_non_object() {
        let env = from_store_body(Bytes::from_static(b"{\"message\":\"hi\"}")).unwrap();
        assert_eq!(env.header.event_id, None);
        assert!(matches!(
            from_store_body(Bytes::from_static(b"[1]")),
            Err(EnvelopeError::InvalidStoreBody { .. })
        ));
        assert!(matches!(
            from_store_body(Bytes::from_static(b"{\"event_id\":\"nope\"}")),
            Err(EnvelopeError::InvalidEventId { .. })
        ));
    }

    /// Wire input, then the expected item types and payloads.
    #[test]
    fn tolerated_edge_cases() {
        type Case = (
            &'static str,
            &'static str,
            &'static [&'static str],
            &'static [&'static [u8]],
        );
        let cases: &[Case] = &[
            (
                "no trailing newline",
                "{}\n{\"type\":\"event\",\"length\":2}\n{}",
                &["event"],
                &[b"{}"],
            ),
            (
                "items without length",
                "{}\n{\"type\":\"session\"}\n{\"a\":1}\n{\"type\":\"client_report\"}\n{\"b\":2}\n",
                &["session", "client_report"],
                &[b"{\"a\":1}", b"{\"b\":2}"],
            ),
            (
                "last item without length and without newline",
                "{}\n{\"type\":\"session\"}\n{\"a\":1}",
                &["session"],
                &[b"{\"a\":1}"],
            ),
            (
                "crlf line endings",
                "{}\r\n{\"type\":\"event\",\"length\":2}\r\n{}\r\n{\"type\":\"session\"}\r\n{\"s\":1}\r\n",
                &["event", "session"],
                &[b"{}", b"{\"s\":1}"],
            ),
            (
                "blank lines between items",
                "{}\n\n{\"type\":\"event\",\"length\":2}\n{}\n\n\r\n{\"type\":\"session\"}\nx\n\n\n",
                &["event", "session"],
                &[b"{}", b"x"],
            ),
            ("empty envelope", "{}\n", &[], &[]),
            (
                "empty envelope without newline",
                "{\"event_id\":null}",
                &[],
                &[],
            ),
            (
                "unknown type kept",
                "{}\n{\"type\":\"log\",\"length\":3}\nabc\n",
                &["log"],
                &[b"abc"],
            ),
            (
                "length 0",
                "{}\n{\"type\":\"attachment\",\"length\":0}\n\n{\"type\":\"event\",\"length\":1}\n7",
                &["attachment", "event"],
                &[b"", b"7"],
            ),
            (
                "length payload with newlines",
                "{}\n{\"type\":\"attachment\",\"length\":4}\na\nb\n\n",
                &["attachment"],
                &[b"a\nb\n"],
            ),
            (
                "payload directly followed by next header",
                "{}\n{\"type\":\"event\",\"length\":2}\n{}{\"type\":\"span\"}\nz",
                &["event", "span"],
                &[b"{}", b"z"],
            ),
            (
                "empty implicit payload",
                "{}\n{\"type\":\"user_report\"}\n\n{\"type\":\"check_in\"}",
                &["user_report", "check_in"],
                &[b"", b""],
            ),
            (
                "length null means no length",
                "{}\n{\"type\":\"profile\",\"length\":null}\np\n",
                &["profile"],
                &[b"p"],
            ),
        ];
        for (name, input, want_types, want_payloads) in cases {
            let env = parse_str(input).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(types(&env), *want_types, "{name}");
            assert_eq!(payloads(&env), *want_payloads, "{name}");
        }
    }

    #[test]
    fn refused_edge_cases() {
        use EnvelopeError::*;
        let cases: &[(&str, &str, EnvelopeError)] = &[
            ("empty body", "", MissingHeader),
            ("blank body", " \r\n\n", MissingHeader),
            (
                "header not an object",
                "[1,2]\n",
                HeaderNotObject {
                    offset: 0,
                    found: "array",
                },
            ),
            (
                "header is a string after blank line",
                "\n\"x\"\n",
                HeaderNotObject {
                    offset: 1,
                    found: "string",
                },
            ),
            (
                "length past the end",
                "{}\n{\"type\":\"event\",\"length\":10}\nabc",
                LengthPastEnd {
                    index: 0,
                    offset: 32,
                    length: 10,
                    available: 3,
                },
            ),
            (
                "item header without type",
                "{}\n{\"type\":\"event\",\"length\":0}\n\n{\"length\":0}\n",
                MissingItemType {
                    index: 1,
                    offset: 32,
                },
            ),
            (
                "item type not a string",
                "{}\n{\"type\":7}\n",
                MissingItemType {
                    index: 0,
                    offset: 3,
                },
            ),
            (
                "negative length",
                "{}\n{\"type\":\"event\",\"length\":-1}\n",
                InvalidLength {
                    index: 0,
                    offset: 3,
                    value: "-1".into(),
                },
            ),
            (
                "bad event id",
                "{\"event_id\":\"abc\"}\n",
                InvalidEventId {
                    offset: 0,
                    value: "\"abc\"".into(),
                },
            ),
        ];
        for (name, input, want) in cases {
            assert_eq!(parse_str(input).unwrap_err(), *want, "{name}");
        }
        // Errors whose reason is serde_json's text: check the variant and position.
        let err = parse_str("not json\n").unwrap_err();
        assert!(matches!(err, InvalidHeader { offset: 0, .. }), "{err}");
        let err = parse_str("{}\n{\"type\":\"event\"}\nx\n{oops\n").unwrap_err();
        assert!(
            matches!(
                err,
                InvalidItemHeader {
                    index: 1,
                    offset: 22,
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            err.to_string().contains("item 1") && err.to_string().contains("byte 22"),
            "{err}"
        );
        let err = parse_str("{}\n[]\n").unwrap_err();
        assert!(
            matches!(
                err,
                InvalidItemHeader {
                    index: 0,
                    offset: 3,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn length_past_end_message_names_item_and_offset() {
        let err = parse_str("{}\n{\"type\":\"event\",\"length\":10}\nabc").unwrap_err();
        assert_eq!(
            err.to_string(),
            "item 0: length 10 from byte 32 runs past the end of the body (3 bytes left)"
        );
    }

    #[test]
    fn event_id_forms() {
        let cases = [
            (
                "9b2d5c1e-7f0a-4c3d-8e6b-1a2f3c4d5e6f",
                Some("9b2d5c1e7f0a4c3d8e6b1a2f3c4d5e6f"),
            ),
            (
                "9B2D5C1E7F0A4C3D8E6B1A2F3C4D5E6F",
                Some("9b2d5c1e7f0a4c3d8e6b1a2f3c4d5e6f"),
            ),
            (
                "9b2d5c1e7f0a4c3d8e6b1a2f3c4d5e6f",
                Some("9b2d5c1e7f0a4c3d8e6b1a2f3c4d5e6f"),
            ),
            ("9b2d5c1e7f0a4c3d8e6b1a2f3c4d5e6", None),
            ("9b2d5c1e-7f0a-4c3d-8e6b1a2f3c4d5e6f", None),
            ("9b2d5c1e-7f0a-4c3d-8e6b-1a2f3c4d5e6g", None),
            ("9b2d5c1e7f0a4c3d8e6b1a2f3c4d5e6f----", None),
            ("zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", None),
            ("", None),
        ];
        for (input, want) in cases {
            assert_eq!(normalise_event_id(input).as_deref(), want, "{input}");
        }
        let env = parse_str("{\"event_id\":\"9B2D5C1E-7F0A-4C3D-8E6B-1A2F3C4D5E6F\"}\n").unwrap();
        assert_eq!(
            env.header.event_id.as_deref(),
            Some("9b2d5c1e7f0a4c3d8e6b1a2f3c4d5e6f")
        );
        assert!(matches!(
            parse_str("{\"event_id\":12}\n"),
            Err(EnvelopeError::InvalidEventId { .. })
        ));
    }

    #[test]
    fn item_type_wire_names_round_trip() {
        for t in ItemType::KNOWN {
            assert_eq!(ItemType::from(t.as_str()), t);
        }
        assert_eq!(ItemType::from("check_in"), ItemType::CheckIn);
        assert_eq!(
            ItemType::from("replay_recording"),
            ItemType::ReplayRecording
        );
        assert_eq!(ItemType::from("Event"), ItemType::Unknown("Event".into()));
    }

    #[test]
    fn item_header_keeps_attachment_fields() {
        let env = parse_str(
            "{}\n{\"type\":\"attachment\",\"length\":3,\"filename\":\"cart.json\",\"content_type\":\"application/json\",\"attachment_type\":\"event.attachment\"}\nabc\n",
        )
        .unwrap();
        let h = &env.items[0].header;
        assert_eq!(h.filename.as_deref(), Some("cart.json"));
        assert_eq!(h.content_type.as_deref(), Some("application/json"));
        assert_eq!(h.raw["attachment_type"], "event.attachment");
    }

    #[test]
    fn event_helper_finds_first_event_or_transaction() {
        let env = parse_str("{}\n{\"type\":\"session\"}\ns\n{\"type\":\"transaction\"}\nt\n{\"type\":\"event\"}\ne\n").unwrap();
        assert_eq!(&env.event().unwrap().payload[..], b"t");
        assert!(
            parse_str("{}\n{\"type\":\"session\"}\ns\n")
                .unwrap()
                .event()
                .is_none()
        );
    }

    #[test]
    fn too_many_items_refused_at_the_cap() {
        let mut s = String::from("{}\n");
        for _ in 0..MAX_ITEMS {
            s.push_str("{\"type\":\"span\",\"length\":0}\n\n");
        }
        assert_eq!(parse_str(&s).unwrap().items.len(), MAX_ITEMS);
        let offset = s.len();
        s.push_str("{\"type\":\"span\"}\n");
        assert_eq!(
            parse_str(&s).unwrap_err(),
            EnvelopeError::TooManyItems {
                index: MAX_ITEMS,
                offset,
                max: MAX_ITEMS
            }
        );
    }

    #[test]
    fn fixture_round_trips_through_serialize() {
        let env = parse(&Bytes::from_static(BROWSER_ENVELOPE)).unwrap();
        let again = parse(&Bytes::from(serialize(&env))).unwrap();
        assert_eq!(again.header, env.header);
        assert_eq!(types(&again), types(&env));
        assert_eq!(payloads(&again), payloads(&env));
        // Serialising is canonical: a second pass changes nothing.
        assert_eq!(
            serialize(&again),
            serialize(&parse(&Bytes::from(serialize(&again))).unwrap())
        );
    }

    fn item_type() -> impl Strategy<Value = ItemType> {
        prop_oneof![
            proptest::sample::select(ItemType::KNOWN.to_vec()),
            "[a-z_]{1,12}".prop_map(|s| ItemType::from(s.as_str())),
        ]
    }

    fn envelope_header() -> impl Strategy<Value = EnvelopeHeader> {
        (
            proptest::option::of("[0-9a-f]{32}"),
            proptest::option::of("[ -~]{0,20}"),
            proptest::option::of(("[a-z.]{1,10}", "[0-9.]{1,6}")),
        )
            .prop_map(|(id, dsn, sdk)| {
                let mut raw = Map::new();
                if let Some(id) = id {
                    raw.insert("event_id".into(), id.into());
                }
                if let Some(dsn) = dsn {
                    raw.insert("dsn".into(), dsn.into());
                }
                if let Some((name, version)) = sdk {
                    raw.insert(
                        "sdk".into(),
                        serde_json::json!({"name": name, "version": version}),
                    );
                }
                EnvelopeHeader::from_map(raw, 0).unwrap()
            })
    }

    fn canonical_item() -> impl Strategy<Value = Item> {
        (
            item_type(),
            proptest::collection::vec(any::<u8>(), 0..48),
            proptest::option::of("[ -~]{0,12}"),
        )
            .prop_map(|(ty, payload, filename)| {
                let mut item = Item::new(ty, Bytes::from(payload));
                if let Some(f) = filename {
                    item.header.raw.insert("filename".into(), f.clone().into());
                    item.header.filename = Some(f);
                }
                item
            })
    }

    /// One item as written on the wire with a chosen framing.
    #[derive(Debug, Clone)]
    struct WireItem {
        ty: ItemType,
        payload: Vec<u8>,
        with_length: bool,
        crlf: bool,
        blank_lines: usize,
    }

    fn wire_item() -> impl Strategy<Value = WireItem> {
        (item_type(), any::<bool>(), any::<bool>(), 0usize..3).prop_flat_map(
            |(ty, with_length, crlf, blank_lines)| {
                let payload = if with_length {
                    proptest::collection::vec(any::<u8>(), 0..48).boxed()
                } else {
                    // Newline-delimited payloads cannot hold `\n`, and one
                    // trailing `\r` is taken as part of a `\r\n`.
                    proptest::collection::vec(
                        any::<u8>().prop_filter("no newline", |b| *b != b'\n'),
                        0..48,
                    )
                    .prop_filter("no trailing CR", |p| p.last() != Some(&b'\r'))
                    .boxed()
                };
                payload.prop_map(move |payload| WireItem {
                    ty: ty.clone(),
                    payload,
                    with_length,
                    crlf,
                    blank_lines,
                })
            },
        )
    }

    proptest! {
        #[test]
        fn serialize_then_parse_is_identity(
            header in envelope_header(),
            items in proptest::collection::vec(canonical_item(), 0..6),
        ) {
            let env = Envelope { header, items };
            let bytes = Bytes::from(serialize(&env));
            prop_assert_eq!(parse(&bytes).unwrap(), env);
        }

        #[test]
        fn hand_framed_wire_parses_to_its_items(
            items in proptest::collection::vec(wire_item(), 0..6),
            trailing_newline in any::<bool>(),
        ) {
            let mut wire = b"{}\n".to_vec();
            for (i, it) in items.iter().enumerate() {
                let nl: &[u8] = if it.crlf { b"\r\n" } else { b"\n" };
                let mut h = Map::new();
                h.insert("type".into(), it.ty.as_str().into());
                if it.with_length {
                    h.insert("length".into(), it.payload.len().into());
                }
                wire.extend(serde_json::to_vec(&h).unwrap());
                wire.extend_from_slice(nl);
                wire.extend_from_slice(&it.payload);
                if i + 1 < items.len() || trailing_newline {
                    wire.extend_from_slice(nl);
                    for _ in 0..it.blank_lines {
                        wire.extend_from_slice(nl);
                    }
                }
            }
            let env = parse(&Bytes::from(wire)).unwrap();
            prop_assert_eq!(env.items.len(), items.len());
            for (got, want) in env.items.iter().zip(&items) {
                prop_assert_eq!(&got.header.ty, &want.ty);
                prop_assert_eq!(&got.payload[..], &want.payload[..]);
                prop_assert_eq!(got.header.length, want.with_length.then_some(want.payload.len()));
            }
        }

        #[test]
        fn parse_never_panics_on_arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse(&Bytes::from(body));
        }

        #[test]
        fn parse_never_panics_after_a_valid_header(
            tail in proptest::collection::vec(
                prop_oneof![
                    Just(b"{\"type\":\"event\",\"length\":3}".to_vec()),
                    Just(b"{\"type\":\"session\"}".to_vec()),
                    Just(b"\n".to_vec()),
                    Just(b"\r\n".to_vec()),
                    proptest::collection::vec(any::<u8>(), 0..8),
                ],
                0..12,
            ),
        ) {
            let mut body = b"{}\n".to_vec();
            body.extend(tail.concat());
            let body = Bytes::from(body);
            if let Ok(env) = parse(&body) {
                // Whatever parses survives a canonical round trip.
                let again = parse(&Bytes::from(serialize(&env))).unwrap();
                prop_assert_eq!(payloads(&again), payloads(&env));
                prop_assert_eq!(types(&again), types(&env));
            }
        }
    }
}
