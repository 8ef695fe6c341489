//! The HTTP channels: the hosted log service's webhook (form field `payload`),
//! signed JSON webhooks, Slack incoming webhooks and the Telegram Bot API.
//!
//! Every request has a connect timeout and a total timeout, follows no
//! redirects (a webhook URL that redirects is reported, so it can be fixed),
//! and its outcome is: 2xx delivered; 408, 429 and 5xx (and network errors)
//! transient, honouring `Retry-After`; any other answer permanent. Errors
//! never show the URL (it holds the secret for Slack and Telegram), only the
//! status and the start of the answer.
//!
//! `webhook` and `webhook_json` requests carry `X-Orderwatch-Notification-Id`:
//! delivery is at least once, so a receiver that must not act twice keeps the
//! ids it has seen.
//!
//! ## Verifying a signed webhook (`webhook_json`)
//!
//! The request is `POST` with `Content-Type: application/json` and two headers:
//!
//! ```text
//! X-Orderwatch-Timestamp: 1700000000
//! X-Orderwatch-Signature: sha256=639444924cdec78ecef9c210fea1744cf6f97e17f3ca028d96eeb33746ae5e6f
//! ```
//!
//! The signature is HMAC-SHA256, keyed with the shared secret, over the
//! timestamp (Unix seconds, as sent), a `.`, and the raw body bytes, written as
//! lowercase hex. (The example is for the secret `whsec_test` and the body
//! `{"event":"alert","count":3}`.) A receiver:
//!
//! 1. recomputes it over the body exactly as received (before any JSON parsing);
//! 2. compares it with the header in constant time;
//! 3. refuses a timestamp more than 5 minutes from its clock (a replay). Each
//!    attempt is signed anew, so a retry carries a fresh timestamp.
//!
//! ```python
//! import hashlib, hmac, time
//!
//! def verify(secret: bytes, timestamp: str, signature: str, body: bytes) -> bool:
//!     if abs(time.time() - int(timestamp)) > 300:
//!         return False
//!     mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256)
//!     return hmac.compare_digest("sha256=" + mac.hexdigest(), signature)
//! ```
//!
//! or in a shell: `printf '%s.%s' "$TIMESTAMP" "$BODY" | openssl dgst -sha256 -hmac "$SECRET"`.

use std::time::Duration;

use hmac::{KeyInit, Mac};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use serde_json::json;

use super::{NotifySettings, SendError, mask_url, truncate_chars};

/// The Bot API refuses longer texts.
const TELEGRAM_MAX_CHARS: usize = 4096;

/// `sha256=<hex>`: HMAC-SHA256 keyed with `secret` over `"{timestamp}.{body}"`.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let bytes = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 2 * bytes.len());
    out.push_str("sha256=");
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// The HTTP client shared by the HTTP channels.
pub struct HttpSender {
    client: reqwest::Client,
    telegram_api_base: String,
}

/// The error and its causes, without the URL.
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut s = if e.is_timeout() {
        "timed out".to_owned()
    } else {
        e.to_string()
    };
    let mut src = std::error::Error::source(&e);
    while let Some(cause) = src {
        let c = cause.to_string();
        if !s.contains(&c) {
            s.push_str(": ");
            s.push_str(&c);
        }
        src = cause.source();
    }
    s
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    // RFC 9110's IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT".
    let when = jiff::fmt::rfc2822::parse(v).ok()?.timestamp().as_second();
    let secs = when - jiff::Timestamp::now().as_second();
    Some(Duration::from_secs(secs.max(0) as u64))
}

