//! The dashboard's words in English and Russian: one table, key → (en, ru).
//! Templates call `ctx.t("key")`; handlers `i18n::t(lang, "key")`. A key
//! missing from the table shows as itself (and fails the completeness test,
//! which also reads every template and page module for the keys they use).

use crate::web::session::Lang;

/// (key, English, Russian)
pub const WORDS: &[(&str, &str, &str)] = &[
    // Layout, login, errors
    ("log_in", "Log in", "Войти"),
    ("log_out", "Log out", "Выйти"),
    ("user_name", "Name", "Имя"),
    ("password", "Password", "Пароль"),
    ("required", "Fill this in.", "Заполните это поле."),
    ("login_invalid", "Wrong name or password.", "Неверное имя или пароль."),
    (
        "login_too_many",
        "Too many failed logins: wait 15 minutes and try again.",
        "Слишком много неудачных попыток входа: подождите 15 минут и попробуйте снова.",
    ),
    (
        "login_form_expired",
        "The login form was out of date; it has been renewed: log in again.",
        "Форма входа устарела и обновлена: войдите ещё раз.",
    ),
    ("forbidden_text", "Your role may not open this page.", "Вашей роли эта страница недоступна."),
    (
        "csrf_text",
        "The form was out of date (or sent from elsewhere). Go back, reload the page and send it again.",
        "Форма устарела (или отправлена с другого сайта). Вернитесь, обновите страницу и отправьте снова.",
    ),
    (
        "internal_text",
        "Something failed inside orderwatch; the detail is in its log.",
        "Внутри orderwatch что-то сломалось; подробности в его журнале.",
    ),
    ("no_such_page", "There is no such page.", "Такой страницы нет."),
    ("back_home", "Back to the start", "На главную"),
    ("saved", "Saved.", "Сохранено."),
    // Roles and the menu
    ("admin", "admin", "администратор"),
    ("developer", "developer", "разработчик"),
    ("manager", "manager", "менеджер"),
    ("lost_orders", "Lost orders", "Потерянные заказы"),
    ("rescue_queue", "Rescue queue", "Кому позвонить"),
    ("incidents", "Incidents", "Инциденты"),
    ("log_search", "Log search", "Поиск по логам"),
    ("users", "Users", "Пользователи"),
    // Users and the audit log
    (
        "users_hint",
        "Add users with: orderwatch user add NAME --role admin|developer|manager (the password is read from standard input).",
        "Пользователи добавляются командой: orderwatch user add ИМЯ --role admin|developer|manager (пароль читается со стандартного ввода).",
    ),
    ("role", "Role", "Роль"),
    ("language", "Language", "Язык"),
    ("created", "Created", "Создан"),
    ("audit_log", "Audit log", "Журнал доступа"),
    (
        "audit_hint",
        "Every read of a lost order's customer data.",
        "Каждое чтение данных покупателя из потерянного заказа.",
    ),
    ("when", "When", "Когда"),
    ("who", "Who", "Кто"),
    ("action", "Action", "Действие"),
    ("object", "Object", "Объект"),
    // Lost orders
    ("lost_order", "Lost order", "Потерянный заказ"),
    ("no_lost_order", "There is no lost order", "Нет потерянного заказа"),
    ("no_lost_orders", "No lost orders here.", "Потерянных заказов нет."),
    ("live", "live", "в реальном времени"),
    ("today", "Today", "Сегодня"),
    ("last_7_days", "7 days", "7 дней"),
    ("last_30_days", "30 days", "30 дней"),
    ("all_time", "All time", "За всё время"),
    ("all_causes", "All causes", "Все причины"),
    ("money_lost", "Money in the carts lost", "Сумма потерянных корзин"),
    (
        "counts_hint",
        "Counts leave out the developers' own test orders.",
        "В подсчёт не входят тестовые заказы разработчиков.",
    ),
    ("cause", "Cause", "Причина"),
    ("status", "Status", "Статус"),
    ("period", "Period", "Период"),
    ("any", "Any", "Любой"),
    ("show", "Show", "Показать"),
    ("time", "Time", "Время"),
    ("customer", "Customer", "Покупатель"),
    ("cart", "Cart", "Корзина"),
    ("cart_total", "Cart total", "Сумма корзины"),
    ("unknown", "unknown", "неизвестно"),
    ("choose_from_list", "Choose one of the list.", "Выберите из списка."),
    ("cause_rejected", "Refused by the server", "Отклонён сервером"),
    ("cause_rate_limited", "Rate limit", "Лимит частоты"),
    ("cause_server_error", "Server error", "Ошибка сервера"),
    ("cause_network", "Network", "Сеть"),
    ("cause_client_gone", "Customer left", "Покупатель ушёл"),
    (
        "cause_plain_rejected",
        "The server refused the order the site sent: it did not accept some of its fields.",
        "Сервер отклонил заказ, который отправил сайт: ему не понравились некоторые поля.",
    ),
    (
        "cause_plain_rate_limited",
        "The server refused the order because this customer had ordered too often (the rate limit).",
        "Сервер отклонил заказ, потому что покупатель заказывал слишком часто (лимит частоты).",
    ),
    (
        "cause_plain_server_error",
        "The server failed while placing the order (an error in the backend).",
        "Сервер сломался, оформляя заказ (ошибка в бэкенде).",
    ),
    (
        "cause_plain_network",
        "The order never reached the server: probably the customer's connection (timeout or network error).",
        "Заказ не дошёл до сервера: вероятно, связь у покупателя (таймаут или ошибка сети).",
    ),
    (
        "cause_plain_client_gone",
        "The customer's browser closed the connection before the server answered.",
        "Браузер покупателя закрыл соединение раньше, чем сервер ответил.",
    ),
    ("status_new", "new", "новый"),
    ("status_test", "test (it was me)", "тест (это был я)"),
    ("status_investigating", "investigating", "разбираемся"),
    ("status_reported", "reported", "отправлен отчёт"),
    ("status_rescued", "rescued", "спасён"),
    ("status_lost", "lost", "потерян"),
    ("answered", "answered", "ответ"),
    ("no_answer", "no answer", "нет ответа"),
    ("test_reason", "Recognised as a test", "Распознан как тест"),
    ("refused_fields", "What the server refused:", "Что не понравилось серверу:"),
    (
        "attempts_last_hour",
        "Order attempts from this address in the hour before",
        "Попыток заказа с этого адреса за час до этого",
    ),
    (
        "is_manager",
        "this is a shop manager: the managers' exemption from the limit may be broken",
        "это менеджер магазина: возможно, сломалось исключение менеджеров из лимита",
    ),
    ("browser_saw", "The browser saw", "Браузер увидел"),
    ("backend_error", "Backend error", "Ошибка бэкенда"),
    (
        "contact_missing",
        "No phone or email was found in what the site reported.",
        "В данных сайта нет ни телефона, ни почты.",
    ),
    ("no_cart", "The site reported no cart.", "Сайт не прислал корзину."),
    (
        "cart_truncated",
        "The cart arrived cut short by the browser SDK: raise its normalizeDepth (10 works).",
        "Корзина пришла обрезанной браузерным SDK: увеличьте normalizeDepth (подходит 10).",
    ),
    ("actions", "Actions", "Действия"),
    ("it_was_me", "It was me (a test order)", "Это был я (тестовый заказ)"),
    ("change_status", "Status", "Статус"),
    ("save", "Save", "Сохранить"),
    ("add_to_incident", "Add to an incident", "Добавить в инцидент"),
    ("in_incident", "In incident", "В инциденте"),
    ("new_incident", "A new incident", "Новый инцидент"),
    ("add", "Add", "Добавить"),
    ("no_incident", "There is no incident", "Нет инцидента"),
    ("server_answer", "The server's answer", "Ответ сервера"),
    ("evidence", "Evidence", "Улики"),
    ("request_id", "request", "запрос"),
    ("in_context", "This line in its context", "Эта строка в контексте"),
    ("request", "Request", "Запрос"),
    ("extra", "Extra", "Дополнительно"),
    ("contexts", "Contexts", "Контексты"),
    // Rescue
    ("calls", "Calls", "Звонки"),
    ("no_calls", "No calls yet.", "Звонков ещё не было."),
    ("call_outcome", "Outcome of the call", "Итог звонка"),
    ("note", "Note", "Заметка"),
    ("record_call", "Record the call", "Записать звонок"),
    ("choose_outcome", "Choose what came of the call.", "Выберите, чем закончился звонок."),
    ("note_too_long", "The note is longer than 10 000 characters.", "Заметка длиннее 10 000 символов."),
    ("outcome_rescued", "rescued: the order is placed", "спасён: заказ оформлен"),
    ("outcome_lost", "lost: the customer does not want it", "потерян: покупатель отказался"),
    ("outcome_no_answer", "no answer", "не ответил"),
    ("outcome_call_back", "call back later", "перезвонить позже"),
    (
        "rescue_hint",
        "Customers whose order was lost, newest first: call them, save the order, record what came of it.",
        "Покупатели, чей заказ потерялся, сначала новые: позвоните, спасите заказ, запишите итог.",
    ),
    ("queue_empty", "Nobody to call.", "Звонить некому."),
    // Incidents
    ("incident", "Incident", "Инцидент"),
    ("title", "Title", "Название"),
    ("updated", "Updated", "Обновлён"),
    ("incident_open", "open", "открыт"),
    ("incident_reported", "reported", "отчёт отправлен"),
    ("incident_closed", "closed", "закрыт"),
    ("no_incidents", "No incidents yet.", "Инцидентов пока нет."),
    ("suggestions", "Suggested incidents", "Предлагаемые инциденты"),
    (
        "suggestions_hint",
        "Lost orders in no incident, grouped by cause and what failed.",
        "Потерянные заказы без инцидента, сгруппированные по причине и тому, что сломалось.",
    ),
    ("no_suggestions", "Every lost order is in an incident.", "Все потерянные заказы уже в инцидентах."),
    ("lost_orders_count", "lost orders", "потерянных заказов"),
    ("create_incident", "Create the incident", "Создать инцидент"),
    ("choose_lost_orders", "Choose the lost orders it is about.", "Выберите потерянные заказы, о которых он."),
    ("plain_cause", "The cause in plain words", "Причина простыми словами"),
    (
        "plain_cause_hint",
        "For the head of the business, not for developers: what broke and what it meant for customers.",
        "Для руководителя, а не для разработчиков: что сломалось и что это значило для покупателей.",
    ),
    (
        "plain_cause_required",
        "Write the cause in plain words: the letter is about it.",
        "Напишите причину простыми словами: письмо о ней.",
    ),
    ("what_was_done", "What was done or will be done", "Что сделано или будет сделано"),
    ("assignee", "Assignee", "Ответственный"),
    ("too_long_200", "Longer than 200 characters.", "Длиннее 200 символов."),
    ("too_long_10000", "Longer than 10 000 characters.", "Длиннее 10 000 символов."),
    ("letter_preview", "The letter, as it will be sent", "Письмо, как оно будет отправлено"),
    ("letters_sent", "Letters sent", "Отправленные письма"),
    ("no_letters", "No letter sent yet.", "Писем ещё не отправляли."),
    ("timeline", "Timeline", "История"),
    ("delivered", "delivered", "доставлено"),
    ("delivery_failed", "delivery failed", "не доставлено"),
    ("delivery_pending", "waiting to be delivered", "ждёт доставки"),
    ("attempts", "attempts", "попыток"),
    ("letter_queued", "The letter is on its way.", "Письмо отправляется."),
    ("to", "To", "Кому"),
    ("cc", "Copy", "Копия"),
    ("subject", "Subject", "Тема"),
    ("html_version", "The HTML version", "HTML-версия"),
    ("send_letter", "Send the letter", "Отправить письмо"),
    // log viewer, error groups, settings
    ("error_groups", "Errors", "Ошибки"),
    ("settings", "Settings", "Настройки"),
    ("query", "Query", "Запрос"),
    (
        "query_hint",
        "Words and \"phrases\" must all occur; OR, -exclude, (groups); program:, sender:, severity:, status:>=500, method:POST, path:/api/*, ip:10.0.0.0/8, duration:>1000.",
        "Все слова и \"фразы\" должны встретиться; OR, -исключить, (группы); program:, sender:, severity:, status:>=500, method:POST, path:/api/*, ip:10.0.0.0/8, duration:>1000.",
    ),
    ("query_error_at", "The query does not parse at position", "Запрос не разобран в позиции"),
    ("from_time", "From", "С"),
    ("to_time", "To", "По"),
    ("search", "Search", "Искать"),
    ("times_in_zone", "Times are in", "Время указано в поясе"),
    (
        "bad_time",
        "Not a time; write e.g. 1h (an hour ago), 2026-05-04 12:00 or 2026-05-04T12:00:00+03:00:",
        "Это не время; напишите, например, 1h (час назад), 2026-05-04 12:00 или 2026-05-04T12:00:00+03:00:",
    ),
    ("bad_event_id", "An event id is a number.", "Номер события — это число."),
    (
        "no_such_event",
        "There is no log line (it may have been removed by retention) with the id",
        "Нет строки журнала (возможно, удалена по сроку хранения) с номером",
    ),
    ("saved_searches", "Saved searches", "Сохранённые поиски"),
    ("save_this_search", "Save this search", "Сохранить этот поиск"),
    ("live_tail", "Live tail", "Следить в реальном времени"),
    ("live_on", "live: new lines appear at the top", "в реальном времени: новые строки появляются сверху"),
    (
        "live_lost",
        "The live tail lost its connection; it reconnects by itself.",
        "Связь потеряна; переподключение произойдёт само.",
    ),
    (
        "live_gap",
        "More lines matched than the live tail can catch up with; some were left out: reload the page to search them.",
        "Совпало больше строк, чем можно догнать; часть пропущена: обновите страницу, чтобы найти их.",
    ),
    (
        "live_busy",
        "Too many live tails are open; close one (or use Search) and try again.",
        "Открыто слишком много потоков в реальном времени; закройте один (или используйте поиск) и попробуйте снова.",
    ),
    ("newest", "Newest lines", "Новые строки"),
    ("newer", "Newer", "Новее"),
    ("older", "Older", "Старее"),
    (
        "search_timed_out",
        "The search stopped at its time limit; page on to search further.",
        "Поиск остановлен по времени; листайте дальше, чтобы искать глубже.",
    ),
    ("sender", "Sender", "Отправитель"),
    ("program", "Program", "Программа"),
    ("message", "Message", "Сообщение"),
    ("show_context", "Show the lines around it", "Показать строки вокруг"),
    ("no_lines", "No line matches.", "Ни одна строка не подошла."),
    ("event_in_context", "A log line in its context", "Строка журнала в контексте"),
    (
        "context_hint",
        "The lines before and after it (highlighted) from the same sender:",
        "Строки до и после неё (выделена) от того же отправителя:",
    ),
    ("jump_to_event", "Jump to the line", "К строке"),
    ("all_from_sender", "Search this sender", "Искать по этому отправителю"),
    ("more_before", "There are earlier lines from this sender.", "У этого отправителя есть более ранние строки."),
    ("more_after", "There are later lines from this sender.", "У этого отправителя есть более поздние строки."),
    ("search_name", "Name", "Название"),
    (
        "alerts_hint",
        "Alerts: immediate (every matching line; batch gathers a burst), periodic (interval 1m, 10m, 1h or 1d; at least threshold matches), inactivity (fewer than threshold matches in interval, within active hours). Times are shown in the alert's time zone (default: the server's).",
        "Оповещения: immediate (каждая строка; batch собирает всплеск), periodic (interval 1m, 10m, 1h или 1d; не меньше threshold совпадений), inactivity (меньше threshold совпадений за interval, в активные часы). Время показывается в поясе оповещения (по умолчанию — сервера).",
    ),
    ("add_alert", "Add an alert", "Добавить оповещение"),
    ("alert", "Alert", "Оповещение"),
    ("alerts", "Alerts", "Оповещения"),
    ("alert_kind", "Kind", "Вид"),
    ("alert_rule", "Rule", "Правило"),
    ("immediate", "immediate", "сразу"),
    ("periodic", "periodic", "периодически"),
    ("inactivity", "inactivity", "тишина"),
    ("interval", "Interval", "Интервал"),
    ("threshold", "Threshold", "Порог"),
    ("time_zone", "Time zone", "Часовой пояс"),
    ("batch", "Batch", "Сбор всплеска"),
    ("active_hours", "Active hours", "Активные часы"),
    ("destination", "Destination", "Куда"),
    ("email_to", "Email to", "Email: кому"),
    ("email_cc", "Email cc", "Email: копия"),
    ("hook_url", "Webhook or Slack URL", "URL вебхука или Slack"),
    ("signing_secret", "Signing secret (webhook_json)", "Секрет подписи (webhook_json)"),
    ("bot_token", "Telegram bot token", "Токен Telegram-бота"),
    ("chat_id", "Telegram chat id", "ID чата Telegram"),
    ("remove_alert", "Remove this alert", "Удалить это оповещение"),
    (
        "masked_hint",
        "Secrets are shown masked (***, …); leave them as shown to keep the stored ones.",
        "Секреты показаны скрытыми (***, …); оставьте как есть, чтобы сохранить прежние.",
    ),
    (
        "saved_searches_hint",
        "Every stored line is matched against every saved search; its alerts say when.",
        "Каждая сохранённая строка проверяется всеми сохранёнными поисками; оповещения сообщают о совпадениях.",
    ),
    ("from_config", "config file", "из файла настроек"),
    ("no_saved_searches", "No saved searches yet.", "Сохранённых поисков пока нет."),
    ("new_search", "New saved search", "Новый сохранённый поиск"),
    ("run_search", "Run it", "Искать"),
    ("last_evaluated", "Last evaluated (alert's zone)", "Последняя проверка (в поясе оповещения)"),
    ("no_alerts", "No alerts: the search is only saved.", "Оповещений нет: поиск только сохранён."),
    ("edit", "Edit", "Изменить"),
    ("delete_search", "Delete this saved search", "Удалить этот поиск"),
    ("alert_kind_unknown", "Choose immediate, periodic or inactivity.", "Выберите immediate, periodic или inactivity."),
    ("threshold_number", "A whole number, e.g. 1.", "Целое число, например 1."),
    (
        "choose_destination",
        "Choose where the alert goes (email, webhook, webhook_json, slack or telegram).",
        "Выберите, куда слать оповещение (email, webhook, webhook_json, slack или telegram).",
    ),
    ("no_such_search", "There is no saved search", "Нет сохранённого поиска"),
    (
        "search_from_config",
        "This saved search is defined in the config file: it is read-only here; change it there and restart orderwatch.",
        "Этот поиск задан в файле настроек: здесь его можно только смотреть; измените его там и перезапустите orderwatch.",
    ),
    ("all", "all", "все"),
    ("unresolved", "unresolved", "не решена"),
    ("resolved", "resolved", "решена"),
    ("ignored", "ignored", "игнорируется"),
    ("resolve", "Resolve", "Решена"),
    ("ignore", "Ignore", "Игнорировать"),
    ("unresolve", "Unresolve", "Снова открыть"),
    ("error_title", "Error", "Ошибка"),
    ("culprit", "Culprit", "Где"),
    ("count", "Events", "Событий"),
    ("first_seen", "First seen", "Впервые"),
    ("last_seen", "Last seen", "Последний раз"),
    ("no_groups", "No error groups.", "Групп ошибок нет."),
    ("no_such_group", "There is no error group", "Нет группы ошибок"),
    (
        "bad_group_status",
        "Not a status (unresolved, resolved or ignored):",
        "Не статус (unresolved, resolved или ignored):",
    ),
    ("project", "Project", "Проект"),
    ("events_newest_first", "Events, newest first", "События, сначала новые"),
    ("stack_trace", "Stack trace (most recent call last):", "Стек вызовов (последний вызов внизу):"),
    ("in_function", "in", "в"),
    ("in_app", "in app", "код приложения"),
    ("tags", "Tags", "Теги"),
    ("user", "User", "Пользователь"),
    ("raw_event", "The stored event (not JSON)", "Сохранённое событие (не JSON)"),
    ("no_events", "No events.", "Событий нет."),
    ("level", "level", "уровень"),
    ("platform", "platform", "платформа"),
    ("environment", "environment", "окружение"),
    ("release", "release", "релиз"),
    ("server_name", "server", "сервер"),
    ("transaction", "transaction", "транзакция"),
    ("logger", "logger", "логгер"),
    (
        "settings_hint",
        "What to paste into the shop's configuration, and the configuration orderwatch runs with (read-only; change it in the config file and restart). Secrets are masked.",
        "Что вставить в настройки магазина и с какими настройками работает orderwatch (только просмотр; меняются в файле настроек с перезапуском). Секреты скрыты.",
    ),
    ("sentry_dsn", "Sentry DSN", "Sentry DSN"),
    (
        "dsn_hint",
        "Point each Sentry SDK (backend, browser) at its project's DSN.",
        "Укажите каждому Sentry SDK (бэкенд, браузер) DSN его проекта.",
    ),
    ("checkout_reporter", "Checkout reporter", "Отчёт о неудачном заказе (checkout reporter)"),
    (
        "checkout_hint",
        "Keep a copy of the script on the shop's own origin: it loads even while orderwatch is down, which is when it matters.",
        "Держите копию скрипта на сайте магазина: она загрузится, даже когда orderwatch недоступен, — именно тогда она и нужна.",
    ),
    ("syslog_endpoints", "Syslog endpoints", "Приём syslog"),
    ("transport", "Transport", "Протокол"),
    ("listens_on", "Listens on", "Слушает"),
    ("send_to", "Senders send to", "Куда отправлять"),
    (
        "loopback_only",
        "(this machine only: listen on 0.0.0.0 to receive from others)",
        "(только с этой машины: чтобы принимать с других, слушайте 0.0.0.0)",
    ),
    ("no_syslog", "Syslog listeners are off.", "Приём syslog выключен."),
    ("http_ingest", "HTTP log ingest", "Приём логов по HTTP"),
    (
        "ingest_token_hint",
        "The ingest token was printed at the first start; more can be set in http.ingest_tokens.",
        "Токен приёма был напечатан при первом запуске; дополнительные задаются в http.ingest_tokens.",
    ),
    ("effective_config", "Effective configuration", "Действующие настройки"),
    (
        "effective_config_hint",
        "The config file with its defaults filled in, as orderwatch runs with it.",
        "Файл настроек с подставленными значениями по умолчанию — так, как orderwatch с ними работает.",
    ),
];

