//! The simulated shop of `orderwatch demo`: a building-materials shop in
//! Volgograd whose visits become exactly what a real shop sends orderwatch.
//! It only builds them (pure, deterministic given the seed and the times it
//! is handed); `demo` sends them.
//!
//! One [`Visit`] is what one customer's visit makes:
//! - uWSGI request lines of the backend as Debian's uWSGI sends them by syslog,
//!   RFC 3164 without a hostname: `<30>Jun 23 17:17:41 website-backend: [pid: …] …`,
//!   and its client-disconnect lines (`Broken pipe`, `SIGPIPE`, `OSError: write error`);
//! - nginx lines of the frontend proxy, `combined` plus the shop's
//!   `rt=$request_time rid=$request_id`, from host `website-frontend`;
//! - the browser's Sentry envelope when an order submission got an error answer
//!   (tags `api.*`, the request body with the cart and contact, the response), as
//!   the reference `testdata/sentry-browser-order-400.envelope`;
//! - the checkout reporter's envelope when it got no answer at all
//!   (`static/orderwatch-checkout.js`'s schema);
//! - the backend's Python-SDK-like error event when serving the order failed,
//!   as `testdata/sentry-python-order-500.event.json`.

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

/// The order endpoint of the shop (orderwatch's default `[[orders.endpoints]]`).
pub const ORDERS: &str = "/api/v1/orders/";
/// The shop's managers place orders by phone for customers; they are exempt from the rate limit.
pub const MANAGER_USER: &str = "manager";
pub const MANAGER_NET: &str = "91.210.4.0/28";
const MANAGER_IPS: [&str; 2] = ["91.210.4.7", "91.210.4.11"];
const SITE: &str = "https://stroymarket34.example";

/// What a visit does, and how it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scenario {
    /// Looks at the catalog and products.
    Browse,
    /// Places an order: 201.
    Placed,
    /// Places an order but closes the tab before the answer is written: uWSGI's
    /// client-gone lines beside its 201. Not a lost order.
    PlacedClientGone,
    /// 400: the server refuses a field (a basement floor, an old delivery date…).
    Rejected,
    /// A customer who already ordered twice in a minute gets 429.
    RateLimited,
    /// A manager (remote user `manager`, an office IP) gets 429: the exemption broke.
    RateLimitedManager,
    /// 500, with the backend's exception.
    ServerError,
    /// The browser got no answer and the backend never saw the request.
    Network,
    /// nginx 499: the page gave up waiting for the backend (the checkout reporter's timeout report).
    ClientGone,
}

impl Scenario {
    /// The lost-order cause orderwatch should find, if any.
    pub fn cause(self) -> Option<&'static str> {
        match self {
            Scenario::Browse | Scenario::Placed | Scenario::PlacedClientGone => None,
            Scenario::Rejected => Some("rejected"),
            Scenario::RateLimited | Scenario::RateLimitedManager => Some("rate_limited"),
            Scenario::ServerError => Some("server_error"),
            Scenario::Network => Some("network"),
            Scenario::ClientGone => Some("client_gone"),
        }
    }
}

/// Where a Sentry post goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SentryEndpoint {
    /// `/api/{project}/envelope/?sentry_key=…`, as browsers send.
    Envelope,
    /// `/api/{project}/store/` with `X-Sentry-Auth`, a bare event, as older backend SDKs send.
    Store,
}

/// One request to orderwatch's Sentry endpoints.
#[derive(Debug, Clone)]
pub struct SentryPost {
    pub endpoint: SentryEndpoint,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// The customer's address, as the shop's proxy in front of orderwatch names it.
    pub forwarded_for: Option<String>,
    pub user_agent: &'static str,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Customer {
    pub name: String,
    pub phone: String,
    pub email: String,
    pub ip: String,
}

/// What one visit sends.
#[derive(Debug, Clone)]
pub struct Visit {
    pub scenario: Scenario,
    /// When it ended (its last request).
    pub at: Timestamp,
    pub customer: Customer,
    /// The order's total, when the visit tried to order.
    pub total: Option<f64>,
    /// What the server refused or answered, in a few words, for the demo's output.
    pub note: String,
    /// Complete RFC 3164 lines, without a line end, in the order they were logged.
    pub syslog: Vec<String>,
    pub sentry: Vec<SentryPost>,
}

/// The shop: its customers, catalog and servers, and the seeded dice.
pub struct Shop {
    rng: StdRng,
    dsn: String,
    zone: TimeZone,
    /// uWSGI's request counters: per worker and in all.
    worker_req: [u64; 6],
    total_req: u64,
    /// The spammer of the moment (rate_limited visits reuse them).
    spammer: Option<Customer>,
    /// The refusal of the next rejected order, when it is not drawn.
    refusal: Option<usize>,
    /// When what is built now is sent: an SDK's `sent_at` (a report of an
    /// earlier failure is sent now, and orderwatch moves the event's time by
    /// received − sent_at, so a wrong one would move it away from its log lines).
    clock: Timestamp,
}

const WORKER_PIDS: [u32; 6] = [20590, 20591, 20592, 20593, 20594, 20595];

