//! `ingest-load sentry`: the Sentry ingest benchmark of `scripts/bench-sentry`
//! (see BENCHMARKS.md). It posts a realistic mix of Sentry envelopes to
//! `POST /api/{project}/envelope/` of any Sentry-compatible server (orderwatch,
//! Bugsink) and measures what the server acknowledges, how fast it processes
//! what it acknowledged, and that nothing acknowledged is dropped.
//!
//! 1. `--conns` threads each open an HTTP/1.1 keep-alive connection and, once
//!    all are released together, post one envelope after the other (each waits
//!    for its answer, as an SDK's transport does) for `--seconds`. An envelope
//!    is generated just before it is sent (≈ 50 µs; gzip level 1 for the
//!    compressed ones), each with a fresh event id, and is never retried: a
//!    failed request counts as not acknowledged.
//! 2. The mix (`--mix ERRORS,SESSIONS,REPORTS`, percent, default 60,25,15):
//!    * error events of 5–50 KB (log-uniform; median ≈ 16 KB), half
//!      browser-like (`sentry.javascript.browser`: an order or cart request that
//!      failed with 400/422/500/502/504, the cart of 1–60 items twice, as the
//!      shop's code attaches it, minified-JS frames, up to 100 breadcrumbs;
//!      auth in the query string, `text/plain`, not compressed, a third with a
//!      session item too) and half Python-like (`sentry.python.django`: an
//!      exception from one of 12 kinds raised at one of 12 code paths, 8–25
//!      frames with context lines and local variables, the request's cart,
//!      SQL and log breadcrumbs, installed modules; `X-Sentry-Auth`,
//!      gzip-compressed as the Python SDK does). Titles vary (endpoint,
//!      status, exception, code path), so there are a few hundred groups with a
//!      skew: a few hot, a long tail;
//!    * session updates (browser `session`, Python `sessions` aggregates);
//!    * client reports (discarded events).
//! 3. Afterwards, with `--token` (orderwatch's admin token), it polls
//!    `GET /api/v1/error-groups?limit=1000` until the groups' counts add up to
//!    the acknowledged error events (unique ids), i.e. every acknowledged
//!    event is processed and readable; with `--count-cmd CMD` (any server) it
//!    polls a shell command that prints the number of events the server has
//!    stored instead. Then, with `--token` and `--verify yes`, it reads every
//!    acknowledged event back (`GET /api/v1/error-events/{id}`) and counts the
//!    ones missing.
//!
//! Results go to stdout as `key=value` lines; progress and errors to stderr.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::latency::{json_str, percentile, read_body, read_head};
use crate::{Rng, civil_from_days, die, proc_cpu_seconds, self_cpu_seconds};

// ---------------------------------------------------------------- options

struct Opts {
    /// Where to connect (HOST:PORT), from the DSN unless given.
    addr: String,
    dsn: String,
    key: String,
    project: String,
    conns: usize,
    seconds: f64,
    mix: [u32; 3],
    seed: u64,
    token: Option<String>,
    count_cmd: Option<String>,
    verify: bool,
    wait: Duration,
    pid: Option<String>,
}

const USAGE: &str = "usage: ingest-load sentry --dsn http://KEY@HOST:PORT/PROJECT [--addr HOST:PORT] [--conns 8]
                   [--seconds 20] [--mix 60,25,15] [--seed 1] [--pid SERVER_PID] [--wait-secs 120]
                   [--token ADMIN_TOKEN [--verify yes|no] | --count-cmd 'SHELL COMMAND PRINTING A COUNT']";

fn parse_opts(args: &[String]) -> Opts {
    let mut dsn = None;
    let mut addr = None;
    let mut o = Opts {
        addr: String::new(),
        dsn: String::new(),
        key: String::new(),
        project: String::new(),
        conns: 8,
        seconds: 20.0,
        mix: [60, 25, 15],
        seed: 1,
        token: None,
        count_cmd: None,
        verify: true,
        wait: Duration::from_secs(120),
        pid: None,
    };
    let mut i = 0;
    while i < args.len() {
        let key = args[i].as_str();
        if key == "-h" || key == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let val = args.get(i + 1).unwrap_or_else(|| die(&format!("{key} needs a value\n{USAGE}"))).clone();
        let num = |v: &str| -> u64 {
            v.replace('_', "").parse().unwrap_or_else(|_| die(&format!("{key}: not a number: {v}")))
        };
        match key {
            "--dsn" => dsn = Some(val),
            "--addr" => addr = Some(val),
            "--conns" => o.conns = num(&val).max(1) as usize,
            "--seconds" => o.seconds = val.parse().unwrap_or_else(|_| die("--seconds: not a number")),
            "--mix" => {
                let parts: Vec<u32> = val.split(',').map(|p| num(p.trim()) as u32).collect();
                if parts.len() != 3 || parts.iter().sum::<u32>() == 0 {
                    die("--mix is ERRORS,SESSIONS,REPORTS, e.g. 60,25,15");
                }
                o.mix = [parts[0], parts[1], parts[2]];
            }
            "--seed" => o.seed = num(&val),
            "--token" => o.token = Some(val),
            "--count-cmd" => o.count_cmd = Some(val),
            "--verify" => {
                o.verify = match val.as_str() {
                    "yes" => true,
                    "no" => false,
                    _ => die("--verify is yes or no"),
                }
            }
            "--wait-secs" => o.wait = Duration::from_secs(num(&val)),
            "--pid" => o.pid = Some(num(&val).to_string()),
            _ => die(&format!("unknown option {key}\n{USAGE}")),
        }
        i += 2;
    }
    let dsn = dsn.unwrap_or_else(|| die(&format!("give --dsn\n{USAGE}")));
    let (k, host, project) = parse_dsn(&dsn).unwrap_or_else(|| die(&format!("not a DSN: {dsn}")));
    o.key = k;
    o.project = project;
    o.addr = addr.unwrap_or(host);
    o.dsn = dsn;
    if o.token.is_some() && o.count_cmd.is_some() {
        die("give one of --token and --count-cmd");
    }
    o
}

/// `http://KEY@HOST:PORT/PROJECT` → (key, host:port, project).
fn parse_dsn(dsn: &str) -> Option<(String, String, String)> {
    let rest = dsn.strip_prefix("http://")?;
    let (key, rest) = rest.split_once('@')?;
    let key = key.split(':').next()?;
    let (host, path) = rest.split_once('/')?;
    let project = path.trim_end_matches('/').rsplit('/').next()?;
    if key.is_empty() || host.is_empty() || project.is_empty() {
        return None;
    }
    let host = if host.contains(':') { host.to_owned() } else { format!("{host}:80") };
    Some((key.to_owned(), host, project.to_owned()))
}

// ---------------------------------------------------------------- time and ids

fn unix_now_f() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// RFC 3339 UTC with milliseconds, as SDKs write `sent_at`.
fn iso(unix: f64) -> String {
    let ms = (unix * 1000.0) as i64;
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z", sod / 3600, sod / 60 % 60, sod % 60, ms.rem_euclid(1000))
}

fn hex32(r: &mut Rng) -> String {
    format!("{:016x}{:016x}", r.next(), r.next())
}

// ---------------------------------------------------------------- the shop's data

