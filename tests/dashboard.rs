//! The dashboard's pages and sessions driven in-process through `web::app`:
//! login (success, failure, rate limit), CSRF, session expiry, the redirect
//! to /login, the API's 401 without a token or a session, and what each role
//! may open.


use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use orderwatch::web::session::{self};

mod pages;

use pages::*;

#[tokio::test]
async fn a_page_without_a_session_redirects_to_login_with_the_path_only() {
    let h = harness().await;
    let r = send(&h, get("/search?q=phone%3A%2B79991234567", None)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/login?next=%2Fsearch");
    // A form posted after the session ended cannot be replayed as a GET: the default page.
    let r = send(&h, post_form("/lost-orders/1/status", None, &[("status", "test")])).await;
    assert_eq!(r.location(), "/login?next=%2Flost-orders");
    let r = send(&h, get("/login?next=%2Fsearch", None)).await;
    assert!(r.body.contains("name=\"password\""));
}

#[tokio::test]
async fn the_api_answers_401_json_without_a_token_or_a_session() {
    let h = harness().await;
    let r = send(&h, get("/api/v1/lost-orders", None)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert!(v["error"].as_str().unwrap().contains("log in"), "{v}");
    // An ended or made-up session is 401 too.
    let r = send(&h, get("/api/v1/lost-orders", Some("ow_session=0123"))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // The token still works.
    let r = send(
        &h,
        Request::get("/api/v1/lost-orders").header("authorization", "Bearer admin-token").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn login_succeeds_and_fails_with_a_message_next_to_the_field() {
    let h = harness().await;
    let (cookie, _) = login(&h, "dev").await;
    let r = send(&h, get("/search", Some(&cookie))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("dev"));

    let r = try_login(&h, "dev", "wrong password!", "192.0.2.2").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.contains("id=\"password-error\""), "{}", r.body);
    assert!(r.body.contains("Wrong name or password."));
    assert!(r.cookies().iter().all(|c| !c.starts_with("ow_session=")));
    // An unknown name answers the same.
    let r = try_login(&h, "nobody", "wrong password!", "192.0.2.2").await;
    assert!(r.body.contains("Wrong name or password."));
    // Empty fields: a message next to each.
    let r = try_login(&h, "", "", "192.0.2.2").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("id=\"name-error\"") && r.body.contains("id=\"password-error\""));
}

#[tokio::test]
async fn logins_are_rate_limited_per_name_and_per_address() {
    let h = harness().await;
    for _ in 0..5 {
        let r = try_login(&h, "ada", "wrong password!", "198.51.100.1").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    // Even the right password, from that address: the name is locked there for a while.
    let r = try_login(&h, "ada", PASSWORD, "198.51.100.1").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.body.contains("wait 15 minutes"), "{}", r.body);
    // A stranger's failures do not lock the user out from her own address.
    try_login(&h, "ada", PASSWORD, "198.51.100.99").await;
    assert_ne!(try_login(&h, "ada", PASSWORD, "198.51.100.98").await.status, StatusCode::TOO_MANY_REQUESTS);
    // Many guesses at once: each is counted before it is checked, so no more than the limit get through.
    let tries = (0..12).map(|_| try_login(&h, "mia", "wrong password!", "192.0.2.50"));
    let answers = futures_util::future::join_all(tries).await;
    let checked = answers.iter().filter(|r| r.status == StatusCode::UNAUTHORIZED).count();
    assert!(checked <= 5, "{checked} guesses were checked");
    // Another name from a fresh address still logs in.
    login(&h, "dev").await;
    // One address trying many names is stopped too.
    for name in ["a1", "a2", "a3", "a4", "a5"] {
        try_login(&h, name, "wrong password!", "203.0.113.7").await;
    }
    let r = try_login(&h, "mia", PASSWORD, "203.0.113.7").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn the_login_form_needs_its_own_csrf_token() {
    let h = harness().await;
    let r = send(&h, post_form("/login", None, &[("name", "ada"), ("password", PASSWORD), ("token", "x")])).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.cookies().iter().all(|c| !c.starts_with("ow_session=")));
}

#[tokio::test]
async fn posts_without_the_csrf_token_are_refused() {
    let h = harness().await;
    let (cookie, csrf) = login(&h, "ada").await;
    let r = send(&h, post_form("/account/lang", Some(&cookie), &[("lang", "ru"), ("back", "/users")])).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r =
        send(&h, post_form("/account/lang", Some(&cookie), &[("lang", "ru"), ("csrf", "0000"), ("back", "/users")]))
            .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // With it: the language changes, and the pages speak Russian.
    let r = send(&h, post_form("/account/lang", Some(&cookie), &[("lang", "ru"), ("csrf", &csrf), ("back", "/users")]))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/users");
    let r = send(&h, get("/users", Some(&cookie))).await;
    assert!(r.body.contains("Пользователи"), "{}", r.body);
    // The API: a write through the session needs X-CSRF-Token.
    let put = |token: Option<&str>| {
        let mut b = Request::put("/api/v1/error-groups/1/status")
            .header(header::COOKIE, &cookie)
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(t) = token {
            b = b.header("x-csrf-token", t);
        }
        b.body(Body::from(r#"{"status":"resolved"}"#)).unwrap()
    };
    let r = send(&h, put(None)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("X-CSRF-Token"), "{}", r.body);
    let r = send(&h, put(Some(&csrf))).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "past the CSRF check: {}", r.body);
    // Logout needs it too, and ends the session.
    let r = send(&h, post_form("/logout", Some(&cookie), &[])).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(&h, post_form("/logout", Some(&cookie), &[("csrf", &csrf)])).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.cookies().iter().any(|c| c.starts_with("ow_session=;") && c.contains("Max-Age=0")));
    let r = send(&h, get("/users", Some(&cookie))).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn an_idle_session_ends() {
    let h = harness().await;
    let (cookie, _) = login(&h, "dev").await;
    let token = cookie.trim_start_matches("ow_session=");
    let hash = session::sha256_hex(token);
    let long_ago = orderwatch::event::now_micros() - session::IDLE_US - 1_000_000;
    h.db.touch_session(&hash, long_ago).await.unwrap();
    let r = send(&h, get("/search", Some(&cookie))).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.location().starts_with("/login"));
    // …and is gone, not only refused.
    assert!(h.db.session(&hash).await.unwrap().is_none());
}

#[tokio::test]
async fn each_role_sees_what_it_may() {
    let h = harness().await;
    let (admin, _) = login(&h, "ada").await;
    let (dev, _) = login(&h, "dev").await;
    let (mgr, _) = login(&h, "mia").await;
    let status = |r: Resp| r.status;
    // Pages.
    assert_eq!(status(send(&h, get("/users", Some(&admin))).await), StatusCode::OK);
    assert_eq!(status(send(&h, get("/users", Some(&dev))).await), StatusCode::FORBIDDEN);
    assert_eq!(status(send(&h, get("/search", Some(&dev))).await), StatusCode::OK);
    let r = send(&h, get("/search", Some(&mgr))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("Вашей роли эта страница недоступна."), "a 403 page in the manager's language");
    // The menu shows only what the role may open.
    let r = send(&h, get("/", Some(&mgr))).await;
    assert_eq!(r.location(), "/rescue");
    // The API through the session.
    for (cookie, path, want) in [
        (&mgr, "/api/v1/lost-orders", StatusCode::OK),
        (&mgr, "/api/v1/rescue-queue", StatusCode::OK),
        (&mgr, "/api/v1/incidents", StatusCode::FORBIDDEN),
        (&mgr, "/api/v1/events/search.json?q=x", StatusCode::FORBIDDEN),
        (&mgr, "/api/v1/notifications", StatusCode::FORBIDDEN),
        (&dev, "/api/v1/incidents", StatusCode::OK),
        (&dev, "/api/v1/events/search.json?q=x", StatusCode::OK),
        (&admin, "/api/v1/notifications", StatusCode::OK),
    ] {
        let r = send(&h, get(path, Some(cookie))).await;
        assert_eq!(r.status, want, "{path}: {}", r.body);
    }
}

#[tokio::test]
async fn unknown_pages_are_404_pages_and_unknown_api_paths_404_json() {
    let h = harness().await;
    let (dev, _) = login(&h, "dev").await;
    let r = send(&h, get("/no-such-page", Some(&dev))).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body.contains("<html") && r.body.contains("There is no such page."));
    let r = send(&h, get("/api/v1/no-such-thing", None)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(serde_json::from_str::<serde_json::Value>(&r.body).unwrap()["error"].is_string());
}

#[tokio::test]
async fn static_files_are_embedded_with_cache_headers() {
    let h = harness().await;
    for (path, ct) in [
        ("/static/app.css", "text/css"),
        ("/static/app.js", "text/javascript"),
        ("/static/vendor/htmx-2.0.11.min.js", "text/javascript"),
        ("/static/orderwatch-checkout.js", "text/javascript"),
    ] {
        let r = send(&h, get(path, None)).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert!(r.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with(ct));
        let etag = r.headers[header::ETAG].to_str().unwrap().to_owned();
        assert!(r.headers[header::CACHE_CONTROL].to_str().unwrap().contains("max-age"));
        let again = Request::get(path).header(header::IF_NONE_MATCH, &etag).body(Body::empty()).unwrap();
        assert_eq!(send(&h, again).await.status, StatusCode::NOT_MODIFIED);
    }
    assert_eq!(send(&h, get("/static/nope.js", None)).await.status, StatusCode::NOT_FOUND);
}

/// A lost order written as the joiner would: the customer and the cart in its summary.
async fn lost_order(h: &Harness) -> i64 {
    let summary = serde_json::json!({
        "customer": {"name": "Иван Петров", "phone": "+79991234567", "email": null},
        "address": "Волгоград, ул. Мира, 1",
        "cart": {"items": [{"name": "Штукатурка", "quantity": 12.0, "price": 489.0}], "total": 5868.0},
        "refused": ["floor: must be >= 0"],
        "contact_missing": false, "cart_truncated": false, "response": {"floor": ["must be >= 0"]},
        "network_error": null, "remote_user": null, "manager": false, "attempts_last_hour": null,
        "backend_errors": [], "backend_saw_it": true,
    });
    let now = orderwatch::event::now_micros();
    let w = orderwatch::db::AttemptWrite {
        evidence_ids: vec![],
        lost: Some(orderwatch::db::LostOrderFields {
            at: now,
            endpoint: "orders".into(),
            status_code: Some(400),
            cause: "rejected",
            client_ip: Some("203.0.113.9".into()),
            summary: summary.to_string(),
            test_reason: None,
        }),
        keep_id: None,
    };
    h.db.apply_join(&[w], &[], &[], now).await.unwrap()[0]
}

#[tokio::test]
async fn lost_order_pages_show_customer_data_and_audit_every_read() {
    let h = harness().await;
    let id = lost_order(&h).await;
    let (mgr, mgr_csrf) = login(&h, "mia").await;
    let (dev, dev_csrf) = login(&h, "dev").await;
    let r = send(&h, get("/lost-orders?cause=rejected&period=today", Some(&mgr))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("Иван Петров") && r.body.contains("5 868.00"), "{}", r.body);
    let r = send(&h, get(&format!("/lost-orders/{id}"), Some(&mgr))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("+79991234567") && r.body.contains("floor: must be"));
    assert!(!r.body.contains("it-was-me"), "a manager has no developer actions");
    // A bad filter: a message next to the field, not an error page.
    let r = send(&h, get("/lost-orders?cause=nonsense", Some(&mgr))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("Выберите из списка."));
    // Unknown ids are 404 pages.
    assert_eq!(send(&h, get("/lost-orders/999999", Some(&mgr))).await.status, StatusCode::NOT_FOUND);
    assert_eq!(send(&h, get("/lost-orders/abc", Some(&mgr))).await.status, StatusCode::NOT_FOUND);
    assert_eq!(send(&h, get("/incidents/999999", Some(&dev))).await.status, StatusCode::NOT_FOUND);
    // The rescue form: a missing outcome gets its message next to the field.
    let path = format!("/lost-orders/{id}/calls");
    let r = send(&h, post_form(&path, Some(&mgr), &[("csrf", &mgr_csrf), ("back", "rescue"), ("note", "x")])).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains(&format!("id=\"outcome-error-{id}\"")), "{}", r.body);
    let r =
        send(&h, post_form(&path, Some(&mgr), &[("csrf", &mgr_csrf), ("back", "rescue"), ("outcome", "call_back")]))
            .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/rescue?saved=1");
    // A manager may not change a status; a developer may ("it was me").
    let status_path = format!("/lost-orders/{id}/status");
    let r = send(&h, post_form(&status_path, Some(&mgr), &[("csrf", &mgr_csrf), ("status", "test")])).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(&h, post_form(&status_path, Some(&dev), &[("csrf", &dev_csrf), ("status", "test")])).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(h.db.lost_order(id).await.unwrap().unwrap().status, "test");
    // Every read is in the audit log, with who read it.
    let audit = h.db.audit_log(100).await.unwrap();
    let object = format!("lost_order:{id}");
    assert!(audit.iter().any(|a| a.who == "mia" && a.object == object && a.action == "read_customer_data"));
    assert!(audit.iter().filter(|a| a.who == "mia").count() >= 3, "list, detail and the rescue queue");
    // The API's reads too.
    let r = send(
        &h,
        Request::get(format!("/api/v1/lost-orders/{id}"))
            .header("authorization", "Bearer admin-token")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(h.db.audit_log(1).await.unwrap()[0].who == "api-token");
}

#[tokio::test]
async fn the_incident_form_says_what_is_wrong_next_to_each_field() {
    let h = harness().await;
    let id = lost_order(&h).await;
    let (dev, csrf) = login(&h, "dev").await;
    let r = send(
        &h,
        post_form(&format!("/lost-orders/{id}/incident"), Some(&dev), &[("csrf", &csrf), ("incident", "new")]),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let incident = r.location().to_owned();
    assert!(incident.starts_with("/incidents/"));
    let r = send(
        &h,
        post_form(&incident, Some(&dev), &[("csrf", &csrf), ("title", ""), ("plain_cause", " "), ("status", "weird")]),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("id=\"title-error\"") && r.body.contains("id=\"plain_cause-error\""), "{}", r.body);
    let r = send(
        &h,
        post_form(
            &incident,
            Some(&dev),
            &[
                ("csrf", &csrf),
                ("title", "Basement floors"),
                ("plain_cause", "We refused floors below zero."),
                ("status", "open"),
            ],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    // No recipients configured: the preview says what to set, on the page.
    let r = send(&h, get(&format!("{incident}/preview"), Some(&dev))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("id=\"letter-problem\"") && r.body.contains("[report]"), "{}", r.body);
}