const MALE: &[(&str, &str)] = &[
    ("Алексей", "aleksey"),
    ("Дмитрий", "dmitry"),
    ("Сергей", "sergey"),
    ("Андрей", "andrey"),
    ("Павел", "pavel"),
    ("Михаил", "mikhail"),
    ("Николай", "nikolay"),
    ("Игорь", "igor"),
    ("Владимир", "vladimir"),
    ("Артём", "artem"),
];
const FEMALE: &[(&str, &str)] = &[
    ("Ирина", "irina"),
    ("Елена", "elena"),
    ("Ольга", "olga"),
    ("Наталья", "natalya"),
    ("Татьяна", "tatyana"),
    ("Анна", "anna"),
    ("Марина", "marina"),
    ("Светлана", "svetlana"),
    ("Юлия", "yulia"),
    ("Екатерина", "ekaterina"),
];
/// Surnames in their masculine form; the feminine adds "а".
const SURNAMES: &[(&str, &str)] = &[
    ("Иванов", "ivanov"),
    ("Смирнов", "smirnov"),
    ("Кузнецов", "kuznetsov"),
    ("Попов", "popov"),
    ("Васильев", "vasiliev"),
    ("Петров", "petrov"),
    ("Соколов", "sokolov"),
    ("Морозов", "morozov"),
    ("Волков", "volkov"),
    ("Лебедев", "lebedev"),
    ("Новиков", "novikov"),
    ("Фёдоров", "fedorov"),
];
const MAIL: &[&str] = &["example.ru", "mail.example.ru", "example.com"];
const CITIES: &[&str] = &["Волгоград", "Волгоград", "Волгоград", "Волжский", "Камышин"];
const STREETS: &[&str] = &[
    "ул. Мира",
    "пр. Ленина",
    "ул. Рабоче-Крестьянская",
    "ул. Казахская",
    "б-р 30-летия Победы",
    "ул. Землячки",
    "ул. Хользунова",
    "ул. Богданова",
];
/// (sku, name, price, fewest, most)
const CATALOG: &[(&str, &str, f64, u32, u32)] = &[
    ("PLAST-KNAUF-30", "Штукатурка гипсовая Knauf Ротбанд 30 кг", 489.0, 2, 15),
    ("PRIM-CER-10", "Грунтовка Ceresit CT 17 10 л", 1290.0, 1, 3),
    ("BRICK-M150", "Кирпич облицовочный М150", 23.5, 100, 600),
    ("CEM-M500-50", "Цемент М500 50 кг", 520.0, 2, 20),
    ("GKL-KNAUF-12", "Гипсокартон Knauf 12,5 мм 2500×1200", 415.0, 5, 40),
    ("GLUE-CM11-25", "Клей плиточный Ceresit CM 11 25 кг", 455.0, 2, 10),
    ("PROF-PN-27", "Профиль направляющий ПН 27×28 3 м", 98.0, 10, 50),
    ("SCREW-35-1000", "Саморезы по металлу 3,5×25 (1000 шт)", 640.0, 1, 3),
    ("ROCK-LB-50", "Утеплитель Rockwool Лайт Баттс 50 мм", 1320.0, 2, 12),
    ("PAINT-TIK-9", "Краска Tikkurila Euro 7 9 л", 4890.0, 1, 3),
    ("LAM-33-8", "Ламинат 33 класс 8 мм (2,13 м²)", 1780.0, 3, 20),
];
/// Address blocks of Russian home and mobile providers.
const NETS: &[(u8, u8)] = &[(95, 165), (188, 32), (5, 18), (46, 39), (176, 114), (178, 176), (31, 173), (85, 26)];
const AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-A525F) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
];

/// What the server refuses in a 400: (the order changed so, the answer's field path, its message).
const REFUSALS: &[(&str, &str)] = &[
    ("floor", "Ensure this value is greater than or equal to 0."),
    ("date", "Delivery is not possible on the date chosen."),
    ("phone", "Enter a valid phone number."),
];

/// One HTTP request as both servers log it.
struct Request<'a> {
    at: Timestamp,
    method: &'a str,
    uri: &'a str,
    status: u16,
    bytes: u64,
    ms: u64,
    referer: &'a str,
}

impl Shop {
    /// `dsn` is the project's DSN (written into envelope headers, as SDKs do);
    /// `zone` the one orderwatch reads these RFC 3164 senders' times in.
    pub fn new(seed: u64, dsn: &str, zone: TimeZone) -> Shop {
        Shop {
            rng: StdRng::seed_from_u64(seed),
            dsn: dsn.to_owned(),
            zone,
            worker_req: [0; 6],
            total_req: 4_946_598,
            spammer: None,
            refusal: None,
            clock: Timestamp::UNIX_EPOCH,
        }
    }