const PRODUCTS: [(&str, &str, u32); 24] = [
    ("PLAST-KNAUF-30", "Штукатурка гипсовая Knauf Ротбанд 30 кг", 489),
    ("PRIM-CER-10", "Грунтовка Ceresit CT 17 10 л", 1290),
    ("BRICK-M150", "Кирпич облицовочный М150", 23),
    ("TILE-KER-3030", "Плитка керамическая Kerama Marazzi 30×30 см", 1650),
    ("GLUE-UNIS-25", "Клей для плитки Юнис Плюс 25 кг", 420),
    ("PAINT-TIK-9", "Краска Tikkurila Euro Power 7 9 л", 4890),
    ("DRYW-GKL-125", "Гипсокартон Knauf ГКЛ 12,5 мм 2500×1200", 465),
    ("PROF-PN-27", "Профиль направляющий ПН 27×28 3 м", 118),
    ("SCREW-TN25-1K", "Саморезы по металлу TN 25 мм, 1000 шт", 690),
    ("INSUL-ROCK-50", "Утеплитель Rockwool Лайт Баттс 50 мм", 1390),
    ("CEM-M500-50", "Цемент М500 Д0 50 кг", 560),
    ("SAND-40", "Песок строительный 40 кг", 150),
    ("LAM-TAR-33", "Ламинат Tarkett 33 класс, упаковка 2,13 м²", 1980),
    ("UNDER-3MM", "Подложка под ламинат 3 мм, 10 м²", 310),
    ("DOOR-INT-80", "Дверь межкомнатная, 800 мм, белая эмаль", 7490),
    ("LOCK-APECS", "Замок врезной Apecs 5300", 1240),
    ("PIPE-PP-20", "Труба полипропиленовая PN20 20 мм, 2 м", 96),
    ("MIXER-GROHE", "Смеситель для кухни Grohe Eurosmart", 8290),
    ("CABLE-VVG-3", "Кабель ВВГнг-LS 3×2,5 мм², 1 м", 87),
    ("SOCKET-LEG", "Розетка Legrand Valena с заземлением", 390),
    ("LAMP-LED-10", "Лампа светодиодная 10 Вт E27", 129),
    ("SEAL-CER-CS", "Герметик силиконовый Ceresit CS 25 280 мл", 420),
    ("FOAM-MAKR-750", "Пена монтажная Makroflex 750 мл", 610),
    ("WALLP-ERIS", "Обои виниловые на флизелине 1,06×10 м", 1190),
];

const NAMES: [&str; 12] = [
    "Ирина Соколова",
    "Павел Ким",
    "Алексей Смирнов",
    "Ольга Кузнецова",
    "Дмитрий Попов",
    "Наталья Васильева",
    "Сергей Петров",
    "Елена Морозова",
    "Андрей Волков",
    "Мария Лебедева",
    "Игорь Новиков",
    "Татьяна Фёдорова",
];

const CITIES: [&str; 8] =
    ["Волгоград", "Волжский", "Камышин", "Михайловка", "Урюпинск", "Фролово", "Краснослободск", "Ленинск"];
const STREETS: [&str; 8] = [
    "ул. Мира",
    "пр. Ленина",
    "ул. Рабоче-Крестьянская",
    "ул. Советская",
    "ул. Космонавтов",
    "ул. Землячки",
    "ул. Циолковского",
    "бул. 30-летия Победы",
];

const USER_AGENTS: [&str; 6] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-A546B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.6723.107 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) YaBrowser/24.10.0.0 Safari/537.36",
];

/// Browser failures: (method, endpoint, exception type, the function that called it, its bundle).
const BROWSER_CALLS: [(&str, &str, &str, &str, &str); 16] = [
    ("POST", "/api/v1/orders/", "OrderSubmitError", "submitOrder", "checkout"),
    ("POST", "/api/v1/cart/items/", "CartUpdateError", "addToCart", "cart"),
    ("PATCH", "/api/v1/cart/items/", "CartUpdateError", "changeQuantity", "cart"),
    ("DELETE", "/api/v1/cart/items/", "CartUpdateError", "removeFromCart", "cart"),
    ("POST", "/api/v1/payments/init/", "PaymentInitError", "startPayment", "checkout"),
    ("GET", "/api/v1/delivery/slots/", "DeliverySlotsError", "loadSlots", "checkout"),
    ("POST", "/api/v1/delivery/price/", "DeliveryPriceError", "quoteDelivery", "checkout"),
    ("POST", "/api/v1/promo/apply/", "PromoError", "applyPromo", "cart"),
    ("GET", "/api/v1/products/availability/", "AvailabilityError", "checkStock", "product"),
    ("POST", "/api/v1/auth/phone/", "AuthError", "requestCode", "account"),
    ("POST", "/api/v1/auth/verify/", "AuthError", "verifyCode", "account"),
    ("GET", "/api/v1/addresses/suggest/", "TypeError", "suggestAddress", "checkout"),
    ("POST", "/api/v1/callback/", "CallbackError", "orderCallback", "common"),
    ("POST", "/api/v1/orders/quick/", "OrderSubmitError", "quickOrder", "product"),
    ("PUT", "/api/v1/profile/", "ProfileError", "saveProfile", "account"),
    ("POST", "/api/v1/reviews/", "ReviewError", "postReview", "product"),
];

const BROWSER_STATUSES: [u16; 5] = [400, 422, 500, 502, 504];

/// Python failures: (exception module, type, value with {} for a number).
const PY_ERRORS: [(&str, &str, &str); 12] = [
    ("django.db.utils", "IntegrityError", "null value in column \"warehouse_id\" violates not-null constraint"),
    ("django.db.utils", "OperationalError", "could not obtain lock on row in relation \"shop_stock\" after {} ms"),
    ("builtins", "KeyError", "'delivery_slot'"),
    (
        "rest_framework.exceptions",
        "ValidationError",
        "{'delivery': {'floor': ['Ensure this value is greater than or equal to 0.']}}",
    ),
    (
        "requests.exceptions",
        "ReadTimeout",
        "HTTPSConnectionPool(host='pay.example.net', port=443): Read timed out. (read timeout={})",
    ),
    (
        "requests.exceptions",
        "ConnectionError",
        "HTTPSConnectionPool(host='api.cdek.example', port=443): Max retries exceeded with url: /v2/calculator/tariff",
    ),
    ("shop.models", "DoesNotExist", "Product matching query does not exist."),
    ("builtins", "TypeError", "unsupported operand type(s) for +: 'NoneType' and 'Decimal'"),
    ("decimal", "InvalidOperation", "[<class 'decimal.ConversionSyntax'>]"),
    ("redis.exceptions", "TimeoutError", "Timeout reading from socket after {} ms"),
    ("builtins", "AttributeError", "'NoneType' object has no attribute 'warehouse'"),
    ("celery.exceptions", "OperationalError", "[Errno 111] Connection refused (broker retry {})"),
];

