//! The customer, delivery address and cart in captured JSON (a Sentry event's
//! `extra`/`contexts`, the request body a backend event carries, the checkout
//! reporter's payload): by the configured paths first, else by heuristics
//! that look for keys named like phone, email, name, address, items, total.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::FieldPaths;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Customer {
    pub name: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CartItem {
    pub name: Option<String>,
    pub quantity: Option<f64>,
    pub price: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Cart {
    pub items: Vec<CartItem>,
    pub total: Option<f64>,
}

/// What one piece of captured JSON says about the customer and the cart.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Extracted {
    pub customer: Customer,
    pub address: Option<String>,
    pub cart: Option<Cart>,
    /// The SDK cut nested objects short ("[Object]"): raise `normalizeDepth`.
    pub truncated: bool,
}

impl Extracted {
    /// Fills what `self` lacks from `other` (an earlier source wins).
    pub fn merge(&mut self, other: Extracted) {
        let c = &mut self.customer;
        c.name = c.name.take().or(other.customer.name);
        c.phone = c.phone.take().or(other.customer.phone);
        c.email = c.email.take().or(other.customer.email);
        self.address = self.address.take().or(other.address);
        // A cart with lines beats one with only a total.
        let lines = |c: &Option<Cart>| c.as_ref().is_some_and(|c| !c.items.is_empty());
        if self.cart.is_none() || (!lines(&self.cart) && lines(&other.cart)) {
            self.cart = other.cart;
        }
        self.truncated |= other.truncated;
    }

    pub fn has_contact(&self) -> bool {
        self.customer.phone.is_some() || self.customer.email.is_some()
    }
}

const PHONE: &[&str] = &["phone", "tel", "telephone", "phone_number", "phonenumber", "mobile", "msisdn"];
const EMAIL: &[&str] = &["email", "e-mail", "e_mail", "mail"];
const NAME: &[&str] = &["name", "full_name", "fullname", "fio", "customer_name", "recipient", "contact_name"];
const FIRST_NAME: &[&str] = &["first_name", "firstname", "given_name"];
const LAST_NAME: &[&str] = &["last_name", "lastname", "surname", "family_name"];
const ADDRESS: &[&str] = &["address", "delivery", "shipping", "delivery_address", "shipping_address", "addr"];
const ITEMS: &[&str] = &["items", "products", "cart_items", "lines", "line_items", "positions", "goods"];
const ITEM_NAME: &[&str] = &["name", "title", "product_name", "product", "sku"];
const ITEM_QTY: &[&str] = &["qty", "quantity", "count", "amount_items", "num", "amount"];
const ITEM_PRICE: &[&str] = &["price", "unit_price", "cost", "price_per_unit"];
const TOTAL: &[&str] = &["total", "total_price", "sum", "grand_total", "order_total", "amount", "total_sum"];
/// Address parts, in the order they are written.
const ADDRESS_PARTS: &[(&str, &str)] = &[
    ("country", ""),
    ("region", ""),
    ("city", ""),
    ("town", ""),
    ("street", ""),
    ("house", "house "),
    ("building", "building "),
    ("apartment", "apartment "),
    ("flat", "apartment "),
    ("entrance", "entrance "),
    ("floor", "floor "),
    ("zip", ""),
    ("postcode", ""),
    ("postal_code", ""),
];
/// Contexts every SDK sends that never hold a cart.
const STANDARD_CONTEXTS: &[&str] =
    &["trace", "response", "browser", "os", "device", "runtime", "app", "culture", "cloud_resource"];