    /// The last minute of the shop, ending at `now`: plenty of browsing and
    /// placed orders, two orders whose customers left before the answer, and
    /// a lost order of every cause (two rate-limited: a spammer and a manager).
    pub fn opening(&mut self, now: Timestamp) -> Vec<Visit> {
        self.clock = self.clock.max(now);
        let mut plan = vec![Scenario::Browse; 14];
        plan.extend([Scenario::Placed; 10]);
        plan.extend([Scenario::PlacedClientGone; 2]);
        plan.extend([
            Scenario::Rejected,
            Scenario::RateLimitedManager,
            Scenario::ServerError,
            Scenario::Network,
            Scenario::ClientGone,
        ]);
        plan.shuffle(&mut self.rng);
        // The runbook's own example: a basement floor the changed API refuses.
        self.refusal = Some(0);
        // The spammer's third order, refused, comes late so that their two placed ones fit in the minute.
        plan.push(Scenario::RateLimited);
        let n = plan.len() as i64;
        let mut visits: Vec<Visit> = plan
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let at = now - SignedDuration::from_millis(60_000 - 59_000 * i as i64 / n);
                self.visit(s, at)
            })
            .collect();
        visits.sort_by_key(|v| v.at);
        visits
    }

    /// One visit, its outcome drawn: mostly orders placed and browsing, now
    /// and then a lost order of any cause.
    pub fn next(&mut self, at: Timestamp) -> Visit {
        let weights: &[(Scenario, u32)] = &[
            (Scenario::Browse, 30),
            (Scenario::Placed, 45),
            (Scenario::PlacedClientGone, 4),
            (Scenario::Rejected, 5),
            (Scenario::RateLimited, 3),
            (Scenario::RateLimitedManager, 2),
            (Scenario::ServerError, 4),
            (Scenario::Network, 4),
            (Scenario::ClientGone, 3),
        ];
        let s = weights.choose_weighted(&mut self.rng, |w| w.1).map(|w| w.0).unwrap_or(Scenario::Placed);
        self.visit(s, at)
    }

    /// How long the shop is quiet before the next visit: 1 to 3 s.
    pub fn pause(&mut self) -> std::time::Duration {
        std::time::Duration::from_millis(self.rng.random_range(1000..=3000))
    }

    /// The visit of `scenario` that ends at `at`.
    pub fn visit(&mut self, scenario: Scenario, at: Timestamp) -> Visit {
        self.clock = self.clock.max(at);
        let customer = match scenario {
            Scenario::RateLimited => match self.spammer.clone() {
                Some(c) if self.rng.random_bool(0.7) => c,
                _ => {
                    let c = self.customer();
                    self.spammer = Some(c.clone());
                    c
                }
            },
            Scenario::RateLimitedManager => {
                let mut c = self.customer();
                c.ip = MANAGER_IPS.choose(&mut self.rng).unwrap().to_string();
                c
            }
            _ => self.customer(),
        };
        let mut v =
            Visit { scenario, at, customer, total: None, note: String::new(), syslog: Vec::new(), sentry: Vec::new() };
        let agent = *AGENTS.choose(&mut self.rng).unwrap();
        let ms = |s: &mut Shop, lo: u64, hi: u64| s.rng.random_range(lo..=hi);
        let before = |ms: i64| at - SignedDuration::from_millis(ms);
        if scenario == Scenario::Browse {
            let page = self.rng.random_range(1..=6);
            let uri = format!("/api/v1/catalog/?page={page}");
            let (bytes, t) = (self.rng.random_range(9_000..30_000), ms(self, 20, 90));
            self.log_both(
                &mut v,
                None,
                agent,
                &Request {
                    at: before(4000),
                    method: "GET",
                    uri: &uri,
                    status: 200,
                    bytes,
                    ms: t,
                    referer: "/catalog/",
                },
            );
            let sku = CATALOG.choose(&mut self.rng).unwrap().0;
            let uri = format!("/api/v1/products/{sku}/");
            let (bytes, t) = (self.rng.random_range(2_000..6_000), ms(self, 10, 40));
            self.log_both(
                &mut v,
                None,
                agent,
                &Request { at, method: "GET", uri: &uri, status: 200, bytes, ms: t, referer: "/catalog/" },
            );
            v.note = "looked at the catalog".into();
            return v;
        }

        let mut order = self.order(&v.customer);
        if scenario == Scenario::Rejected {
            let (field, message) = match self.refusal.take() {
                Some(i) => REFUSALS[i],
                None => *REFUSALS.choose(&mut self.rng).unwrap(),
            };
            let delivery = &mut order["order"]["delivery"];
            match field {
                "floor" => delivery["floor"] = json!(-1),
                "date" => delivery["date"] = json!(local_date(at - SignedDuration::from_hours(48), &self.zone)),
                _ => order["order"]["contact"]["phone"] = json!(v.customer.phone.replace(['+', ' ', '-'], "")[..7]),
            }
            v.note = format!("delivery.{field}: {message}");
            if field == "phone" {
                v.note = format!("contact.phone: {message}");
            }
        }
        v.total = order["order"]["total"].as_f64();
        let user = (scenario == Scenario::RateLimitedManager).then_some(MANAGER_USER);
        // Every order page view comes first.
        let (bytes, t) = (self.rng.random_range(3_000..5_000), ms(self, 10, 30));
        self.log_both(
            &mut v,
            user,
            agent,
            &Request {
                at: before(8000),
                method: "GET",
                uri: "/api/v1/cart/",
                status: 200,
                bytes,
                ms: t,
                referer: "/cart/",
            },
        );
        if scenario == Scenario::RateLimited {
            // The spammer's two orders a little earlier went through.
            for back in [40_000, 25_000] {
                let (bytes, t) = (self.rng.random_range(380..440), ms(self, 150, 260));
                self.log_both(
                    &mut v,
                    None,
                    agent,
                    &Request {
                        at: before(back),
                        method: "POST",
                        uri: ORDERS,
                        status: 201,
                        bytes,
                        ms: t,
                        referer: "/cart/checkout/",
                    },
                );
            }
        }
        let rid = self.hex(16);
        match scenario {
            Scenario::Placed => {
                let (bytes, t) = (self.rng.random_range(380..440), ms(self, 150, 260));
                self.log_both(
                    &mut v,
                    None,
                    agent,
                    &Request { at, method: "POST", uri: ORDERS, status: 201, bytes, ms: t, referer: "/cart/checkout/" },
                );
                v.note = "order placed".into();
            }
            Scenario::PlacedClientGone => {
                // uWSGI wrote the answer to a closed socket: the order exists, the customer did not see it.
                let ip = v.customer.ip.clone();
                let ctime = self.ctime(at);
                v.syslog.push(self.uwsgi_line(27, at, &format!("{ctime} - uwsgi_response_write_body_do(): Broken pipe [core/writer.c line 341] during POST {ORDERS} ({ip})")));
                v.syslog.push(self.uwsgi_line(27, at, &format!("{ctime} - SIGPIPE: writing to a closed pipe/socket/fd (probably the client disconnected) on request {ORDERS} (ip {ip}) !!!")));
                v.syslog.push(self.uwsgi_line(27, at, "OSError: write error"));
                let t = ms(self, 900, 2500);
                let line = self.uwsgi(
                    &Request { at, method: "POST", uri: ORDERS, status: 201, bytes: 0, ms: t, referer: "" },
                    &ip,
                    None,
                    "HTTP/1.1",
                );
                v.syslog.push(line);
                v.note = "order placed; the customer closed the tab before the answer".into();
            }
            Scenario::Rejected => {
                let (path, message) = v.note.split_once(": ").map(|(p, m)| (p.to_owned(), m.to_owned())).unwrap();
                let (group, field) = path.split_once('.').unwrap();
                let body = json!({ group: { field: [message] } });
                self.answered(&mut v, agent, &rid, 400, &order, body, None);
            }
            Scenario::RateLimited | Scenario::RateLimitedManager => {
                let wait = self.rng.random_range(600..3600);
                let body = json!({"detail": format!("Request was throttled. Expected available in {wait} seconds.")});
                self.answered(&mut v, agent, &rid, 429, &order, body, user);
                v.note = if user.is_some() {
                    "429 for a manager: the exemption broke".into()
                } else {
                    "429: the third order within a minute".into()
                };
            }
            Scenario::ServerError => {
                let body = json!({"detail": "Внутренняя ошибка сервера. Попробуйте позже."});
                self.answered(&mut v, agent, &rid, 500, &order, body, None);
                let event = self.backend_event(at - SignedDuration::from_millis(40), &v.customer.ip, &rid, &order);
                v.sentry.push(SentryPost {
                    endpoint: SentryEndpoint::Store,
                    content_type: "application/json",
                    body: serde_json::to_vec(&event).unwrap(),
                    forwarded_for: None,
                    user_agent: "sentry.python.django/2.75.0",
                });
                v.note = "500: IntegrityError in orders.services.create_order".into();
            }
            Scenario::Network => {
                let error = *[
                    "TypeError: Failed to fetch",
                    "TypeError: NetworkError when attempting to fetch resource.",
                    "TypeError: Load failed",
                ]
                .choose(&mut self.rng)
                .unwrap();
                let event = self.reporter_event(at, &v.customer, &order, error, agent);
                v.sentry.push(self.envelope(
                    &event,
                    "orderwatch.checkout",
                    "1.0.0",
                    "text/plain;charset=UTF-8",
                    &v.customer.ip,
                    agent,
                    at,
                ));
                v.note = format!("no answer: {error}");
            }
            Scenario::ClientGone => {
                // The backend hung; after 30 s the page gave up (the checkout reporter's
                // timeout report) and nginx logged that its client closed the connection.
                let line = self.nginx(
                    &Request {
                        at,
                        method: "POST",
                        uri: ORDERS,
                        status: 499,
                        bytes: 0,
                        ms: 30_000,
                        referer: "/cart/checkout/",
                    },
                    &v.customer.ip,
                    None,
                    agent,
                    "HTTP/2.0",
                    &rid,
                );
                v.syslog.push(line);
                let error = "TimeoutError: signal timed out";
                let event = self.reporter_event(at, &v.customer, &order, error, agent);
                v.sentry.push(self.envelope(
                    &event,
                    "orderwatch.checkout",
                    "1.0.0",
                    "text/plain;charset=UTF-8",
                    &v.customer.ip,
                    agent,
                    at,
                ));
                v.note = "499: the page gave up waiting after 30 s".into();
            }
            Scenario::Browse => unreachable!("handled above"),
        }
        v
    }

    /// An order POST answered `status` with `body`: the uWSGI and nginx lines
    /// and the browser's report.
    #[allow(clippy::too_many_arguments)]
    fn answered(
        &mut self,
        v: &mut Visit,
        agent: &'static str,
        rid: &str,
        status: u16,
        order: &Value,
        body: Value,
        user: Option<&str>,
    ) {
        let text = body.to_string();
        let t = if status == 500 { self.rng.random_range(800..1500) } else { self.rng.random_range(2..40) };
        let req = Request {
            at: v.at,
            method: "POST",
            uri: ORDERS,
            status,
            bytes: text.len() as u64,
            ms: t,
            referer: "/cart/checkout/",
        };
        let proto = self.proto();
        let line = self.uwsgi(&req, &v.customer.ip.clone(), user, proto);
        v.syslog.push(line);
        let line = self.nginx(&req, &v.customer.ip.clone(), user, agent, proto, rid);
        v.syslog.push(line);
        let at = v.at + SignedDuration::from_millis(t as i64 + 30);
        let event = self.browser_event(at, status, rid, order, body, text.len(), agent);
        let post = self.envelope(
            &event,
            "sentry.javascript.browser",
            "7.120.0",
            "application/x-sentry-envelope",
            &v.customer.ip,
            agent,
            at,
        );
        v.sentry.push(post);
    }

    /// A GET or POST as uWSGI and then nginx log it.
    fn log_both(&mut self, v: &mut Visit, user: Option<&str>, agent: &str, req: &Request) {
        let proto = self.proto();
        let ip = v.customer.ip.clone();
        let line = self.uwsgi(req, &ip, user, proto);
        v.syslog.push(line);
        let rid = self.hex(16);
        let line = self.nginx(req, &ip, user, agent, proto, &rid);
        v.syslog.push(line);
    }

    fn proto(&mut self) -> &'static str {
        if self.rng.random_bool(0.8) { "HTTP/2.0" } else { "HTTP/1.1" }
    }

    fn customer(&mut self) -> Customer {
        let female = self.rng.random_bool(0.5);
        let (first, first_lat) = *(if female { FEMALE } else { MALE }).choose(&mut self.rng).unwrap();
        let (last, last_lat) = *SURNAMES.choose(&mut self.rng).unwrap();
        let (last, last_lat) =
            if female { (format!("{last}а"), format!("{last_lat}a")) } else { (last.to_owned(), last_lat.to_owned()) };
        let phone = format!(
            "+7 9{:02} {:03}-{:02}-{:02}",
            self.rng.random_range(0..100),
            self.rng.random_range(0..1000),
            self.rng.random_range(0..100),
            self.rng.random_range(0..100)
        );
        let email =
            format!("{first_lat}.{last_lat}{}@{}", self.rng.random_range(1..100), MAIL.choose(&mut self.rng).unwrap());
        let (a, b) = *NETS.choose(&mut self.rng).unwrap();
        let ip = format!("{a}.{b}.{}.{}", self.rng.random_range(0..=255), self.rng.random_range(1..=254));
        Customer { name: format!("{first} {last}"), phone, email, ip }
    }

    /// The order the checkout page posts: contact, delivery, cart, total.
    fn order(&mut self, c: &Customer) -> Value {
        let n = self.rng.random_range(1..=4);
        let items: Vec<Value> = CATALOG
            .choose_multiple(&mut self.rng, n)
            .map(|&(sku, name, price, lo, hi)| {
                let qty = self.rng.random_range(lo..=hi);
                json!({"sku": sku, "name": name, "qty": qty, "price": price})
            })
            .collect::<Vec<_>>();
        let total: f64 = items.iter().map(|i| i["qty"].as_f64().unwrap() * i["price"].as_f64().unwrap()).sum();
        let courier = self.rng.random_bool(0.8);
        let delivery = if courier {
            json!({
                "type": "courier",
                "city": CITIES.choose(&mut self.rng).unwrap(),
                "street": STREETS.choose(&mut self.rng).unwrap(),
                "house": self.rng.random_range(1..=120).to_string(),
                "apartment": self.rng.random_range(1..=200).to_string(),
                "floor": self.rng.random_range(1..=16),
                "date": "",
            })
        } else {
            json!({"type": "pickup", "city": "Волгоград", "store": "ул. Хользунова, 9", "date": ""})
        };
        json!({"order": {
            "contact": {"name": c.name, "phone": c.phone, "email": c.email},
            "delivery": delivery,
            "items": items,
            "total": (total * 100.0).round() / 100.0,
            "payment": if self.rng.random_bool(0.6) { "cash_on_delivery" } else { "card_online" },
        }})
    }

    /// Fills in the delivery date: one to four days after `at`, in the shop's zone.
    fn dated(&mut self, order: &Value, at: Timestamp) -> Value {
        let mut o = order.clone();
        if o["order"]["delivery"]["date"] == "" {
            let days = self.rng.random_range(1..=4);
            o["order"]["delivery"]["date"] = json!(local_date(at + SignedDuration::from_hours(24 * days), &self.zone));
        }
        o
    }

    /// The browser SDK's event of a failed order submission, shaped like the reference envelope's.
    #[allow(clippy::too_many_arguments)]
    fn browser_event(
        &mut self,
        at: Timestamp,
        status: u16,
        rid: &str,
        order: &Value,
        body: Value,
        size: usize,
        agent: &str,
    ) -> Value {
        let order = self.dated(order, at);
        json!({
            "event_id": self.hex(16),
            "timestamp": at.as_millisecond() as f64 / 1000.0,
            "platform": "javascript",
            "level": "error",
            "environment": "production",
            "release": "shop-frontend@2026.05.04",
            "exception": {"values": [{
                "type": "OrderSubmitError",
                "value": format!("POST {ORDERS} failed with {status}"),
                "mechanism": {"type": "generic", "handled": true},
                "stacktrace": {"frames": [{"filename": format!("{SITE}/static/js/checkout.4f2a.js"), "function": "submitOrder", "lineno": 1, "colno": 48211, "in_app": true}]},
            }]},
            "request": {"url": format!("{SITE}/cart/checkout/"), "headers": {"User-Agent": agent}},
            "user": {"ip_address": "{{auto}}"},
            "tags": {"api.endpoint": ORDERS, "api.method": "POST", "api.status": status.to_string(), "request_id": rid},
            "contexts": {"response": {"status_code": status, "body_size": size}},
            "extra": {
                "request": {"method": "POST", "url": ORDERS, "body": order},
                "response": {"status": status, "body": body},
                "cart": order,
            },
            "fingerprint": ["order-submit", "{{ default }}", status.to_string()],
            "breadcrumbs": [{"timestamp": (at.as_millisecond() - 500) as f64 / 1000.0, "type": "http", "category": "fetch",
                             "data": {"method": "POST", "url": ORDERS, "status_code": status}}],
            "sdk": {"name": "sentry.javascript.browser", "version": "7.120.0"},
        })
    }

    /// The checkout reporter's event of a submission that got no answer.
    fn reporter_event(&mut self, at: Timestamp, c: &Customer, order: &Value, error: &str, agent: &str) -> Value {
        let order = self.dated(order, at);
        json!({
            "event_id": self.hex(16),
            "timestamp": at.as_millisecond() as f64 / 1000.0,
            "platform": "javascript",
            "level": "error",
            "logger": "orderwatch.checkout",
            "sdk": {"name": "orderwatch.checkout", "version": "1.0.0"},
            "release": "shop-frontend@2026.05.04",
            "environment": "production",
            "exception": {"values": [{
                "type": "OrderSubmitNetworkError",
                "value": format!("POST {ORDERS} failed: {error}"),
                "mechanism": {"type": "orderwatch.checkout", "handled": true},
            }]},
            "request": {"url": format!("{SITE}/cart/checkout/"), "headers": {"User-Agent": agent}},
            "user": {"ip_address": "{{auto}}", "email": c.email, "username": c.name},
            "tags": {"checkout_step": "confirm", "orderwatch.kind": "order_submit_failed", "api.endpoint": ORDERS,
                     "api.method": "POST", "api.status": "network"},
            "extra": {
                "request": {"method": "POST", "url": ORDERS, "body": order},
                "error": error,
                "cart": order,
                "customer": {"email": c.email, "name": c.name},
            },
        })
    }

    /// The backend's error event (Python SDK, Django) raised while serving the order.
    fn backend_event(&mut self, at: Timestamp, ip: &str, rid: &str, order: &Value) -> Value {
        let order = self.dated(order, at);
        json!({
            "event_id": self.hex(16),
            "timestamp": at.to_string(),
            "platform": "python",
            "level": "error",
            "server_name": "website-backend",
            "environment": "production",
            "release": "backend@2026.05.04",
            "exception": {"values": [{
                "type": "IntegrityError",
                "value": "null value in column \"warehouse_id\" violates not-null constraint",
                "module": "django.db.utils",
                "mechanism": {"type": "django", "handled": false},
                "stacktrace": {"frames": [{"filename": "orders/services.py", "module": "orders.services", "function": "create_order",
                                           "lineno": 214, "in_app": true, "context_line": "    order.save()"}]},
            }]},
            "request": {
                "url": format!("{SITE}{ORDERS}"),
                "method": "POST",
                "headers": {"X-Request-Id": rid, "X-Real-Ip": ip, "Content-Type": "application/json"},
                "data": order["order"],
            },
            "tags": {"url": ORDERS},
            "sdk": {"name": "sentry.python.django", "version": "2.75.0"},
        })
    }

    /// An envelope holding `event`, as a browser posts it (the SDK's sent_at is a moment after the event).
    #[allow(clippy::too_many_arguments)]
    fn envelope(
        &mut self,
        event: &Value,
        sdk: &str,
        version: &str,
        content_type: &'static str,
        ip: &str,
        agent: &'static str,
        at: Timestamp,
    ) -> SentryPost {
        let payload = serde_json::to_vec(event).unwrap();
        let sent = self.clock.max(at) + SignedDuration::from_millis(self.rng.random_range(5..60));
        let header = json!({"event_id": event["event_id"], "sent_at": sent.to_string(), "sdk": {"name": sdk, "version": version}, "dsn": self.dsn});
        let mut body = serde_json::to_vec(&header).unwrap();
        body.extend_from_slice(format!("\n{{\"type\":\"event\",\"length\":{}}}\n", payload.len()).as_bytes());
        body.extend_from_slice(&payload);
        body.push(b'\n');
        SentryPost {
            endpoint: SentryEndpoint::Envelope,
            content_type,
            body,
            forwarded_for: Some(ip.to_owned()),
            user_agent: agent,
        }
    }

    /// uWSGI's request log line, by syslog from Debian's uWSGI (no hostname).
    fn uwsgi(&mut self, r: &Request, ip: &str, user: Option<&str>, proto: &str) -> String {
        let w = self.rng.random_range(0..WORKER_PIDS.len());
        self.worker_req[w] += 1;
        self.total_req += 1;
        let vars = self.rng.random_range(44..56);
        let started = r.at - SignedDuration::from_millis(r.ms as i64);
        let msg = format!(
            "[pid: {}|app: 0|req: {}/{}] {ip} ({}) {{{vars} vars in {} bytes}} [{}] {} {} => generated {} bytes in {} msecs ({proto} {}) {} headers in {} bytes (1 switches on core 0)",
            WORKER_PIDS[w],
            self.worker_req[w],
            self.total_req,
            user.unwrap_or(""),
            vars * 23 + self.rng.random_range(0..40),
            self.ctime(started),
            r.method,
            r.uri,
            r.bytes,
            r.ms,
            r.status,
            if r.method == "POST" { 8 } else { 7 },
            if r.method == "POST" { 301 } else { 260 },
        );
        self.uwsgi_line(30, r.at, &msg)
    }

    /// `<PRI>Mon DD HH:MM:SS website-backend: msg`.
    fn uwsgi_line(&self, pri: u8, at: Timestamp, msg: &str) -> String {
        format!("<{pri}>{} website-backend: {msg}", at.to_zoned_datetime(self.zone.clone()).strftime("%b %e %H:%M:%S"))
    }

    /// nginx's line for the request, by its syslog (local7.info) from the frontend host.
    #[allow(clippy::too_many_arguments)]
    fn nginx(&mut self, r: &Request, ip: &str, user: Option<&str>, agent: &str, proto: &str, rid: &str) -> String {
        let z = r.at.to_zoned_datetime(self.zone.clone());
        let referer = if r.referer.is_empty() { "-".to_owned() } else { format!("{SITE}{}", r.referer) };
        format!(
            "<190>{} website-frontend nginx: {ip} - {} [{}] \"{} {} {proto}\" {} {} \"{referer}\" \"{agent}\" rt={}.{:03} rid={rid}",
            z.strftime("%b %e %H:%M:%S"),
            user.unwrap_or("-"),
            z.strftime("%d/%b/%Y:%H:%M:%S %z"),
            r.method,
            r.uri,
            r.status,
            r.bytes,
            r.ms / 1000,
            r.ms % 1000,
        )
    }

    /// uWSGI's ctime-style time: `Sat Jun 23 17:17:41 2018`.
    fn ctime(&self, at: Timestamp) -> String {
        at.to_zoned_datetime(self.zone.clone()).strftime("%a %b %e %H:%M:%S %Y").to_string()
    }

    fn hex(&mut self, bytes: usize) -> String {
        (0..bytes).map(|_| format!("{:02x}", self.rng.random::<u8>())).collect()
    }
}