/// Python code paths: (transaction, in-app frames as (module, function, line of code)).
/// (module, function, line of code).
type Frame = (&'static str, &'static str, &'static str);

const PY_PATHS: [(&str, &[Frame]); 12] = [
    (
        "/api/v1/orders/",
        &[
            ("orders.views", "create", "order = services.create_order(request.user, serializer.validated_data)"),
            ("orders.services", "create_order", "order.save()"),
        ],
    ),
    (
        "/api/v1/orders/quick/",
        &[
            ("orders.views", "quick", "order = services.quick_order(phone, cart)"),
            ("orders.services", "quick_order", "reserve_stock(order)"),
            (
                "stock.services",
                "reserve_stock",
                "row = Stock.objects.select_for_update(nowait=False).get(sku=item.sku)",
            ),
        ],
    ),
    (
        "/api/v1/cart/items/",
        &[
            ("cart.views", "add_item", "cart.add(product, qty)"),
            ("cart.models", "add", "line.total = line.price * qty + line.total"),
        ],
    ),
    (
        "/api/v1/payments/init/",
        &[
            ("payments.views", "init", "payment = gateway.charge(order, amount)"),
            ("payments.gateway", "charge", "resp = self.session.post(url, json=payload, timeout=10)"),
        ],
    ),
    (
        "/api/v1/payments/callback/",
        &[
            ("payments.views", "callback", "order = Order.objects.get(number=data['order'])"),
            ("payments.services", "confirm", "order.mark_paid(amount)"),
        ],
    ),
    (
        "/api/v1/delivery/price/",
        &[
            ("delivery.views", "price", "quote = cdek.tariff(address, weight)"),
            ("delivery.cdek", "tariff", "resp = self.session.post(self.url + '/v2/calculator/tariff', json=body)"),
        ],
    ),
    (
        "/api/v1/delivery/slots/",
        &[
            ("delivery.views", "slots", "slots = planner.free_slots(address, day)"),
            ("delivery.planner", "free_slots", "return [s for s in day_slots if s.capacity > cache.get(key)]"),
        ],
    ),
    (
        "/api/v1/promo/apply/",
        &[
            ("promo.views", "apply", "discount = rules.evaluate(cart, code)"),
            ("promo.rules", "evaluate", "return Decimal(rule.params['percent']) * cart.total / 100"),
        ],
    ),
    (
        "/api/v1/products/availability/",
        &[("catalog.views", "availability", "stock = Stock.objects.get(sku=sku, warehouse=wh)")],
    ),
    (
        "orders.tasks.send_to_erp",
        &[
            ("orders.tasks", "send_to_erp", "erp.push(order.as_erp())"),
            ("erp.client", "push", "self.redis.set(key, payload, ex=3600)"),
        ],
    ),
    (
        "orders.tasks.notify_manager",
        &[("orders.tasks", "notify_manager", "send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, managers)")],
    ),
    (
        "/api/v1/checkout/confirm/",
        &[
            ("checkout.views", "confirm", "order = checkout.confirm(request.session['checkout'])"),
            ("checkout.services", "confirm", "slot = data['delivery_slot']"),
            ("orders.services", "create_order", "order.save()"),
        ],
    ),
];

/// Django's own frames under every view.
const DJANGO_FRAMES: [(&str, &str, &str); 6] = [
    ("django.core.handlers.exception", "inner", "response = get_response(request)"),
    (
        "django.core.handlers.base",
        "_get_response",
        "response = wrapped_callback(request, *callback_args, **callback_kwargs)",
    ),
    ("django.views.decorators.csrf", "_view_wrapper", "return view_func(request, *args, **kwargs)"),
    ("rest_framework.viewsets", "view", "return self.dispatch(request, *args, **kwargs)"),
    ("rest_framework.views", "dispatch", "response = handler(request, *args, **kwargs)"),
    ("django.db.transaction", "inner", "return func(*args, **kwds)"),
];

const PY_MODULES: [(&str, &str); 40] = [
    ("django", "5.1.4"),
    ("djangorestframework", "3.15.2"),
    ("psycopg2-binary", "2.9.10"),
    ("celery", "5.4.0"),
    ("redis", "5.2.1"),
    ("requests", "2.32.3"),
    ("urllib3", "2.2.3"),
    ("certifi", "2024.8.30"),
    ("idna", "3.10"),
    ("charset-normalizer", "3.4.0"),
    ("sentry-sdk", "2.75.0"),
    ("uwsgi", "2.0.28"),
    ("pillow", "11.0.0"),
    ("django-filter", "24.3"),
    ("django-cors-headers", "4.6.0"),
    ("django-redis", "5.4.0"),
    ("kombu", "5.4.2"),
    ("billiard", "4.2.1"),
    ("vine", "5.1.0"),
    ("amqp", "5.3.1"),
    ("pytz", "2024.2"),
    ("python-dateutil", "2.9.0"),
    ("six", "1.16.0"),
    ("asgiref", "3.8.1"),
    ("sqlparse", "0.5.2"),
    ("jinja2", "3.1.4"),
    ("markupsafe", "3.0.2"),
    ("lxml", "5.3.0"),
    ("openpyxl", "3.1.5"),
    ("et-xmlfile", "2.0.0"),
    ("phonenumbers", "8.13.50"),
    ("django-phonenumber-field", "8.0.0"),
    ("pyjwt", "2.10.1"),
    ("cryptography", "43.0.3"),
    ("cffi", "1.17.1"),
    ("pycparser", "2.22"),
    ("boto3", "1.35.71"),
    ("botocore", "1.35.71"),
    ("s3transfer", "0.10.4"),
    ("jmespath", "1.0.1"),
];

/// A cart: `{"contact": …, "delivery": …, "items": […], "total": …}`.
fn cart(r: &mut Rng, items: usize) -> String {
    let mut s = String::with_capacity(200 + items * 130);
    let name = *r.pick(&NAMES);
    let _ = write!(
        s,
        "{{\"contact\": {{\"name\": {}, \"phone\": \"+7 9{:02} {:03}-{:02}-{:02}\", \"email\": \"customer{}@example.ru\"}}, ",
        json_str(name),
        r.range(0, 99),
        r.range(0, 999),
        r.range(0, 99),
        r.range(0, 99),
        r.range(1, 99_999)
    );
    let _ = write!(
        s,
        "\"delivery\": {{\"type\": \"{}\", \"city\": {}, \"street\": {}, \"house\": \"{}\", \"apartment\": \"{}\", \"floor\": {}, \"date\": \"2026-11-{:02}\"}}, \"items\": [",
        if r.chance(0.8) { "courier" } else { "pickup" },
        json_str(r.pick::<&str>(&CITIES)),
        json_str(r.pick::<&str>(&STREETS)),
        r.range(1, 120),
        r.range(1, 300),
        r.range(0, 17) as i64 - 1,
        r.range(1, 30)
    );
    let mut total = 0u64;
    for i in 0..items {
        let (sku, pname, price) = *r.pick(&PRODUCTS);
        let qty = 1 + r.skewed(40);
        total += qty * price as u64;
        if i > 0 {
            s.push_str(", ");
        }
        let _ =
            write!(s, "{{\"sku\": \"{sku}\", \"name\": {}, \"qty\": {qty}, \"price\": {price}.0}}", json_str(pname));
    }
    let _ = write!(
        s,
        "], \"total\": {total}.0, \"payment\": \"{}\"}}",
        r.pick(&["cash_on_delivery", "card_online", "sbp"])
    );
    s
}

/// Browser breadcrumbs until `budget` bytes are used (at most 100, the SDK's default).
fn browser_breadcrumbs(r: &mut Rng, ts: f64, budget: usize, call: (&str, &str)) -> String {
    let mut s = String::from("[");
    let mut n = 0;
    let mut t = ts - 300.0;
    while s.len() < budget && n < 100 {
        t += r.exp(2.0);
        if n > 0 {
            s.push_str(", ");
        }
        let k = r.below(4);
        match k {
            0 => {
                let _ = write!(
                    s,
                    "{{\"timestamp\": {t:.3}, \"category\": \"navigation\", \"data\": {{\"from\": \"/catalog/{}/\", \"to\": \"/product/{}/\"}}}}",
                    r.range(1, 400),
                    r.range(10_000, 99_999)
                );
            }
            1 => {
                let _ = write!(
                    s,
                    "{{\"timestamp\": {t:.3}, \"category\": \"ui.click\", \"message\": \"body > div#app > main.checkout > form.order-form > div.row:nth-child({}) > button.btn.btn-primary[type=\\\"submit\\\"]\"}}",
                    r.range(1, 9)
                );
            }
            2 => {
                let _ = write!(
                    s,
                    "{{\"timestamp\": {t:.3}, \"type\": \"http\", \"category\": \"fetch\", \"data\": {{\"method\": \"GET\", \"url\": \"/api/v1/products/{}/?fields=price,stock,images&city={}\", \"status_code\": 200}}}}",
                    r.range(10_000, 99_999),
                    r.range(1, 8)
                );
            }
            _ => {
                let _ = write!(
                    s,
                    "{{\"timestamp\": {t:.3}, \"category\": \"console\", \"level\": \"warning\", \"message\": \"[yandex-metrika] goal {} not found, counter {}\", \"data\": {{\"arguments\": [\"goal\", {}]}}}}",
                    r.range(1, 99),
                    r.range(10_000_000, 99_999_999),
                    r.range(1, 99)
                );
            }
        }
        n += 1;
    }
    let _ = write!(
        s,
        "{}{{\"timestamp\": {ts:.3}, \"type\": \"http\", \"category\": \"fetch\", \"data\": {{\"method\": \"{}\", \"url\": \"{}\"}}}}]",
        if n > 0 { ", " } else { "" },
        call.0,
        call.1
    );
    s
}

/// A browser error event (its JSON) of about `target` bytes.
fn browser_event(r: &mut Rng, id: &str, ts: f64, target: usize) -> String {
    let ci = r.skewed(BROWSER_CALLS.len() as u64) as usize;
    let (method, path, ty, func, bundle) = BROWSER_CALLS[ci];
    let status = BROWSER_STATUSES[r.skewed(BROWSER_STATUSES.len() as u64) as usize];
    let items = (1 + r.below((target / 900).max(1) as u64) as usize).min(60);
    let cart = cart(r, items);
    let ua = *r.pick(&USER_AGENTS);
    let mut s = String::with_capacity(target + 4096);
    let _ = write!(
        s,
        "{{\"event_id\": \"{id}\", \"timestamp\": {ts:.3}, \"platform\": \"javascript\", \"level\": \"error\", \"environment\": \"production\", \"release\": \"shop-frontend@2026.11.20\", "
    );
    let _ = write!(
        s,
        "\"exception\": {{\"values\": [{{\"type\": \"{ty}\", \"value\": \"{method} {path} failed with {status}\", \"mechanism\": {{\"type\": \"generic\", \"handled\": true}}, \"stacktrace\": {{\"frames\": ["
    );
    // Outermost first: the framework, then the shop's code.
    let _ = write!(
        s,
        "{{\"filename\": \"https://example-shop.ru/static/js/vendor.9c1e.js\", \"function\": \"HTMLFormElement.<anonymous>\", \"lineno\": 2, \"colno\": {}, \"in_app\": false}}, ",
        r.range(1000, 90_000)
    );
    let _ = write!(
        s,
        "{{\"filename\": \"https://example-shop.ru/static/js/{bundle}.4f2a.js\", \"function\": \"onSubmit\", \"lineno\": 1, \"colno\": {}, \"in_app\": true}}, ",
        r.range(1000, 90_000)
    );
    let _ = write!(
        s,
        "{{\"filename\": \"https://example-shop.ru/static/js/{bundle}.4f2a.js\", \"function\": \"{func}\", \"lineno\": 1, \"colno\": {}, \"in_app\": true}}]}}}}]}}, ",
        r.range(1000, 90_000)
    );
    let _ = write!(
        s,
        "\"request\": {{\"url\": \"https://example-shop.ru/cart/checkout/\", \"headers\": {{\"User-Agent\": {}, \"Referer\": \"https://example-shop.ru/cart/\"}}}}, \"user\": {{\"ip_address\": \"{{{{auto}}}}\"}}, ",
        json_str(ua)
    );
    let _ = write!(
        s,
        "\"tags\": {{\"api.endpoint\": \"{path}\", \"api.method\": \"{method}\", \"api.status\": \"{status}\", \"request_id\": \"{}\", \"city\": {}}}, ",
        hex32(r),
        json_str(r.pick::<&str>(&CITIES))
    );
    let _ = write!(
        s,
        "\"contexts\": {{\"response\": {{\"status_code\": {status}, \"body_size\": {}}}, \"browser\": {{\"name\": \"Chrome\", \"version\": \"131.0.0\"}}, \"os\": {{\"name\": \"Windows\", \"version\": \"10\"}}, \"trace\": {{\"trace_id\": \"{}\", \"span_id\": \"{:016x}\"}}}}, ",
        r.range(60, 900),
        hex32(r),
        r.next()
    );
    let _ = write!(
        s,
        "\"extra\": {{\"request\": {{\"method\": \"{method}\", \"url\": \"{path}\", \"body\": {{\"order\": {cart}}}}}, \"response\": {{\"status\": {status}, \"body\": {}}}, \"cart\": {{\"order\": {cart}}}}}, ",
        if status < 500 {
            "{\"delivery\": {\"floor\": [\"Ensure this value is greater than or equal to 0.\"]}}".to_string()
        } else {
            format!(
                "\"<html><head><title>{status}</title></head><body><center><h1>{status}</h1></center><hr><center>nginx/1.24.0</center></body></html>\""
            )
        }
    );
    let _ = write!(s, "\"fingerprint\": [\"{func}\", \"{{{{ default }}}}\", \"{status}\"], ");
    let tail = "\"sdk\": {\"name\": \"sentry.javascript.browser\", \"version\": \"7.120.0\", \"integrations\": [\"InboundFilters\", \"FunctionToString\", \"TryCatch\", \"Breadcrumbs\", \"GlobalHandlers\", \"LinkedErrors\", \"Dedupe\", \"HttpContext\"]}}";
    let budget = target.saturating_sub(s.len() + tail.len() + 20);
    s.push_str("\"breadcrumbs\": ");
    s.push_str(&browser_breadcrumbs(r, ts, budget, (method, path)));
    s.push_str(", ");
    s.push_str(tail);
    s
}

/// A Python (Django) error event of about `target` bytes.
fn python_event(r: &mut Rng, id: &str, ts: f64, target: usize) -> String {
    let (emod, ety, evalue) = PY_ERRORS[r.skewed(PY_ERRORS.len() as u64) as usize];
    let (transaction, app_frames) = PY_PATHS[r.skewed(PY_PATHS.len() as u64) as usize];
    let value = evalue.replace("{}", &r.range(1, 30_000).to_string());
    let task = !transaction.starts_with('/');
    let mut s = String::with_capacity(target + 4096);
    let _ = write!(
        s,
        "{{\"event_id\": \"{id}\", \"timestamp\": \"{}\", \"platform\": \"python\", \"level\": \"error\", \"logger\": \"{}\", \"server_name\": \"website-backend-{}\", \"environment\": \"production\", \"release\": \"backend@2026.11.20\", \"transaction\": \"{transaction}\", ",
        iso(ts),
        if task { "celery.app.trace" } else { "django.request" },
        r.range(1, 4)
    );
    let _ = write!(
        s,
        "\"exception\": {{\"values\": [{{\"type\": \"{ety}\", \"value\": {}, \"module\": \"{emod}\", \"mechanism\": {{\"type\": \"{}\", \"handled\": false}}, \"stacktrace\": {{\"frames\": [",
        json_str(&value),
        if task { "celery" } else { "django" }
    );
    // Frames: Django's (or Celery's) below, the shop's on top; some library frames over them.
    let mut frames: Vec<(&str, &str, &str, bool)> = Vec::new();
    if task {
        frames.push(("celery.app.trace", "trace_task", "R = retval = fun(*args, **kwargs)", false));
        frames.push(("celery.app.trace", "__protected_call__", "return self.run(*args, **kwargs)", false));
    } else {
        for &(m, f, l) in &DJANGO_FRAMES[..2 + r.below(5) as usize] {
            frames.push((m, f, l, false));
        }
    }
    for &(m, f, l) in app_frames {
        frames.push((m, f, l, true));
    }
    let lib: &[(&str, &str, &str)] = match ety {
        "IntegrityError" | "OperationalError" if emod == "django.db.utils" => &[
            ("django.db.models.base", "save", "self.save_base(using=using, force_insert=force_insert)"),
            (
                "django.db.models.base",
                "_save_table",
                "results = self._do_insert(cls._base_manager, using, fields, returning_fields, raw)",
            ),
            ("django.db.models.sql.compiler", "execute_sql", "cursor.execute(sql, params)"),
            ("django.db.backends.utils", "_execute", "return self.cursor.execute(sql, params)"),
        ],
        "ReadTimeout" | "ConnectionError" => &[
            ("requests.sessions", "post", "return self.request(\"POST\", url, data=data, json=json, **kwargs)"),
            ("requests.sessions", "send", "r = adapter.send(request, **kwargs)"),
            ("requests.adapters", "send", "raise ReadTimeout(e, request=request)"),
        ],
        "TimeoutError" => &[
            ("redis.commands.core", "set", "return self.execute_command(\"SET\", *pieces, **options)"),
            ("redis.connection", "read_response", "raise TimeoutError(f\"Timeout reading from {host_error}\")"),
        ],
        _ => &[],
    };
    for &(m, f, l) in lib {
        frames.push((m, f, l, false));
    }
    for (i, (m, f, l, in_app)) in frames.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        let file = format!("{}.py", m.replace('.', "/"));
        let abs = if *in_app {
            format!("/srv/shop/{file}")
        } else {
            format!("/srv/shop/venv/lib/python3.12/site-packages/{file}")
        };
        let _ = write!(
            s,
            "{{\"filename\": \"{file}\", \"abs_path\": \"{abs}\", \"module\": \"{m}\", \"function\": \"{f}\", \"lineno\": {}, \"in_app\": {in_app}, \"context_line\": {}, ",
            r.range(20, 900),
            json_str(&format!("        {l}"))
        );
        s.push_str("\"pre_context\": [\"\", \"    @transaction.atomic\", \"    def ");
        s.push_str(f);
        s.push_str("(self, *args, **kwargs):\", \"        log.debug('start', extra={'args': args})\", \"        started = time.monotonic()\"], ");
        s.push_str("\"post_context\": [\"        log.debug('done in %.3f', time.monotonic() - started)\", \"        return result\", \"\", \"\", \"    def __repr__(self):\"], ");
        let _ = write!(
            s,
            "\"vars\": {{\"self\": \"<{} object at 0x7f{:010x}>\", \"args\": \"()\", \"kwargs\": \"{{'pk': {}}}\", \"started\": {}.{:06}, \"request\": \"<WSGIRequest: POST '{transaction}'>\"}}}}",
            m.rsplit('.').next().unwrap_or(m),
            r.next() & 0xff_ffff_ffff,
            r.range(1, 999_999),
            r.range(10_000, 999_999),
            r.below(1_000_000)
        );
    }
    s.push_str("]}}]}, ");
    if !task {
        let items = (1 + r.below((target / 1200).max(1) as u64) as usize).min(60);
        let _ = write!(
            s,
            "\"request\": {{\"url\": \"https://example-shop.ru{transaction}\", \"method\": \"POST\", \"query_string\": \"\", \"headers\": {{\"Host\": \"example-shop.ru\", \"X-Request-Id\": \"{}\", \"X-Real-Ip\": \"{}.{}.{}.{}\", \"Content-Type\": \"application/json\", \"User-Agent\": {}}}, \"data\": {}}}, ",
            hex32(r),
            r.range(2, 223),
            r.below(256),
            r.below(256),
            r.range(1, 254),
            json_str(r.pick::<&str>(&USER_AGENTS)),
            cart(r, items)
        );
    }
    let _ = write!(
        s,
        "\"tags\": {{\"url\": \"{transaction}\", \"warehouse\": \"wh-{}\"}}, \"contexts\": {{\"runtime\": {{\"name\": \"CPython\", \"version\": \"3.12.7\"}}, \"trace\": {{\"trace_id\": \"{}\", \"span_id\": \"{:016x}\", \"op\": \"{}\"}}}}, ",
        r.range(1, 6),
        hex32(r),
        r.next(),
        if task { "queue.task.celery" } else { "http.server" }
    );
    s.push_str("\"modules\": {");
    for (i, (m, v)) in PY_MODULES.iter().enumerate() {
        let _ = write!(s, "{}\"{m}\": \"{v}\"", if i > 0 { ", " } else { "" });
    }
    s.push_str("}, ");
    let tail = "\"sdk\": {\"name\": \"sentry.python.django\", \"version\": \"2.75.0\", \"packages\": [{\"name\": \"pypi:sentry-sdk\", \"version\": \"2.75.0\"}], \"integrations\": [\"argv\", \"atexit\", \"celery\", \"dedupe\", \"django\", \"excepthook\", \"logging\", \"modules\", \"redis\", \"stdlib\", \"threading\"]}}";
    let budget = target.saturating_sub(s.len() + tail.len() + 40);
    s.push_str("\"breadcrumbs\": {\"values\": [");
    let mut used = 0;
    let mut t = ts - 2.0;
    let mut n = 0;
    while used < budget && n < 100 {
        let before = s.len();
        t += r.exp(0.01);
        if n > 0 {
            s.push_str(", ");
        }
        if r.chance(0.7) {
            let _ = write!(
                s,
                "{{\"type\": \"default\", \"category\": \"query\", \"timestamp\": \"{}\", \"message\": \"SELECT \\\"shop_stock\\\".\\\"id\\\", \\\"shop_stock\\\".\\\"sku\\\", \\\"shop_stock\\\".\\\"warehouse_id\\\", \\\"shop_stock\\\".\\\"qty\\\" FROM \\\"shop_stock\\\" WHERE (\\\"shop_stock\\\".\\\"sku\\\" = %s AND \\\"shop_stock\\\".\\\"warehouse_id\\\" = %s) LIMIT 21\", \"data\": {{\"db.params\": [\"{}\", {}], \"db.executemany\": false}}}}",
                iso(t),
                r.pick(&PRODUCTS).0,
                r.range(1, 6)
            );
        } else {
            let _ = write!(
                s,
                "{{\"type\": \"log\", \"category\": \"shop.orders\", \"level\": \"info\", \"timestamp\": \"{}\", \"message\": \"cart {} recalculated: {} lines, total {}.00\"}}",
                iso(t),
                r.range(100_000, 999_999),
                r.range(1, 60),
                r.range(100, 300_000)
            );
        }
        used += s.len() - before;
        n += 1;
    }
    s.push_str("]}, ");
    s.push_str(tail);
    s
}