/// Reads a Sentry event.
pub fn from_event(ev: &Value, paths: &FieldPaths) -> Extracted {
    let mut roots: Vec<Value> = Vec::new();
    if let Some(extra) = ev.get("extra") {
        // The cart first: it is what the shop meant to send.
        if let Some(cart) = extra.get("cart") {
            roots.push(cart.clone());
        }
        roots.push(extra.clone());
    }
    if let Some(Value::Object(ctx)) = ev.get("contexts") {
        let own: serde_json::Map<String, Value> = ctx
            .iter()
            .filter(|(k, _)| !STANDARD_CONTEXTS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        roots.push(Value::Object(own));
    }
    if let Some(data) = ev.pointer("/request/data") {
        roots.push(json_text(data));
    }
    let mut out = Extracted::default();
    configured(ev, paths, &mut out);
    for root in &roots {
        out.merge(heuristic(root));
    }
    out.truncated = roots.iter().any(truncated);
    out
}

/// A request body sent as JSON text is read as JSON.
fn json_text(v: &Value) -> Value {
    match v {
        Value::String(s) => serde_json::from_str(s).unwrap_or_else(|_| v.clone()),
        _ => v.clone(),
    }
}

fn configured(ev: &Value, paths: &FieldPaths, out: &mut Extracted) {
    let first = |ps: &[String]| ps.iter().find_map(|p| lookup(ev, p).filter(|v| !v.is_null()));
    out.customer.name = first(&paths.name).and_then(text);
    out.customer.phone = first(&paths.phone).and_then(text);
    out.customer.email = first(&paths.email).and_then(text);
    out.address = first(&paths.address).and_then(address);
    let items = first(&paths.items).and_then(|v| v.as_array().cloned());
    let total = first(&paths.total).and_then(number);
    if items.is_some() || total.is_some() {
        let items = items
            .unwrap_or_default()
            .iter()
            .map(|it| {
                let pick = |ps: &[String], keys: &[&str]| {
                    if ps.is_empty() { key_of(it, keys) } else { ps.iter().find_map(|p| lookup(it, p)) }
                };
                CartItem {
                    name: pick(&paths.item_name, ITEM_NAME).and_then(text),
                    quantity: pick(&paths.item_quantity, ITEM_QTY).and_then(number),
                    price: pick(&paths.item_price, ITEM_PRICE).and_then(number),
                }
            })
            .collect();
        out.cart = Some(with_total(Cart { items, total }));
    }
}

/// `a.b[0].c`, with an optional leading `$.`.
pub fn lookup<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    let path = path.trim();
    let path = path.strip_prefix("$.").or_else(|| path.strip_prefix('$')).unwrap_or(path);
    let mut cur = root;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            cur = cur.get(key)?;
        }
        while let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            cur = cur.get(r[..end].trim().parse::<usize>().ok()?)?;
            rest = &r[end + 1..];
        }
    }
    Some(cur)
}

/// Finds the customer, address and cart anywhere in `root`.
pub fn heuristic(root: &Value) -> Extracted {
    let mut out = Extracted::default();
    // The contact: an object with a real phone number or email address, one
    // under a key like `contact` or `customer` first; never one under a key
    // like `pickup_point` or `errors` (a shop's phone, a validation message).
    if let Some(contact) = find_contact(root) {
        out.customer.phone = key_of(contact, PHONE).and_then(text);
        out.customer.email = key_of(contact, EMAIL).and_then(text).filter(|e| e.contains('@'));
        out.customer.name = key_of(contact, NAME).and_then(text).or_else(|| {
            let first = key_of(contact, FIRST_NAME).and_then(text);
            let last = key_of(contact, LAST_NAME).and_then(text);
            match (first, last) {
                (Some(f), Some(l)) => Some(format!("{f} {l}")),
                (f, l) => f.or(l),
            }
        });
    }
    out.address = ADDRESS.iter().find_map(|k| find_key(root, &[k], &[]).and_then(address));
    if let Some(holder) = find_object(root, &|o| key_of(o, ITEMS).is_some_and(items_like)) {
        let items = key_of(holder, ITEMS).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        let items = items
            .iter()
            .map(|it| CartItem {
                name: key_of(it, ITEM_NAME).and_then(|v| match v {
                    Value::Object(_) => key_of(v, ITEM_NAME).and_then(text),
                    v => text(v),
                }),
                quantity: key_of(it, ITEM_QTY).and_then(number),
                price: key_of(it, ITEM_PRICE).and_then(number),
            })
            .collect();
        let total = key_of(holder, TOTAL).and_then(number);
        out.cart = Some(with_total(Cart { items, total }));
    } else if let Some(total) = find_key(root, TOTAL, ITEMS).and_then(number) {
        out.cart = Some(Cart { items: Vec::new(), total: Some(total) });
    }
    out
}