fn local_date(at: Timestamp, zone: &TimeZone) -> String {
    at.to_zoned_datetime(zone.clone()).strftime("%Y-%m-%d").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orders::evidence::{self, Kind as PieceKind};
    use crate::orders::{EndpointDef, Piece};
    use crate::parse::access::{self, Dialect, Kind};
    use crate::parse::syslog;
    use std::collections::HashSet;

    const DSN: &str = "http://0123456789abcdef0123456789abcdef@127.0.0.1:8080/1";

    fn shop(seed: u64) -> Shop {
        Shop::new(seed, DSN, TimeZone::get("Europe/Volgograd").unwrap())
    }

    fn now() -> Timestamp {
        "2026-05-04T09:30:00Z".parse().unwrap()
    }

    /// Each line read back as orderwatch reads it: syslog header, then access fields.
    fn read(line: &str) -> (syslog::SyslogFields, Option<access::AccessLog>) {
        let f = syslog::parse(line.as_bytes(), now(), &TimeZone::get("Europe/Volgograd").unwrap());
        let a = access::parse(&f.message);
        (f, a)
    }

    fn events(v: &Visit) -> Vec<Value> {
        v.sentry
            .iter()
            .map(|p| {
                let env = match p.endpoint {
                    SentryEndpoint::Envelope => crate::sentry::envelope::parse(&bytes::Bytes::from(p.body.clone())),
                    SentryEndpoint::Store => {
                        crate::sentry::envelope::from_store_body(bytes::Bytes::from(p.body.clone()))
                    }
                }
                .expect("the envelope parses");
                assert_eq!(env.items.len(), 1);
                assert_eq!(env.header.dsn.as_deref(), (p.endpoint == SentryEndpoint::Envelope).then_some(DSN));
                serde_json::from_slice(&env.items[0].payload).unwrap()
            })
            .collect()
    }

    fn pieces(v: &Visit) -> Vec<Piece> {
        let eps = vec![EndpointDef::default().check().unwrap()];
        events(v).iter().map(|e| evidence::from_event(e, &eps, 0, 0).expect("an order event")).collect()
    }

    #[test]
    fn every_line_reads_back_as_the_request_it_logs() {
        let mut s = shop(7);
        let mut seen = HashSet::new();
        let visits: Vec<Visit> = s
            .opening(now())
            .into_iter()
            .chain((0..300).map(|i| s.next(now() + SignedDuration::from_secs(i))))
            .collect();
        for v in &visits {
            for line in &v.syslog {
                let (f, a) = read(line);
                let at = f.generated_at.expect("a header time");
                assert!((at - v.at).abs() <= SignedDuration::from_secs(41), "{line}");
                match f.program.as_str() {
                    "website-backend" => {
                        assert_eq!(f.hostname, None, "Debian's uWSGI sends no hostname: {line}");
                        if f.message == "OSError: write error" {
                            continue;
                        }
                    }
                    "nginx" => assert_eq!(f.hostname.as_deref(), Some("website-frontend")),
                    p => panic!("program {p}: {line}"),
                }
                let a = a.unwrap_or_else(|| panic!("not an access line: {line}"));
                assert_eq!(a.client_ip.as_deref(), Some(v.customer.ip.as_str()), "{line}");
                assert!(a.path.as_deref().is_some_and(|p| p.starts_with("/api/v1/")), "{line}");
                seen.insert((f.program.clone(), a.dialect as u8, a.kind == Kind::ClientGone));
                if a.kind == Kind::ClientGone {
                    assert_eq!(v.scenario, Scenario::PlacedClientGone);
                    continue;
                }
                let status = a.status.unwrap();
                if a.method.as_deref() == Some("POST") {
                    let want = match v.scenario {
                        // The spammer's two earlier orders went through.
                        Scenario::RateLimited if status == 201 => 201,
                        Scenario::Placed | Scenario::PlacedClientGone => 201,
                        Scenario::Rejected => 400,
                        Scenario::RateLimited | Scenario::RateLimitedManager => 429,
                        Scenario::ServerError => 500,
                        Scenario::ClientGone => 499,
                        s => panic!("{s:?} posts no order: {line}"),
                    };
                    assert_eq!(status, want, "{line}");
                }
                assert_eq!(
                    a.remote_user.as_deref(),
                    (v.scenario == Scenario::RateLimitedManager).then_some(MANAGER_USER),
                    "{line}"
                );
                match a.dialect {
                    Dialect::Uwsgi => assert!(a.duration_us.is_some() && a.request_id.is_none()),
                    Dialect::NginxCombined => {
                        assert_eq!(a.request_id.as_deref().map(str::len), Some(32), "{line}");
                        assert!(a.duration_us.is_some());
                    }
                    d => panic!("{d:?}: {line}"),
                }
            }
        }
        assert!(seen.contains(&("website-backend".into(), Dialect::Uwsgi as u8, false)));
        assert!(seen.contains(&("website-backend".into(), Dialect::UwsgiError as u8, true)));
        assert!(seen.contains(&("nginx".into(), Dialect::NginxCombined as u8, false)));
    }

    #[test]
    fn the_opening_has_a_lost_order_of_every_cause_and_plenty_that_are_not() {
        let mut s = shop(1);
        let visits = s.opening(now());
        let causes: HashSet<&str> = visits.iter().filter_map(|v| v.scenario.cause()).collect();
        assert_eq!(causes, ["rejected", "rate_limited", "server_error", "network", "client_gone"].into());
        assert!(visits.iter().filter(|v| v.scenario == Scenario::Placed).count() >= 10);
        assert!(visits.iter().any(|v| v.scenario == Scenario::PlacedClientGone));
        assert!(visits.iter().any(|v| v.scenario == Scenario::RateLimitedManager));
        let rejected = visits.iter().find(|v| v.scenario == Scenario::Rejected).unwrap();
        assert_eq!(
            rejected.note, "delivery.floor: Ensure this value is greater than or equal to 0.",
            "the runbook's basement floor"
        );
        assert!(visits.windows(2).all(|w| w[0].at <= w[1].at));
        assert!(visits.iter().all(|v| v.at <= now() && v.at > now() - SignedDuration::from_secs(61)));
        for p in visits.iter().flat_map(|v| &v.sentry).filter(|p| p.endpoint == SentryEndpoint::Envelope) {
            let env = crate::sentry::envelope::parse(&bytes::Bytes::from(p.body.clone())).unwrap();
            let sent: Timestamp = env.header.sent_at.unwrap().parse().unwrap();
            assert!(sent >= now(), "sent now, whenever the failure was: {sent}");
        }
        let ips: HashSet<&str> = visits.iter().map(|v| v.customer.ip.as_str()).collect();
        assert_eq!(ips.len(), visits.len(), "each customer their own address, so no two attempts are joined");
    }

    #[test]
    fn the_same_seed_plays_the_same_shop() {
        let lines = |seed| {
            let mut s = shop(seed);
            let mut all: Vec<String> = s.opening(now()).into_iter().flat_map(|v| v.syslog).collect();
            all.extend((0..20).flat_map(|i| s.next(now() + SignedDuration::from_secs(i)).syslog));
            all
        };
        assert_eq!(lines(42), lines(42));
        assert_ne!(lines(42), lines(43));
    }

    #[test]
    fn the_rejected_order_is_reported_with_its_customer_cart_and_refused_field() {
        let mut s = shop(3);
        let v = s.visit(Scenario::Rejected, now());
        let evs = events(&v);
        assert_eq!(evs.len(), 1);
        let e = &evs[0];
        assert_eq!(e["user"]["ip_address"], "{{auto}}");
        assert_eq!(e["tags"]["api.status"], "400");
        assert_eq!(e["extra"]["request"]["body"]["order"]["contact"]["name"], v.customer.name.as_str());
        assert_eq!(e["extra"]["cart"]["order"]["total"].as_f64(), v.total);
        let (group, field) = v.note.split_once(": ").unwrap().0.split_once('.').unwrap();
        assert!(e["extra"]["response"]["body"][group][field][0].is_string(), "{e}");
        let p = &pieces(&v)[0];
        assert_eq!((p.kind, p.status), (PieceKind::Frontend, Some(400)));
        assert_eq!(v.sentry[0].forwarded_for.as_deref(), Some(v.customer.ip.as_str()));

        // The basement floor of the runbook is one of the refusals.
        let mut s = shop(0);
        let basement = (0..50)
            .map(|i| s.visit(Scenario::Rejected, now() + SignedDuration::from_secs(i)))
            .find(|v| v.note == "delivery.floor: Ensure this value is greater than or equal to 0.")
            .expect("a basement floor among 50 refusals");
        assert_eq!(events(&basement)[0]["extra"]["cart"]["order"]["delivery"]["floor"], -1);
    }

    #[test]
    fn the_server_error_carries_the_backends_exception_for_the_same_request() {
        let mut s = shop(5);
        let v = s.visit(Scenario::ServerError, now());
        let ps = pieces(&v);
        let front = ps.iter().find(|p| p.kind == PieceKind::Frontend).unwrap();
        let back = ps.iter().find(|p| p.kind == PieceKind::Backend).unwrap();
        assert_eq!(front.status, Some(500));
        assert_eq!(back.client_ip.as_deref(), Some(v.customer.ip.as_str()), "from X-Real-Ip");
        assert_eq!(back.request_id, front.request_id, "X-Request-Id joins them");
        let nginx = v.syslog.iter().find(|l| l.contains(" nginx: ") && l.contains("POST")).unwrap();
        assert_eq!(read(nginx).1.unwrap().request_id, back.request_id);
    }

    #[test]
    fn the_network_failure_is_the_checkout_reporters_and_has_no_backend_line() {
        let mut s = shop(9);
        let v = s.visit(Scenario::Network, now());
        assert!(v.syslog.iter().all(|l| !l.contains("POST")));
        let ps = pieces(&v);
        assert_eq!(ps.len(), 1);
        assert_eq!(ps[0].status, None);
        assert!(ps[0].network_error.is_some());
        let e = &events(&v)[0];
        assert_eq!(e["logger"], "orderwatch.checkout");
        assert_eq!(e["tags"]["api.status"], "network");
        assert!(e.get("contexts").is_none() && e["extra"].get("response").is_none());
        assert_eq!(v.sentry[0].content_type, "text/plain;charset=UTF-8");
    }

    #[test]
    fn client_gone_is_an_nginx_499_and_a_placed_order_whose_client_left_is_not() {
        let mut s = shop(11);
        let gone = s.visit(Scenario::ClientGone, now());
        let last = read(gone.syslog.last().unwrap()).1.unwrap();
        assert_eq!(
            (last.dialect, last.status, last.method.as_deref()),
            (Dialect::NginxCombined, Some(499), Some("POST"))
        );
        let ps = pieces(&gone);
        assert_eq!((ps.len(), ps[0].status), (1, None), "the page's timeout report");
        assert_eq!(ps[0].client_ip, None, "{{auto}}: the address is the connection's");
        let placed = s.visit(Scenario::PlacedClientGone, now());
        let statuses: Vec<Option<u16>> = placed
            .syslog
            .iter()
            .filter_map(|l| read(l).1)
            .filter(|a| a.path.as_deref() == Some(ORDERS))
            .map(|a| a.status)
            .collect();
        assert_eq!(statuses, [None, None, Some(201)], "Broken pipe, SIGPIPE, then the request line");
        assert!(placed.sentry.is_empty());
    }
}