/// What an envelope is.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    BrowserError,
    PythonError,
    Session,
    ClientReport,
}

#[cfg(test)]
impl Kind {
    fn is_error(self) -> bool {
        matches!(self, Kind::BrowserError | Kind::PythonError)
    }
}

/// One envelope to post: its body (uncompressed), whether to gzip it, how it
/// authenticates, and the error event's id if it holds one.
struct Envelope {
    kind: Kind,
    body: Vec<u8>,
    gzip: bool,
    browser: bool,
    event_id: Option<String>,
}

fn item(out: &mut String, header: &str, payload: &str) {
    out.push_str(header);
    out.push('\n');
    out.push_str(payload);
    out.push('\n');
}

const BROWSER_SDK: &str = "{\"name\": \"sentry.javascript.browser\", \"version\": \"7.120.0\"}";
const PYTHON_SDK: &str = "{\"name\": \"sentry.python.django\", \"version\": \"2.75.0\"}";

fn make_envelope(r: &mut Rng, mix: [u32; 3], id: String, dsn: &str) -> Envelope {
    let now = unix_now_f();
    let total: u32 = mix.iter().sum();
    let roll = r.below(total as u64) as u32;
    let browser = r.chance(0.5);
    let kind = if roll < mix[0] {
        if browser { Kind::BrowserError } else { Kind::PythonError }
    } else if roll < mix[0] + mix[1] {
        Kind::Session
    } else {
        Kind::ClientReport
    };
    let mut s = String::new();
    let mut event_id = None;
    match kind {
        Kind::BrowserError | Kind::PythonError => {
            // 5–50 KB, log-uniform.
            let target = (5_000.0 * 10f64.powf(r.unit())) as usize;
            let ev = if kind == Kind::BrowserError {
                browser_event(r, &id, now, target)
            } else {
                python_event(r, &id, now, target)
            };
            let sdk = if kind == Kind::BrowserError { BROWSER_SDK } else { PYTHON_SDK };
            let _ = writeln!(
                s,
                "{{\"event_id\": \"{id}\", \"sent_at\": \"{}\", \"sdk\": {sdk}{}}}",
                iso(now),
                if kind == Kind::BrowserError { format!(", \"dsn\": {}", json_str(dsn)) } else { String::new() }
            );
            // Browser items carry a length, Python's do not always: both are read.
            if kind == Kind::BrowserError {
                item(&mut s, &format!("{{\"type\": \"event\", \"length\": {}}}", ev.len()), &ev);
                if r.chance(0.33) {
                    let session = session_payload(r, now, true);
                    item(&mut s, "{\"type\": \"session\"}", &session);
                }
            } else {
                item(&mut s, "{\"type\": \"event\", \"content_type\": \"application/json\"}", &ev);
            }
            event_id = Some(id);
        }
        Kind::Session => {
            let sdk = if browser { BROWSER_SDK } else { PYTHON_SDK };
            let _ = writeln!(s, "{{\"sent_at\": \"{}\", \"sdk\": {sdk}}}", iso(now));
            if browser {
                let p = session_payload(r, now, false);
                item(&mut s, "{\"type\": \"session\"}", &p);
            } else {
                let p = format!(
                    "{{\"aggregates\": [{{\"started\": \"{}\", \"exited\": {}, \"errored\": {}}}], \"attrs\": {{\"release\": \"backend@2026.11.20\", \"environment\": \"production\"}}}}",
                    iso((now / 60.0).floor() * 60.0),
                    r.range(1, 400),
                    r.range(0, 5)
                );
                item(&mut s, "{\"type\": \"sessions\"}", &p);
            }
        }
        Kind::ClientReport => {
            let _ = writeln!(s, "{{\"sent_at\": \"{}\", \"sdk\": {BROWSER_SDK}}}", iso(now));
            let p = format!(
                "{{\"timestamp\": {now:.3}, \"discarded_events\": [{{\"reason\": \"sample_rate\", \"category\": \"transaction\", \"quantity\": {}}}, {{\"reason\": \"before_send\", \"category\": \"error\", \"quantity\": {}}}{}]}}",
                r.range(1, 20),
                r.range(0, 3),
                if r.chance(0.3) {
                    ", {\"reason\": \"network_error\", \"category\": \"replay\", \"quantity\": 1}"
                } else {
                    ""
                }
            );
            item(&mut s, "{\"type\": \"client_report\"}", &p);
        }
    }
    let browser = matches!(kind, Kind::BrowserError | Kind::ClientReport) || (kind == Kind::Session && browser);
    Envelope { kind, body: s.into_bytes(), gzip: !browser, browser, event_id }
}