/// The word for `key` in `lang`; the key itself when the table lacks it.
pub fn t(lang: Lang, key: &str) -> &'static str {
    match WORDS.iter().find(|w| w.0 == key) {
        Some(&(_, en, ru)) => match lang {
            Lang::En => en,
            Lang::Ru => ru,
        },
        None => {
            tracing::warn!(key, "a dashboard word is missing from web::i18n::WORDS");
            // Leaked once per unknown key at most: a bug shows, it does not crash.
            Box::leak(key.to_owned().into_boxed_str())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_has_both_languages_and_one_key() {
        let mut seen = std::collections::BTreeSet::new();
        for (k, en, ru) in WORDS {
            assert!(seen.insert(*k), "key {k} is in the table twice");
            assert!(!en.trim().is_empty(), "{k} has no English");
            assert!(!ru.trim().is_empty(), "{k} has no Russian");
        }
    }

    /// Keys made from the domain's names: every cause, status and outcome has its words.
    #[test]
    fn every_domain_name_has_words() {
        let mut keys = Vec::new();
        for c in crate::orders::Cause::ALL {
            keys.push(format!("cause_{}", c.as_str()));
            keys.push(format!("cause_plain_{}", c.as_str()));
        }
        keys.extend(crate::web::orders::STATUSES.iter().map(|s| format!("status_{s}")));
        keys.extend(crate::web::incidents::OUTCOMES.iter().map(|s| format!("outcome_{s}")));
        keys.extend(crate::orders::report::INCIDENT_STATUSES.iter().map(|s| format!("incident_{s}")));
        keys.extend(crate::web::session::Role::ALL.iter().map(|r| r.as_str().to_owned()));
        for k in keys {
            assert!(WORDS.iter().any(|w| w.0 == k), "{k} is missing from i18n::WORDS");
        }
    }

    /// Every key a template or a page uses is in the table.
    #[test]
    fn every_key_used_is_in_the_table() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        for dir in ["templates", "src/web/pages"] {
            for e in std::fs::read_dir(root.join(dir)).unwrap() {
                files.push(e.unwrap().path());
            }
        }
        files.push(root.join("src/web/pages/mod.rs"));
        let mut missing = Vec::new();
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
                for pat in ["t(\"", "t(user.lang, \"", "t(lang, \"", "t(l, \"", "key: \""] {
                    for (i, _) in line.match_indices(pat) {
                        // `t(` itself, not `get(` or `expect(`.
                        let before = line[..i].chars().next_back();
                        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                            continue;
                        }
                        let rest = &line[i + pat.len()..];
                        let key = &rest[..rest.find('"').unwrap()];
                        if !WORDS.iter().any(|w| w.0 == key) {
                            missing.push(format!("{}: {key}", f.display()));
                        }
                    }
                }
            }
        }
        assert!(missing.is_empty(), "words missing from i18n::WORDS: {missing:#?}");
    }
}
