//! The log viewer, saved searches, error groups and settings pages driven
//! in-process through `web::app`: each renders for a developer and is the 403
//! page for a manager; unknown ids are 404 pages; a query that does not parse
//! and every form field that is wrong get a message next to the field; forms
//! without the CSRF token are refused; the live tail streams new lines; and
//! no secret of the configuration reaches the settings page.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use orderwatch::alerts::SearchDef;
use orderwatch::config::Config;
use orderwatch::db::Origin;
use tower::ServiceExt;

mod pages;

use pages::*;

fn get(path: &str, cookie: &str) -> Request<Body> {
    pages::get(path, Some(cookie))
}

fn post_form(path: &str, cookie: &str, form: &[(&str, &str)]) -> Request<Body> {
    pages::post_form(path, Some(cookie), form)
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Stores log lines through the HTTP ingest; their ids, in order.
async fn post_logs(h: &Harness, lines: &[String]) {
    let r = send(
        h,
        Request::post("/api/v1/logs")
            .header("authorization", "Bearer admin-token")
            .body(Body::from(lines.join("\n") + "\n"))
            .unwrap(),
    )
    .await;
    assert!(r.status.is_success(), "{}: {}", r.status, r.body);
}

async fn search_api(h: &Harness, q: &str) -> Vec<serde_json::Value> {
    let r = send(
        h,
        Request::get(format!("/api/v1/events/search.json?q={}", enc(q)))
            .header("authorization", "Bearer admin-token")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    serde_json::from_str::<serde_json::Value>(&r.body).unwrap()["events"].as_array().unwrap().clone()
}

/// Undoes the templates' HTML escaping (`&#38;`, `&#34;`, …).
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find("&#") {
        out.push_str(&rest[..at]);
        let end = rest[at..].find(';').unwrap() + at;
        let n: u32 = rest[at + 2..end].parse().unwrap();
        out.push(char::from_u32(n).unwrap());
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out.replace("&amp;", "&").replace("&quot;", "\"").replace("&lt;", "<").replace("&gt;", ">")
}

fn line(host: &str, program: &str, msg: &str) -> String {
    format!("<14>Jun 23 17:17:48 {host} {program}: {msg}")
}

#[tokio::test]
async fn search_shows_matching_lines_newest_first_for_developers_only() {
    let h = harness().await;
    let (dev, _) = login(&h, "dev").await;
    let (mgr, _) = login(&h, "mia").await;
    post_logs(
        &h,
        &[
            line("web-1", "website-backend", "needle first <b>bold</b>"),
            line("web-1", "website-backend", "haystack only"),
            line("web-2", "nginx", "needle second"),
        ],
    )
    .await;
    let r = send(&h, get("/search?q=needle", &dev)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let (first, second) = (r.body.find("needle first").unwrap(), r.body.find("needle second").unwrap());
    assert!(second < first, "newest first");
    assert!(!r.body.contains("haystack only"));
    assert!(r.body.contains("&#60;b&#62;bold&#60;/b&#62;"), "messages are escaped");
    assert!(r.body.contains("web-2") && r.body.contains("nginx"), "sender and program");
    assert!(r.body.contains("id=\"live\""), "the newest page offers the live tail");
    assert!(r.body.contains("Europe/Volgograd"), "times say their zone");
    let r = send(&h, get("/search?q=needle", &mgr)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("Вашей роли эта страница недоступна."));
    // The search page without a session: to the login, the query not in `next`.
    let r = send(&h, Request::get("/search?q=needle").body(Body::empty()).unwrap()).await;
    assert_eq!(r.location(), "/login?next=%2Fsearch");
}

#[tokio::test]
async fn a_query_that_does_not_parse_shows_the_message_and_position_next_to_the_field() {
    let h = harness().await;
    let (dev, _) = login(&h, "dev").await;
    let r = send(&h, get(&format!("/search?q={}", enc("status:>=500 (unclosed")), &dev)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("id=\"q-error\""), "{}", r.body);
    assert!(r.body.contains("does not parse at position"), "{}", r.body);
    assert!(r.body.contains("aria-invalid=\"true\""));
    assert!(r.body.contains("value=\"status:&#62;=500 (unclosed\""), "the query stays in the box");
    let r = send(&h, get("/search?q=x&min_time=yesterday-ish", &dev)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("id=\"min_time-error\""), "{}", r.body);
    // Local times in the display zone are understood.
    let r = send(&h, get(&format!("/search?q=x&min_time={}", enc("2026-05-04 12:00")), &dev)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

#[tokio::test]
async fn pages_go_older_and_newer_by_event_id() {
    let h = harness().await;
    let (dev, _) = login(&h, "dev").await;
    let lines: Vec<String> = (0..150).map(|i| line("web-1", "app", &format!("paged line n{i:03}"))).collect();
    post_logs(&h, &lines).await;
    let r = send(&h, get("/search?q=paged", &dev)).await;
    assert_eq!(r.body.matches("paged line n").count(), 100);
    assert!(r.body.contains("n149") && !r.body.contains("n049"));
    let older = r.body.split("id=\"older\"").next().unwrap();
    let href = older.rsplit("href=\"").next().unwrap();
    let href = unescape(&href[..href.find('"').unwrap()]);
    assert!(href.contains("max_id="), "{href}");
    let r = send(&h, get(&href, &dev)).await;
    assert_eq!(r.body.matches("paged line n").count(), 50, "{}", r.body);
    assert!(r.body.contains("n049") && r.body.contains("n000") && !r.body.contains("n050"));
    assert!(!r.body.contains("id=\"older\""), "the beginning");
    assert!(r.body.contains("id=\"newer\""));
    assert!(!r.body.contains("id=\"live\""), "no live tail on an older page");
    let newer = r.body.split("id=\"newer\"").next().unwrap();
    let href = newer.rsplit("href=\"").next().unwrap();
    let href = unescape(&href[..href.find('"').unwrap()]);
    let r = send(&h, get(&href, &dev)).await;
    assert_eq!(r.body.matches("paged line n").count(), 100);
    assert!(r.body.contains("n050") && r.body.contains("n149"));
}

#[tokio::test]
async fn an_event_in_its_context_shows_the_lines_around_it_from_its_sender() {
    let h = harness().await;
    let (dev, _) = login(&h, "dev").await;
    let (mgr, _) = login(&h, "mia").await;
    let mut lines = Vec::new();
    for i in 0..60 {
        lines.push(line("web-1", "app", &format!("before {i:02}")));
        lines.push(line("db-1", "postgres", &format!("other sender {i:02}")));
    }
    lines.push(line("web-1", "app", "THE EVENT"));
    for i in 0..60 {
        lines.push(line("web-1", "app", &format!("after {i:02}")));
    }
    post_logs(&h, &lines).await;
    let id = search_api(&h, "\"THE EVENT\"").await[0]["id"].as_str().unwrap().to_owned();
    for path in [format!("/search?around={id}"), format!("/events/{id}")] {
        let r = send(&h, get(&path, &dev)).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
        assert!(r.body.contains(&format!("id=\"e{id}\" class=\"hit\"")), "{}", r.body);
        assert!(!r.body.contains("other sender"), "only the same sender");
        assert!(r.body.contains("before 59") && r.body.contains("before 10") && !r.body.contains("before 09"));
        assert!(r.body.contains("after 00") && r.body.contains("after 49") && !r.body.contains("after 50"));
        let (b, e, a) =
            (r.body.find("before 59").unwrap(), r.body.find("THE EVENT").unwrap(), r.body.find("after 00").unwrap());
        assert!(b < e && e < a, "in the order they were written");
        assert_eq!(send(&h, get(&path, &mgr)).await.status, StatusCode::FORBIDDEN);
    }
    for path in ["/search?around=12345", "/events/12345", "/events/not-a-number", "/search?around=x"] {
        let r = send(&h, get(path, &dev)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert!(r.body.contains("<html") && r.body.contains("There is no log line"), "{}", r.body);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_live_tail_streams_new_matching_lines() {
    let h = harness().await;
    let (dev, _) = login(&h, "dev").await;
    let (mgr, _) = login(&h, "mia").await;
    post_logs(&h, &[line("web-1", "app", "tail old line")]).await;
    let old = search_api(&h, "tail").await[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(send(&h, get("/search/live?q=tail", &mgr)).await.status, StatusCode::FORBIDDEN);
    assert_eq!(send(&h, get("/search/live?q=(", &dev)).await.status, StatusCode::BAD_REQUEST);
    let resp = h.app.clone().oneshot(get(&format!("/search/live?q=tail&after={old}"), &dev)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/event-stream"));
    let mut body = resp.into_body();
    post_logs(&h, &[line("web-1", "app", "tail new line"), line("web-1", "app", "not matching")]).await;
    let mut got = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !got.contains("tail new line") {
        let frame = tokio::time::timeout_at(deadline, body.frame()).await.expect("a line within 10 s");
        let frame = frame.unwrap().unwrap();
        if let Some(d) = frame.data_ref() {
            got.push_str(&String::from_utf8_lossy(d));
        }
    }
    assert!(got.contains("event: line"), "{got}");
    assert!(!got.contains("tail old line") && !got.contains("not matching"), "{got}");
    let data = got.lines().find(|l| l.starts_with("data: ")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&data[6..]).unwrap();
    assert_eq!(v["sender"], "web-1");
    assert_eq!(v["program"], "app");
    // A reconnect with Last-Event-ID reads back what came after it.
    let mut req = get("/search/live?q=tail", &dev);
    req.headers_mut().insert("last-event-id", old.parse().unwrap());
    let mut body = h.app.clone().oneshot(req).await.unwrap().into_body();
    let frame = tokio::time::timeout(Duration::from_secs(10), body.frame()).await.unwrap().unwrap().unwrap();
    assert!(String::from_utf8_lossy(frame.data_ref().unwrap()).contains("tail new line"));
}

/// The value of the `name="…" value="…"` field on a page, unescaped.
fn field(body: &str, name: &str) -> String {
    let at = body.find(&format!("name=\"{name}\" value=\"")).unwrap_or_else(|| panic!("no {name} in {body}"));
    let rest = &body[at + name.len() + 15..];
    unescape(&rest[..rest.find('"').unwrap()])
}

#[tokio::test]
async fn saved_searches_are_created_edited_and_deleted_through_forms_with_messages_next_to_fields() {
    let h = harness().await;
    let (dev, csrf) = login(&h, "dev").await;
    let (mgr, _) = login(&h, "mia").await;
    assert_eq!(send(&h, get("/searches", &mgr)).await.status, StatusCode::FORBIDDEN);
    let r = send(&h, get("/searches?query=status%3A500", &dev)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("value=\"status:500\""), "prefilled from the search page");

    let base = |name: &'static str, query: &'static str| -> Vec<(&'static str, String)> {
        vec![("name", name.into()), ("query", query.into())]
    };
    let post = |path: &str, pairs: &[(&str, String)], csrf: &str| {
        let mut form: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        if !csrf.is_empty() {
            form.push(("csrf", csrf));
        }
        post_form(path, &dev, &form)
    };
    // No CSRF token: refused, nothing saved.
    let r = send(&h, post("/searches", &base("orders", "POST /api/v1/orders/"), "")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(h.db.searches().await.unwrap().is_empty());
    // A bad query: the parser's message next to the query field.
    let r = send(&h, post("/searches", &base("orders", "status:>=500 (unclosed"), &csrf)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("id=\"query-error\"") && r.body.contains("position"), "{}", r.body);
    // A bad alert: the check's message next to the alert's field.
    let mut bad = base("orders", "POST /api/v1/orders/");
    bad.extend([("a0_kind", "periodic".into()), ("a0_interval", "5m".into()), ("a0_dest", "email".into())]);
    bad.push(("a0_to", "head@shop.example".into()));
    let r = send(&h, post("/searches", &bad, &csrf)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body.contains("id=\"a0_interval-error\"") && unescape(&r.body).contains("\"5m\" is not a period"),
        "{}",
        r.body
    );
    let mut bad = base("orders", "x");
    bad.extend([("a0_kind", "immediate".into()), ("a0_dest", "email".into()), ("a0_to", "nobody".into())]);
    let r = send(&h, post("/searches", &bad, &csrf)).await;
    assert!(r.body.contains("id=\"a0_destination-error\"") && r.body.contains("not an email address"), "{}", r.body);
    let r = send(&h, post("/searches", &base("", "x"), &csrf)).await;
    assert!(r.body.contains("id=\"name-error\""), "{}", r.body);

    // A good one, with a signed webhook and an alert in another zone.
    let mut good = base("non-ok orders", "POST /api/v1/orders/ -\"HTTP/1.1 201\"");
    good.extend([
        ("a0_kind", "periodic".into()),
        ("a0_interval", "1h".into()),
        ("a0_threshold", "2".into()),
        ("a0_time_zone", "Asia/Tokyo".into()),
        ("a0_dest", "webhook_json".into()),
        ("a0_url", "https://hooks.shop.example/hook/SECRETPATHSECRETPATH".into()),
        ("a0_secret", "SIGNINGSECRET-0123456789".into()),
        ("a1_kind", "".into()),
    ]);
    let r = send(&h, post("/searches", &good, &csrf)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let id = h.db.searches().await.unwrap()[0].id;
    assert_eq!(r.location(), format!("/searches/{id}?saved=1"));
    for path in [format!("/searches/{id}?saved=1"), format!("/searches/{id}/edit")] {
        let r = send(&h, get(&path, &dev)).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.body.contains("non-ok orders") && r.body.contains("Asia/Tokyo"), "{}", r.body);
        assert!(!r.body.contains("SECRETPATH") && !r.body.contains("SIGNINGSECRET"), "secrets masked: {}", r.body);
    }
    // The same name again: said next to the name.
    let r = send(&h, post("/searches", &good, &csrf)).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.body.contains("id=\"name-error\"") && r.body.contains("already exists"), "{}", r.body);

    // Edited as shown (secrets masked): the stored secrets are kept.
    let page = send(&h, get(&format!("/searches/{id}"), &dev)).await.body;
    let mut edit = vec![("name", "non-ok orders (edited)".to_owned()), ("query", field(&page, "query"))];
    for f in ["kind", "interval", "threshold", "time_zone", "dest", "url", "secret"] {
        let v = if f == "kind" || f == "dest" {
            let name = format!("a0_{f}");
            let sel = &page[page.find(&format!("name=\"{name}\"")).unwrap()..];
            let at = sel.find("selected").unwrap();
            let opt = &sel[..at];
            let v = opt.rsplit("value=\"").next().unwrap();
            v[..v.find('"').unwrap()].to_owned()
        } else {
            field(&page, &format!("a0_{f}"))
        };
        edit.push((Box::leak(format!("a0_{f}").into_boxed_str()), v));
    }
    let r = send(&h, post(&format!("/searches/{id}"), &edit, &csrf)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let stored = h.db.search_by_id(id).await.unwrap().unwrap();
    assert_eq!(stored.name, "non-ok orders (edited)");
    let json = serde_json::to_string(&stored.alerts[0].definition.destination).unwrap();
    assert!(json.contains("SIGNINGSECRET-0123456789") && json.contains("SECRETPATHSECRETPATH"), "{json}");

    // Unknown ids are 404 pages; deleting needs the token.
    for path in ["/searches/999", "/searches/abc", "/searches/999/edit"] {
        let r = send(&h, get(path, &dev)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert!(r.body.contains("There is no saved search"));
    }
    let r = send(&h, post_form(&format!("/searches/{id}/delete"), &dev, &[])).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(&h, post_form(&format!("/searches/{id}/delete"), &dev, &[("csrf", &csrf)])).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(h.db.search_by_id(id).await.unwrap().is_none());
}

#[tokio::test]
async fn config_searches_are_read_only() {
    let h = harness().await;
    let (dev, csrf) = login(&h, "dev").await;
    let def: SearchDef = serde_json::from_value(serde_json::json!({
        "name": "from the file", "query": "x",
        "alerts": [{"kind": "immediate", "time_zone": "Europe/Volgograd",
                    "destination": {"telegram": {"bot_token": "123456:BOTSECRET", "chat_id": -100}}}]
    }))
    .unwrap();
    let id = h.db.create_search(&def, Origin::Config, 1, 0).await.unwrap();
    let r = send(&h, get(&format!("/searches/{id}"), &dev)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("id=\"read-only\"") && !r.body.contains("id=\"search-def\""), "{}", r.body);
    assert!(r.body.contains("123456:***") && !r.body.contains("BOTSECRET"));
    let r =
        send(&h, post_form(&format!("/searches/{id}"), &dev, &[("csrf", &csrf), ("name", "n"), ("query", "y")])).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("config file"));
    let r = send(&h, post_form(&format!("/searches/{id}/delete"), &dev, &[("csrf", &csrf)])).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(h.db.search_by_id(id).await.unwrap().is_some());
}

async fn wait_group(h: &Harness) -> i64 {
    for _ in 0..200 {
        if let Some(g) = h.db.error_groups(10).await.unwrap().first() {
            return g.id;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the event was not processed into a group");
}

#[tokio::test(flavor = "multi_thread")]
async fn error_groups_list_detail_and_status() {
    let h = harness().await;
    let (dev, csrf) = login(&h, "dev").await;
    let (mgr, _) = login(&h, "mia").await;
    let event =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/sentry-python-order-500.event.json")).unwrap();
    let auth = format!("Sentry sentry_version=7, sentry_key={SENTRY_KEY}");
    let r =
        send(&h, Request::post("/api/1/store/").header("x-sentry-auth", auth).body(Body::from(event)).unwrap()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let id = wait_group(&h).await;

    let r = send(&h, get("/error-groups", &dev)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("IntegrityError") && r.body.contains(&format!("href=\"/error-groups/{id}\"")));
    assert!(r.body.contains("badge unresolved"));
    let r = send(&h, get("/error-groups?status=resolved", &dev)).await;
    assert!(r.body.contains("id=\"no-groups\""));
    assert_eq!(send(&h, get("/error-groups?status=bogus", &dev)).await.status, StatusCode::BAD_REQUEST);

    let r = send(&h, get(&format!("/error-groups/{id}"), &dev)).await;
    assert_eq!(r.status, StatusCode::OK);
    for want in [
        "IntegrityError",
        "violates not-null constraint",
        "class=\"in-app\"",
        "orders/services.py:214",
        "create_order",
        "order.save()",
        "id=\"event-1a2b3c4d5e6f40718293a4b5c6d7e8f9\"",
        "X-Request-Id",
        "backend@2018.06.22",
    ] {
        assert!(r.body.contains(want), "{want} in {}", r.body);
    }
    assert_eq!(send(&h, get(&format!("/error-groups/{id}"), &mgr)).await.status, StatusCode::FORBIDDEN);
    assert_eq!(send(&h, get("/error-groups", &mgr)).await.status, StatusCode::FORBIDDEN);
    for path in ["/error-groups/999", "/error-groups/x"] {
        let r = send(&h, get(path, &dev)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert!(r.body.contains("There is no error group"));
    }
    // Resolve: needs the token; then the same status the API reads.
    let path = format!("/error-groups/{id}/status");
    assert_eq!(send(&h, post_form(&path, &dev, &[("status", "resolved")])).await.status, StatusCode::FORBIDDEN);
    let r = send(&h, post_form(&path, &dev, &[("status", "resolved"), ("csrf", &csrf)])).await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, format!("/error-groups/{id}").as_str()));
    assert_eq!(h.db.error_group(id).await.unwrap().unwrap().status.as_str(), "resolved");
    let r = send(&h, get(&format!("/error-groups/{id}"), &dev)).await;
    assert!(r.body.contains("badge resolved") && r.body.contains("id=\"set-unresolved\""));
    let r = send(&h, post_form(&path, &dev, &[("status", "bogus"), ("csrf", &csrf)])).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = send(&h, post_form("/error-groups/999/status", &dev, &[("status", "ignored"), ("csrf", &csrf)])).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn settings_show_the_dsn_and_endpoints_and_never_a_secret() {
    let toml = r#"
[http]
public_url = "https://ow.shop.example"
ingest_tokens = ["INGESTTOKEN-abcdef0123456789"]
[syslog]
udp = "0.0.0.0:5514"
tcp = "127.0.0.1:5514"
[notify]
smtp_url = "smtp://alerts%40shop.example:SMTPPASSWORD@smtp.shop.example"
[[sentry.alerts]]
destination = { webhook_json = "https://hooks.shop.example/hook/WEBHOOKPATHSECRET", secret = "SIGNINGSECRET-0123456789" }
[[sentry.alerts]]
destination = { telegram = { bot_token = "123456:BOTTOKENSECRET", chat_id = -100 } }
[[orders.alerts]]
destination = { slack = "https://hooks.slack.com/services/T000/B000/SLACKSECRET" }
[[searches]]
name = "from the file"
query = "x"
[[searches.alerts]]
kind = "immediate"
destination = { webhook = "https://hooks.shop.example/papertrail/PAPERTRAILSECRET" }
"#;
    let settings = toml::from_str::<Config>(toml).unwrap().validate().unwrap();
    let h = harness_with(settings).await;
    let (dev, _) = login(&h, "dev").await;
    let (admin, _) = login(&h, "ada").await;
    let (mgr, _) = login(&h, "mia").await;
    assert_eq!(send(&h, get("/settings", &mgr)).await.status, StatusCode::FORBIDDEN);
    assert_eq!(send(&h, get("/settings", &admin)).await.status, StatusCode::OK);
    let r = send(&h, get("/settings", &dev)).await;
    assert_eq!(r.status, StatusCode::OK);
    for secret in [
        "SMTPPASSWORD",
        "WEBHOOKPATHSECRET",
        "SIGNINGSECRET",
        "BOTTOKENSECRET",
        "SLACKSECRET",
        "PAPERTRAILSECRET",
        "INGESTTOKEN",
    ] {
        assert!(!r.body.contains(secret), "{secret} is on the settings page");
    }
    for want in [
        &format!("http://{SENTRY_KEY}@127.0.0.1:8080/1") as &str,
        "ow.shop.example:5514",
        "127.0.0.1:5514",
        "plugins = python3,rsyslog",
        "rsyslog-packet-size = 8192",
        "OrderwatchCheckout.init",
        "smtp://alerts%40shop.example:***@smtp.shop.example",
        "123456:***",
        "hooks.slack.com/services/…",
        "from the file",
    ] {
        assert!(r.body.contains(want), "{want} is not on the page: {}", r.body);
    }
}