fn with_total(mut cart: Cart) -> Cart {
    if cart.total.is_none() && !cart.items.is_empty() {
        let lines: Option<f64> = cart.items.iter().map(|i| Some(i.quantity.unwrap_or(1.0) * i.price?)).sum();
        cart.total = lines.filter(|t| t.is_finite());
    }
    cart
}

fn items_like(v: &Value) -> bool {
    v.as_array().is_some_and(|a| !a.is_empty() && a.iter().all(|i| i.is_object() && key_of(i, ITEM_NAME).is_some()))
}

/// The value of the first of `keys` (in the order given, ignoring case and `-`/`_`) in an object.
fn key_of<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a Value> {
    let o = v.as_object()?;
    let norm = |s: &str| s.to_ascii_lowercase().replace('-', "_");
    keys.iter().find_map(|k| o.iter().find(|(name, v)| norm(name) == norm(k) && !v.is_null()).map(|(_, v)| v))
}

/// Depth first, an object before what it holds.
fn find_object<'a>(v: &'a Value, want: &dyn Fn(&Value) -> bool) -> Option<&'a Value> {
    if v.is_object() && want(v) {
        return Some(v);
    }
    match v {
        Value::Object(o) => o.values().find_map(|c| find_object(c, want)),
        Value::Array(a) => a.iter().find_map(|c| find_object(c, want)),
        _ => None,
    }
}

/// The first of `keys` anywhere in `v`, not looking inside the `skip` keys.
fn find_key<'a>(v: &'a Value, keys: &[&str], skip: &[&str]) -> Option<&'a Value> {
    if let Some(found) = key_of(v, keys) {
        return Some(found);
    }
    match v {
        Value::Object(o) => o.iter().filter(|(k, _)| !named(k, skip)).find_map(|(_, c)| find_key(c, keys, skip)),
        Value::Array(a) => a.iter().find_map(|c| find_key(c, keys, skip)),
        _ => None,
    }
}

/// Whether a key is one of `names` (ignoring case and `-`/`_`).
fn named(key: &str, names: &[&str]) -> bool {
    let norm = |s: &str| s.to_ascii_lowercase().replace('-', "_");
    names.iter().any(|n| norm(n) == norm(key))
}

/// Keys whose objects hold the customer's contact, and keys whose never do.
const CONTACT_KEYS: &[&str] =
    &["contact", "contacts", "customer", "buyer", "recipient", "client", "user", "person", "contact_info"];
const NOT_CONTACT_KEYS: &[&str] = &[
    "pickup_point",
    "pickup",
    "store",
    "shop",
    "seller",
    "warehouse",
    "merchant",
    "courier",
    "errors",
    "error",
    "consents",
    "consent",
    "subscriptions",
    "notifications",
    "manager",
];

fn real_contact(o: &Value) -> bool {
    let phone = key_of(o, PHONE).and_then(text).is_some_and(|p| p.chars().filter(char::is_ascii_digit).count() >= 7);
    let email = key_of(o, EMAIL).and_then(text).is_some_and(|e| e.contains('@'));
    phone || email
}

/// The customer's contact object (see `heuristic`).
fn find_contact(root: &Value) -> Option<&Value> {
    fn walk<'a>(v: &'a Value, key: &str, first: &mut Option<&'a Value>, preferred: &mut Option<&'a Value>) {
        if preferred.is_some() || named(key, NOT_CONTACT_KEYS) {
            return;
        }
        if v.is_object() && real_contact(v) {
            if named(key, CONTACT_KEYS) {
                *preferred = Some(v);
                return;
            }
            first.get_or_insert(v);
        }
        match v {
            Value::Object(o) => o.iter().for_each(|(k, c)| walk(c, k, first, preferred)),
            Value::Array(a) => a.iter().for_each(|c| walk(c, key, first, preferred)),
            _ => {}
        }
    }
    let (mut first, mut preferred) = (None, None);
    walk(root, "", &mut first, &mut preferred);
    preferred.or(first)
}