fn session_payload(r: &mut Rng, now: f64, errored: bool) -> String {
    let status = if errored { "ok" } else { *r.pick(&["ok", "ok", "exited", "exited", "crashed"]) };
    format!(
        "{{\"sid\": \"{}\", \"did\": \"{}\", \"init\": {}, \"started\": \"{}\", \"timestamp\": \"{}\", \"status\": \"{status}\", \"errors\": {}, \"duration\": {:.3}, \"attrs\": {{\"release\": \"shop-frontend@2026.11.20\", \"environment\": \"production\", \"user_agent\": {}}}}}",
        hex32(r),
        hex32(r),
        r.chance(0.3),
        iso(now - 600.0),
        iso(now),
        u32::from(errored),
        r.exp(300.0),
        json_str(r.pick::<&str>(&USER_AGENTS))
    )
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::with_capacity(data.len() / 4), flate2::Compression::fast());
    e.write_all(data).expect("writing to memory");
    e.finish().expect("writing to memory")
}

// ---------------------------------------------------------------- HTTP

fn connect(addr: &str) -> std::io::Result<(TcpStream, BufReader<TcpStream>)> {
    let sock = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address"))?;
    let s = TcpStream::connect_timeout(&sock, Duration::from_secs(5))?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    s.set_write_timeout(Some(Duration::from_secs(60)))?;
    let r = BufReader::with_capacity(64 * 1024, s.try_clone()?);
    Ok((s, r))
}

