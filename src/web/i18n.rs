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
    (
        "log_viewer_later",
        "The log viewer is not built yet. Meanwhile: orderwatch search QUERY, or GET /api/v1/events/search.json.",
        "Просмотр логов ещё не готов. Пока: orderwatch search ЗАПРОС или GET /api/v1/events/search.json.",
    ),
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