fn address(v: &Value) -> Option<String> {
    match v {
        // "courier" is a way of delivery, not an address: one has a number or a few words.
        Value::String(s) => Some(s.trim().to_owned())
            .filter(|s| s.chars().any(|c| c.is_ascii_digit()) || (s.chars().count() >= 12 && s.contains(' '))),
        Value::Object(_) => {
            if let Some(s) = key_of(v, &["address", "full", "full_address", "line"]).and_then(text) {
                return Some(s);
            }
            let parts: Vec<String> = ADDRESS_PARTS
                .iter()
                .filter_map(|(k, label)| key_of(v, &[k]).and_then(text).map(|t| format!("{label}{t}")))
                .collect();
            (!parts.is_empty()).then(|| parts.join(", "))
        }
        _ => None,
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_owned()).filter(|s| !s.is_empty() && !is_cut(s)),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => {
            let s = s.trim().replace([' ', '\u{a0}'], "");
            // "1,290" is a thousand; "489,50" is a decimal comma.
            let thousands = !s.contains('.') && s.rsplit_once(',').is_some_and(|(_, f)| f.len() == 3);
            if thousands { s.replace(',', "") } else { s.replace(',', ".") }.parse().ok()
        }
        _ => None,
    }
    .filter(|f: &f64| f.is_finite())
}

/// What the browser SDK writes in place of an object nested too deep.
fn is_cut(s: &str) -> bool {
    matches!(s, "[Object]" | "[Array]")
}