/// Sends one request on a kept-alive connection; the status, the body and whether the server closes.
fn exchange(w: &mut TcpStream, r: &mut BufReader<TcpStream>, req: &[u8]) -> std::io::Result<(u16, Vec<u8>, bool)> {
    w.write_all(req)?;
    let head = read_head(r)?
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the server closed without answering"))?;
    let status = head.start.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = read_body(r, &head, true)?;
    Ok((status, body, head.closes(false)))
}

fn request_bytes(o: &Opts, env: &Envelope, body: &[u8]) -> Vec<u8> {
    let mut h = String::with_capacity(512);
    if env.browser {
        let _ = write!(
            h,
            "POST /api/{}/envelope/?sentry_key={}&sentry_version=7&sentry_client=sentry.javascript.browser%2F7.120.0 HTTP/1.1\r\nHost: {}\r\nUser-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r\nContent-Type: text/plain;charset=UTF-8\r\nOrigin: https://example-shop.ru\r\nAccept: */*\r\n",
            o.project, o.key, o.addr
        );
    } else {
        let _ = write!(
            h,
            "POST /api/{}/envelope/ HTTP/1.1\r\nHost: {}\r\nUser-Agent: sentry.python/2.75.0\r\nContent-Type: application/x-sentry-envelope\r\nX-Sentry-Auth: Sentry sentry_key={}, sentry_version=7, sentry_client=sentry.python/2.75.0\r\nAccept-Encoding: identity\r\n",
            o.project, o.addr, o.key
        );
    }
    if env.gzip {
        h.push_str("Content-Encoding: gzip\r\n");
    }
    let _ = write!(h, "Content-Length: {}\r\n\r\n", body.len());
    let mut req = h.into_bytes();
    req.extend_from_slice(body);
    req
}

// ---------------------------------------------------------------- the run

#[derive(Default)]
struct ConnStats {
    sent: u64,
    acked: u64,
    acked_by_kind: [u64; 4],
    acked_ids: Vec<String>,
    wire_bytes: u64,
    raw_bytes: u64,
    acked_wire_bytes: u64,
    acked_raw_bytes: u64,
    latencies_ms: Vec<f64>,
    statuses: BTreeMap<u16, u64>,
    io_errors: u64,
    reconnects: u64,
    gzipped: u64,
    last_answer: Option<Instant>,
    first_error: Option<String>,
    error_sizes: Vec<usize>,
}

fn kind_index(k: Kind) -> usize {
    match k {
        Kind::BrowserError => 0,
        Kind::PythonError => 1,
        Kind::Session => 2,
        Kind::ClientReport => 3,
    }
}