impl HttpSender {
    pub fn new(s: &NotifySettings) -> Result<HttpSender, String> {
        let client = reqwest::Client::builder()
            .connect_timeout(s.connect_timeout)
            .timeout(s.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("orderwatch/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                format!(
                    "cannot set up the HTTP client for notifications: {}",
                    describe(e)
                )
            })?;
        Ok(HttpSender {
            client,
            telegram_api_base: s.telegram_api_base.trim_end_matches('/').to_owned(),
        })
    }

    /// Refuses what is not an http(s) URL before anything is sent (permanent).
    fn check_url(url: &str) -> Result<(), SendError> {
        match url::Url::parse(url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(()),
            _ => Err(SendError::permanent(format!(
                "the URL {} is not an http:// or https:// URL",
                mask_url(url)
            ))),
        }
    }

    /// Sends and reads the answer into an outcome.
    async fn post(&self, what: &str, req: reqwest::RequestBuilder) -> Result<(), SendError> {
        let resp = req
            .send()
            .await
            .map_err(|e| SendError::transient(format!("{what}: {}", describe(e))))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let wait = retry_after(resp.headers());
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(mask_url);
        let body = resp.text().await.unwrap_or_default();
        Err(answer_error(what, status, wait, location, &body))
    }

    pub async fn webhook(&self, id: i64, url: &str, payload: &str) -> Result<(), SendError> {
        Self::check_url(url)?;
        let req = self
            .client
            .post(url)
            .header("X-Orderwatch-Notification-Id", id.to_string())
            .form(&[("payload", payload)]);
        self.post("webhook", req).await
    }

    pub async fn webhook_json(
        &self,
        id: i64,
        url: &str,
        body: &str,
        secret: &str,
    ) -> Result<(), SendError> {
        Self::check_url(url)?;
        if secret.is_empty() {
            return Err(SendError::permanent(
                "the signed webhook has no secret to sign with",
            ));
        }
        let ts = jiff::Timestamp::now().as_second();
        let req = self
            .client
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .header("X-Orderwatch-Notification-Id", id.to_string())
            .header("X-Orderwatch-Timestamp", ts.to_string())
            .header("X-Orderwatch-Signature", signature(secret, ts, body))
            .body(body.to_owned());
        self.post("signed webhook", req).await
    }

    pub async fn slack(&self, url: &str, text: &str) -> Result<(), SendError> {
        Self::check_url(url)?;
        self.post(
            "Slack",
            self.client.post(url).json(&json!({ "text": text })),
        )
        .await
    }

    pub async fn telegram(
        &self,
        bot_token: &str,
        chat_id: &str,
        text: &str,
    ) -> Result<(), SendError> {
        if bot_token.is_empty() || bot_token.contains(['/', '?', '#']) {
            return Err(SendError::permanent(
                "the Telegram bot token is empty or malformed",
            ));
        }
        let url = format!("{}/bot{bot_token}/sendMessage", self.telegram_api_base);
        let body = json!({
            "chat_id": chat_id,
            "text": truncate_chars(text, TELEGRAM_MAX_CHARS),
            "disable_web_page_preview": true,
        });
        self.post("Telegram", self.client.post(url).json(&body))
            .await
    }
}

/// The outcome of a non-2xx answer. Telegram explains itself in
/// `{"description", "parameters": {"retry_after"}}`; others in their body.
fn answer_error(
    what: &str,
    status: StatusCode,
    wait: Option<Duration>,
    location: Option<String>,
    body: &str,
) -> SendError {
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let description = parsed.as_ref().and_then(|v| {
        v.get("description")
            .and_then(|d| d.as_str())
            .map(str::to_owned)
    });
    let telegram_wait = parsed
        .as_ref()
        .and_then(|v| v.pointer("/parameters/retry_after"))
        .and_then(|v| v.as_u64())
        .map(Duration::from_secs);
    let said = description.unwrap_or_else(|| truncate_chars(body.trim(), 300));
    let mut message = format!("{what} answered {status}");
    if !said.is_empty() {
        message.push_str(&format!(": {said}"));
    }
    if status.is_redirection() {
        message.push_str(&format!(
            "; webhooks are not redirected: use the URL it points to{}",
            location.map(|l| format!(" ({l})")).unwrap_or_default()
        ));
    }
    let transient = status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error();
    SendError {
        permanent: !transient,
        message,
        retry_after: telegram_wait.or(wait),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_pythons_hmac() {
        // python3 -c 'import hmac,hashlib; print(hmac.new(b"whsec_test", b"1700000000.{\"event\":\"alert\",\"count\":3}", hashlib.sha256).hexdigest())'
        assert_eq!(
            signature(
                "whsec_test",
                1_700_000_000,
                r#"{"event":"alert","count":3}"#
            ),
            "sha256=639444924cdec78ecef9c210fea1744cf6f97e17f3ca028d96eeb33746ae5e6f"
        );
    }

    #[test]
    fn answers_are_sorted_into_transient_and_permanent() {
        let cases = [
            (400, true),
            (401, true),
            (404, true),
            (408, false),
            (429, false),
            (500, false),
            (503, false),
            (301, true),
        ];
        for (code, permanent) in cases {
            let s = StatusCode::from_u16(code).unwrap();
            let e = answer_error("webhook", s, None, None, "");
            assert_eq!(e.permanent, permanent, "{code}");
        }
        let e = answer_error(
            "Telegram",
            StatusCode::TOO_MANY_REQUESTS,
            None,
            None,
            r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}"#,
        );
        assert_eq!(e.retry_after, Some(Duration::from_secs(7)));
        assert!(
            e.message.contains("Too Many Requests: retry after 7"),
            "{}",
            e.message
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "120".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(120)));
        h.insert(
            RETRY_AFTER,
            "Sun, 06 Nov 1994 08:49:37 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
    }
}