fn truncated(v: &Value) -> bool {
    match v {
        Value::String(s) => is_cut(s),
        Value::Object(o) => o.values().any(truncated),
        Value::Array(a) => a.iter().any(truncated),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn browser_event() -> Value {
        let body =
            std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/sentry-browser-order-400.envelope")).unwrap();
        serde_json::from_slice(body.split(|&b| b == b'\n').nth(2).unwrap()).unwrap()
    }

    #[test]
    fn the_basement_floor_order_of_the_reference_envelope() {
        let x = from_event(&browser_event(), &FieldPaths::default());
        assert_eq!(x.customer.name.as_deref(), Some("Ирина Соколова"));
        assert_eq!(x.customer.phone.as_deref(), Some("+7 917 555-12-34"));
        assert_eq!(x.customer.email.as_deref(), Some("irina.sokolova@example.ru"));
        assert_eq!(x.address.as_deref(), Some("Волгоград, ул. Мира, house 17, apartment 4, floor -1"));
        let cart = x.cart.unwrap();
        assert_eq!(cart.total, Some(8448.0));
        assert_eq!(cart.items.len(), 2);
        assert_eq!(cart.items[0].name.as_deref(), Some("Штукатурка гипсовая Knauf Ротбанд 30 кг"));
        assert_eq!(cart.items[0].quantity, Some(12.0));
        assert_eq!(cart.items[1].price, Some(1290.0));
        assert!(!x.truncated);
    }

    #[test]
    fn the_backend_events_request_body() {
        let v: Value = serde_json::from_str(
            &std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/testdata/sentry-python-order-500.event.json"
            ))
            .unwrap(),
        )
        .unwrap();
        let x = from_event(&v, &FieldPaths::default());
        assert_eq!(x.customer.name.as_deref(), Some("Павел Ким"));
        assert_eq!(x.customer.phone.as_deref(), Some("+7 905 333-44-55"));
        assert_eq!(x.address.as_deref(), Some("Волжский, пр. Ленина, house 5, floor 3"));
        let cart = x.cart.unwrap();
        assert_eq!((cart.items.len(), cart.total), (1, Some(9400.0)));
    }

    #[test]
    fn configured_paths_win_and_a_cut_cart_is_noticed() {
        let ev = json!({"extra": {
            "checkout": {"buyer": {"tel": "8 (903) 111-22-33", "fio": "Пётр"}, "basket": [{"t": "Цемент", "n": "2", "p": 350}]},
            "state": {"cart": "[Object]"}
        }});
        let paths = FieldPaths {
            name: vec!["$.extra.checkout.buyer.fio".into()],
            items: vec!["extra.checkout.basket".into()],
            item_name: vec!["t".into()],
            item_quantity: vec!["n".into()],
            item_price: vec!["p".into()],
            ..FieldPaths::default()
        };
        let x = from_event(&ev, &paths);
        assert_eq!(x.customer.name.as_deref(), Some("Пётр"));
        assert_eq!(x.customer.phone.as_deref(), Some("8 (903) 111-22-33"), "heuristics fill what paths do not name");
        let cart = x.cart.unwrap();
        assert_eq!(cart.items[0].name.as_deref(), Some("Цемент"));
        assert_eq!(cart.total, Some(700.0), "computed from the lines");
        assert!(x.truncated);
    }

    #[test]
    fn the_customer_is_not_a_pickup_point_nor_a_consent() {
        let v = json!({"order": {
            "consents": {"email": true, "sms": false},
            "pickup_point": {"name": "ПВЗ СДЭК на Мира, 17", "phone": "+7 800 250-04-05"},
            "recipient": {"name": "Ирина", "phone": "+7 917 555-12-34"},
            "delivery": "courier",
            "delivery_address": "Волгоград, ул. Мира 17",
            "cart": {"items": [{"id": 17, "amount": 2}]},
            "payment": {"total": "8,448"}
        }});
        let x = heuristic(&v);
        assert_eq!(x.customer.name.as_deref(), Some("Ирина"));
        assert_eq!(x.customer.phone.as_deref(), Some("+7 917 555-12-34"));
        assert_eq!(x.address.as_deref(), Some("Волгоград, ул. Мира 17"));
        assert_eq!(x.cart.unwrap().total, Some(8448.0), "not an item's amount; 8,448 is eight thousand");
        let cement = heuristic(&json!({"items": [{"name": "Цемент", "amount": 10, "price": "350,50"}]}));
        assert_eq!(cement.cart.unwrap().total, Some(3505.0));
    }

    #[test]
    fn nothing_found_is_nothing() {
        let x = from_event(&json!({"extra": {"a": 1}, "request": {"data": "not json"}}), &FieldPaths::default());
        assert_eq!(x, Extracted::default());
        assert!(!x.has_contact());
    }

    #[test]
    fn paths() {
        let v = json!({"a": {"b": [{"c": 1}, {"c": 2}]}});
        assert_eq!(lookup(&v, "$.a.b[1].c"), Some(&json!(2)));
        assert_eq!(lookup(&v, "a.b[0]"), Some(&json!({"c": 1})));
        assert_eq!(lookup(&v, "a.x"), None);
        assert_eq!(lookup(&v, "a.b[9]"), None);
        assert_eq!(lookup(&v, "a.b[x]"), None);
    }

    /// Any JSON value, nested a few levels, with keys the heuristics look for.
    fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let key = prop_oneof![
            Just("name".to_owned()),
            Just("phone".to_owned()),
            Just("email".to_owned()),
            Just("items".to_owned()),
            Just("total".to_owned()),
            Just("delivery".to_owned()),
            Just("qty".to_owned()),
            Just("price".to_owned()),
            "[a-zа-я_]{0,8}",
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            any::<i64>().prop_map(Value::from),
            "\\PC{0,12}".prop_map(Value::from),
            Just(Value::from("[Object]")),
        ];
        leaf.prop_recursive(4, 64, 6, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::vec((key.clone(), inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn any_json_and_any_path_are_read_without_a_panic(v in json_value(), path in "\\PC{0,20}") {
            let ev = serde_json::json!({"extra": v.clone(), "request": {"data": v.clone()}, "contexts": {"shop": v}});
            let paths = FieldPaths { name: vec![path.clone()], items: vec![path.clone()], item_price: vec![path.clone()], ..FieldPaths::default() };
            let x = from_event(&ev, &paths);
            if let Some(c) = x.cart {
                proptest::prop_assert!(c.total.is_none_or(f64::is_finite));
            }
            let _ = lookup(&ev, &path);
        }
    }
}
