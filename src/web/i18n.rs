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