fn conn_loop(o: &Opts, index: usize, run_tag: u64, start: &Barrier, stop: &AtomicBool) -> ConnStats {
    let mut st = ConnStats::default();
    let mut r = Rng::new(o.seed.wrapping_mul(1000).wrapping_add(index as u64));
    let mut conn = connect(&o.addr).map_err(|e| die(&format!("cannot connect to {}: {e}", o.addr))).ok();
    start.wait();
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        seq += 1;
        let id = format!("{:08x}{:08x}{:016x}", run_tag as u32, index as u32, seq);
        let env = make_envelope(&mut r, o.mix, id, &o.dsn);
        let wire = if env.gzip { gzip(&env.body) } else { env.body.clone() };
        let req = request_bytes(o, &env, &wire);
        if conn.is_none() {
            st.reconnects += 1;
            match connect(&o.addr) {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    st.io_errors += 1;
                    st.first_error.get_or_insert_with(|| format!("connect: {e}"));
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
            }
        }
        let (w, rd) = conn.as_mut().unwrap();
        st.sent += 1;
        st.gzipped += u64::from(env.gzip);
        st.wire_bytes += wire.len() as u64;
        st.raw_bytes += env.body.len() as u64;
        let t = Instant::now();
        match exchange(w, rd, &req) {
            Ok((status, body, closes)) => {
                let now = Instant::now();
                st.latencies_ms.push((now - t).as_secs_f64() * 1000.0);
                st.last_answer = Some(now);
                *st.statuses.entry(status).or_default() += 1;
                if status == 200 {
                    st.acked += 1;
                    st.acked_by_kind[kind_index(env.kind)] += 1;
                    st.acked_wire_bytes += wire.len() as u64;
                    st.acked_raw_bytes += env.body.len() as u64;
                    if let Some(id) = env.event_id {
                        st.acked_ids.push(id);
                        st.error_sizes.push(env.body.len());
                    }
                } else if st.first_error.is_none() {
                    st.first_error =
                        Some(format!("HTTP {status}: {}", String::from_utf8_lossy(&body[..body.len().min(300)])));
                }
                if closes {
                    conn = None;
                }
            }
            Err(e) => {
                st.last_answer = Some(Instant::now());
                st.io_errors += 1;
                st.first_error.get_or_insert_with(|| format!("request: {e}"));
                conn = None;
            }
        }
    }
    st
}

/// An API GET on a kept-alive connection (reconnecting once when the server closed it).
struct Api {
    addr: String,
    token: String,
    conn: Option<(TcpStream, BufReader<TcpStream>)>,
}

impl Api {
    fn get(&mut self, path: &str) -> Result<(u16, Vec<u8>), String> {
        let req = format!("GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\r\n", self.addr, self.token);
        for attempt in 0..2 {
            if self.conn.is_none() {
                self.conn = Some(connect(&self.addr).map_err(|e| format!("GET {path}: {e}"))?);
            }
            let (w, r) = self.conn.as_mut().unwrap();
            match exchange(w, r, req.as_bytes()) {
                Ok((status, body, closes)) => {
                    if closes {
                        self.conn = None;
                    }
                    return Ok((status, body));
                }
                Err(e) => {
                    self.conn = None;
                    if attempt == 1 {
                        return Err(format!("GET {path}: {e}"));
                    }
                }
            }
        }
        unreachable!()
    }
}

/// The sum of the groups' counts and the number of groups (orderwatch's API).
fn group_counts(api: &mut Api) -> Result<(u64, u64), String> {
    let (status, body) = api.get("/api/v1/error-groups?limit=1000")?;
    if status != 200 {
        return Err(format!("GET /api/v1/error-groups: HTTP {status}: {}", String::from_utf8_lossy(&body)));
    }
    // Counts are numbers right after `"count":`; a title holding that text is
    // escaped (`\"count\":`) and cannot match.
    let text = String::from_utf8_lossy(&body);
    let mut sum = 0;
    let mut groups = 0;
    for part in text.split("\"count\":").skip(1) {
        let digits: String = part.trim_start().chars().take_while(char::is_ascii_digit).collect();
        sum += digits.parse::<u64>().unwrap_or(0);
        groups += 1;
    }
    Ok((sum, groups))
}

fn run_count_cmd(cmd: &str) -> Result<u64, String> {
    let out = std::process::Command::new("sh").arg("-c").arg(cmd).output().map_err(|e| format!("{cmd}: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim().parse().map_err(|_| {
        format!(
            "{cmd}: printed {:?}, not a number (stderr: {})",
            text.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        )
    })
}

pub fn main(args: Vec<String>) {
    let o = parse_opts(&args);
    let run_tag = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1) ^ o.seed;
    let mut api = o.token.as_ref().map(|t| Api { addr: o.addr.clone(), token: t.clone(), conn: None });
    let count_now = |api: &mut Option<Api>| -> Result<Option<u64>, String> {
        if let Some(a) = api {
            Ok(Some(group_counts(a)?.0))
        } else if let Some(cmd) = &o.count_cmd {
            Ok(Some(run_count_cmd(cmd)?))
        } else {
            Ok(None)
        }
    };
    let baseline = count_now(&mut api).unwrap_or_else(|e| die(&e)).unwrap_or(0);

    let start = Barrier::new(o.conns + 1);
    let stop = AtomicBool::new(false);
    let cpu_client0 = self_cpu_seconds();
    let (stats, t0, cpu_server0) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..o.conns)
            .map(|i| {
                let (o, start, stop) = (&o, &start, &stop);
                s.spawn(move || conn_loop(o, i, run_tag, start, stop))
            })
            .collect();
        let cpu_server0 = o.pid.as_deref().map(proc_cpu_seconds);
        start.wait();
        let t0 = Instant::now();
        eprintln!("ingest-load sentry: {} connections for {} s to {}", o.conns, o.seconds, o.addr);
        std::thread::sleep(Duration::from_secs_f64(o.seconds));
        stop.store(true, Ordering::Relaxed);
        let stats: Vec<ConnStats> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        (stats, t0, cpu_server0)
    });
    let t_end = stats.iter().filter_map(|s| s.last_answer).max().unwrap_or_else(Instant::now);
    let cpu_server_end = o.pid.as_deref().map(proc_cpu_seconds);
    let cpu_client = self_cpu_seconds() - cpu_client0;
    let secs = (t_end - t0).as_secs_f64();

    let mut all = ConnStats::default();
    for s in stats {
        all.sent += s.sent;
        all.acked += s.acked;
        for k in 0..4 {
            all.acked_by_kind[k] += s.acked_by_kind[k];
        }
        all.acked_ids.extend(s.acked_ids);
        all.wire_bytes += s.wire_bytes;
        all.raw_bytes += s.raw_bytes;
        all.acked_wire_bytes += s.acked_wire_bytes;
        all.acked_raw_bytes += s.acked_raw_bytes;
        all.latencies_ms.extend(s.latencies_ms);
        for (k, v) in s.statuses {
            *all.statuses.entry(k).or_default() += v;
        }
        all.io_errors += s.io_errors;
        all.reconnects += s.reconnects;
        all.gzipped += s.gzipped;
        all.error_sizes.extend(s.error_sizes);
        if all.first_error.is_none() {
            all.first_error = s.first_error;
        }
    }
    let mut unique = all.acked_ids.clone();
    unique.sort_unstable();
    unique.dedup();
    let acked_events = unique.len() as u64;
    all.latencies_ms.sort_by(|a, b| a.total_cmp(b));
    all.error_sizes.sort_unstable();

    // ------------------------------------------------------------ processed
    let mut processed_at = None;
    let mut processed = None;
    let mut at_send_end = None;
    if o.token.is_some() || o.count_cmd.is_some() {
        let target = baseline + acked_events;
        let deadline = Instant::now() + o.wait;
        eprintln!("ingest-load sentry: waiting until the {acked_events} acknowledged events are processed");
        loop {
            let n = match count_now(&mut api) {
                Ok(n) => n.unwrap_or(0),
                Err(e) => {
                    eprintln!("ingest-load sentry: {e}");
                    std::thread::sleep(Duration::from_millis(500));
                    if Instant::now() > deadline {
                        break;
                    }
                    continue;
                }
            };
            let got = n.saturating_sub(baseline);
            at_send_end.get_or_insert(got);
            processed = Some(got);
            if n >= target {
                processed_at = Some(Instant::now());
                break;
            }
            if Instant::now() > deadline {
                eprintln!(
                    "ingest-load sentry: only {got} of {acked_events} events processed after waiting {:?}",
                    o.wait
                );
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let cpu_server_processed = o.pid.as_deref().map(proc_cpu_seconds);

    // ------------------------------------------------------------ read back
    let mut readable = None;
    let mut groups = None;
    if let (Some(a), true) = (api.as_mut(), o.verify) {
        groups = group_counts(a).ok().map(|g| g.1);
        eprintln!("ingest-load sentry: reading the {acked_events} acknowledged events back");
        let missing = AtomicU64::new(0);
        let ok = AtomicU64::new(0);
        let first_missing = Mutex::new(None);
        let k = 4;
        std::thread::scope(|s| {
            for part in unique.chunks(unique.len().div_ceil(k).max(1)) {
                let (missing, ok, first_missing, o) = (&missing, &ok, &first_missing, &o);
                s.spawn(move || {
                    let mut api = Api { addr: o.addr.clone(), token: o.token.clone().unwrap_or_default(), conn: None };
                    for id in part {
                        match api.get(&format!("/api/v1/error-events/{id}")) {
                            Ok((200, _)) => {
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                            other => {
                                missing.fetch_add(1, Ordering::Relaxed);
                                let mut f = first_missing.lock().unwrap();
                                if f.is_none() {
                                    *f = Some(format!("{id}: {:?}", other.map(|(s, _)| s)));
                                }
                            }
                        }
                    }
                });
            }
        });
        if let Some(f) = first_missing.into_inner().unwrap() {
            eprintln!("ingest-load sentry: first event not readable: {f}");
        }
        readable = Some((ok.into_inner(), missing.into_inner()));
    }

    // ------------------------------------------------------------ report
    let lat = &all.latencies_ms;
    let errors_acked = all.acked_by_kind[0] + all.acked_by_kind[1];
    println!("conns={}", o.conns);
    println!("seconds={secs:.3}");
    println!("sent={}", all.sent);
    println!("acked={}", all.acked);
    println!("acked_browser_errors={}", all.acked_by_kind[0]);
    println!("acked_python_errors={}", all.acked_by_kind[1]);
    println!("acked_sessions={}", all.acked_by_kind[2]);
    println!("acked_client_reports={}", all.acked_by_kind[3]);
    println!("acked_events={errors_acked}");
    println!("acked_events_unique={acked_events}");
    println!("envelopes_per_sec={:.1}", all.acked as f64 / secs);
    println!("events_per_sec={:.1}", errors_acked as f64 / secs);
    println!("wire_mb_per_sec={:.2}", all.acked_wire_bytes as f64 / secs / 1e6);
    println!("raw_mb_per_sec={:.2}", all.acked_raw_bytes as f64 / secs / 1e6);
    println!("wire_bytes={}", all.wire_bytes);
    println!("raw_bytes={}", all.raw_bytes);
    println!("gzip_envelopes={}", all.gzipped);
    if !all.error_sizes.is_empty() {
        let sz = &all.error_sizes;
        println!("event_envelope_kb_min={:.1}", sz[0] as f64 / 1000.0);
        println!("event_envelope_kb_p50={:.1}", sz[sz.len() / 2] as f64 / 1000.0);
        println!("event_envelope_kb_max={:.1}", sz[sz.len() - 1] as f64 / 1000.0);
        println!("event_envelope_kb_mean={:.1}", sz.iter().sum::<usize>() as f64 / sz.len() as f64 / 1000.0);
    }
    println!("latency_ms_p50={:.2}", percentile(lat, 50.0));
    println!("latency_ms_p90={:.2}", percentile(lat, 90.0));
    println!("latency_ms_p99={:.2}", percentile(lat, 99.0));
    println!("latency_ms_max={:.2}", lat.last().copied().unwrap_or(f64::NAN));
    let non200: Vec<String> =
        all.statuses.iter().filter(|(k, _)| **k != 200).map(|(k, v)| format!("{k}:{v}")).collect();
    println!("non_200={}", if non200.is_empty() { "none".into() } else { non200.join(",") });
    println!("io_errors={}", all.io_errors);
    println!("reconnects={}", all.reconnects);
    if let Some(e) = &all.first_error {
        println!("first_error={}", e.replace('\n', " "));
    }
    if let Some(p) = processed {
        println!("processed_events={p}");
        println!("processed_at_send_end={}", at_send_end.unwrap_or(0));
    }
    if let Some(at) = processed_at {
        let ps = (at - t0).as_secs_f64();
        println!("processed_seconds={ps:.3}");
        println!("processed_after_send_seconds={:.3}", (at.max(t_end) - t_end).as_secs_f64());
        println!("processed_events_per_sec={:.1}", acked_events as f64 / ps);
        println!("processed_envelopes_per_sec={:.1}", all.acked as f64 / ps);
    }
    if let (Some(a), Some(b)) = (cpu_server0, cpu_server_end) {
        println!("server_cpu_seconds={:.2}", b - a);
        println!("server_cpu_cores={:.2}", (b - a) / secs);
        if let (Some(c), Some(_)) = (cpu_server_processed, processed_at) {
            println!("server_cpu_seconds_processed={:.2}", c - a);
            println!("server_cpu_ms_per_envelope={:.3}", (c - a) * 1000.0 / all.acked.max(1) as f64);
        }
    }
    println!("client_cpu_seconds={cpu_client:.2}");
    if let Some(g) = groups {
        println!("groups={g}");
    }
    if let Some((ok, missing)) = readable {
        println!("events_readable={ok}");
        println!("events_missing={missing}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsn() {
        assert_eq!(parse_dsn("http://abc@127.0.0.1:8080/1"), Some(("abc".into(), "127.0.0.1:8080".into(), "1".into())));
        assert_eq!(parse_dsn("http://abc:secret@host/sub/42"), Some(("abc".into(), "host:80".into(), "42".into())));
        assert_eq!(parse_dsn("https://abc@host/1"), None);
        assert_eq!(parse_dsn("http://host/1"), None);
    }

    #[test]
    fn iso_time() {
        assert_eq!(iso(1_529_763_482.412), "2018-06-23T14:18:02.412Z");
        assert_eq!(iso(0.0), "1970-01-01T00:00:00.000Z");
    }

    /// Every envelope is header + items, each line valid JSON, events in the size range.
    #[test]
    fn envelopes_are_well_formed_and_sized() {
        let mut r = Rng::new(7);
        let mut sizes = Vec::new();
        let mut kinds = [0u32; 4];
        for i in 0..2000 {
            let env = make_envelope(&mut r, [60, 25, 15], format!("{i:032x}"), "http://k@127.0.0.1:1/1");
            kinds[kind_index(env.kind)] += 1;
            let text = String::from_utf8(env.body.clone()).unwrap();
            assert!(text.ends_with('\n'));
            let lines: Vec<&str> = text.trim_end_matches('\n').split('\n').collect();
            assert!(lines.len() >= 3 && lines.len() % 2 == 1, "{text}");
            for l in &lines {
                crate::latency::parse_json(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            }
            if env.kind.is_error() {
                assert_eq!(env.event_id.as_deref(), Some(format!("{i:032x}").as_str()));
                sizes.push(lines[2].len());
            }
        }
        sizes.sort_unstable();
        let (min, med, max) = (sizes[0], sizes[sizes.len() / 2], sizes[sizes.len() - 1]);
        assert!(min >= 4_000 && max <= 60_000 && (10_000..25_000).contains(&med), "{min} {med} {max}");
        assert!((1100..1300).contains(&(kinds[0] + kinds[1])), "{kinds:?}");
    }
}
