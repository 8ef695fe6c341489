//! Who is posting: the public key of a Sentry request, from wherever an SDK
//! puts it. Browser SDKs send `?sentry_key=` (no custom headers in a CORS
//! "simple" request) or put the DSN in the envelope header; server SDKs send
//! `X-Sentry-Auth: Sentry sentry_version=7, sentry_key=…, sentry_client=…`.
//! When several are given they must agree, and a DSN must name the project of
//! the URL. Pure functions, no I/O.

/// Why a request's key was not accepted; every message says what to send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error(
        "no Sentry key: send X-Sentry-Auth: Sentry sentry_key=<public key>, ?sentry_key=<public key>, or the DSN in the envelope header"
    )]
    Missing,
    #[error("the X-Sentry-Auth header is malformed: {0}")]
    BadHeader(String),
    #[error("the envelope header's dsn is not a DSN (http(s)://<key>@<host>/<project id>): {0:?}")]
    BadDsn(String),
    #[error("the Sentry keys given disagree ({0}); send one key")]
    Disagree(&'static str),
    #[error("the DSN names project {dsn}, but the request was posted to project {url}")]
    WrongProject { dsn: String, url: i64 },
}

/// The `sentry_key` of an `X-Sentry-Auth` (or legacy `Authorization: Sentry …`) value.
pub fn key_from_header(value: &str) -> Result<Option<String>, AuthError> {
    let v = value.trim();
    let rest = match v.get(..6) {
        Some(p) if p.eq_ignore_ascii_case("sentry") => &v[6..],
        _ => return Err(AuthError::BadHeader(format!("it must start with \"Sentry \", not {:?}", clip(v)))),
    };
    let mut key = None;
    for pair in rest.split(',') {
        let pair = pair.trim();
        if pair.is_empty() {
            continue;
        }
        let (k, val) = pair
            .split_once('=')
            .ok_or_else(|| AuthError::BadHeader(format!("{:?} is not name=value", clip(pair))))?;
        if k.trim() == "sentry_key" {
            let val = val.trim().trim_matches('"');
            if val.is_empty() {
                return Err(AuthError::BadHeader("sentry_key is empty".into()));
            }
            key = Some(val.to_owned());
        }
    }
    Ok(key)
}

/// The public key and project id of a DSN (`http(s)://<key>[:<secret>]@<host>[/prefix]/<project id>`).
pub fn parse_dsn(dsn: &str) -> Result<(String, String), AuthError> {
    let bad = || AuthError::BadDsn(clip(dsn).to_owned());
    let u = reqwest::Url::parse(dsn.trim()).map_err(|_| bad())?;
    if !matches!(u.scheme(), "http" | "https") || u.username().is_empty() {
        return Err(bad());
    }
    let project = u.path_segments().and_then(|mut s| s.rfind(|p| !p.is_empty())).ok_or_else(bad)?;
    Ok((u.username().to_owned(), project.to_owned()))
}

/// The one public key of a request posted to project `url_project`, from the
/// header, the query parameter and the envelope's DSN, whichever are given.
pub fn request_key(
    header: Option<&str>,
    query_key: Option<&str>,
    envelope_dsn: Option<&str>,
    url_project: i64,
) -> Result<String, AuthError> {
    let from_header = header.map(key_from_header).transpose()?.flatten();
    let from_query = query_key.map(str::trim).filter(|k| !k.is_empty()).map(str::to_owned);
    let from_dsn = match envelope_dsn.map(str::trim).filter(|d| !d.is_empty()) {
        Some(d) => {
            let (key, project) = parse_dsn(d)?;
            if project != url_project.to_string() {
                return Err(AuthError::WrongProject { dsn: project, url: url_project });
            }
            Some(key)
        }
        None => None,
    };
    let given = [("header", &from_header), ("query", &from_query), ("dsn", &from_dsn)];
    let mut key: Option<&String> = None;
    for (_, k) in given.iter() {
        if let Some(k) = k {
            match key {
                None => key = Some(k),
                Some(prev) if prev == k => {}
                Some(_) => {
                    return Err(AuthError::Disagree(match (&from_header, &from_query) {
                        (Some(h), Some(q)) if h != q => "X-Sentry-Auth and ?sentry_key",
                        _ => "the envelope's dsn and the request's key",
                    }));
                }
            }
        }
    }
    key.cloned().ok_or(AuthError::Missing)
}

fn clip(s: &str) -> &str {
    match s.char_indices().nth(80) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "3f1c2a9be07d4e0c9b1f6a2d8c4e5f70";

    #[test]
    fn headers_as_sdks_send_them() {
        let python = format!("Sentry sentry_key={KEY}, sentry_version=7, sentry_client=sentry.python/2.19.0");
        assert_eq!(key_from_header(&python).unwrap().as_deref(), Some(KEY));
        let old = format!("Sentry sentry_version=5,sentry_timestamp=1529763482, sentry_key={KEY},sentry_secret=s");
        assert_eq!(key_from_header(&old).unwrap().as_deref(), Some(KEY));
        assert_eq!(key_from_header("Sentry sentry_version=7").unwrap(), None);
        assert!(matches!(key_from_header("Bearer x"), Err(AuthError::BadHeader(_))));
        assert!(matches!(key_from_header("Sentry sentry_key"), Err(AuthError::BadHeader(_))));
        assert!(matches!(key_from_header("Sentry sentry_key="), Err(AuthError::BadHeader(_))));
    }

    #[test]
    fn dsns() {
        assert_eq!(parse_dsn(&format!("http://{KEY}@127.0.0.1:8080/2")).unwrap(), (KEY.into(), "2".into()));
        assert_eq!(parse_dsn(&format!("https://{KEY}:secret@h.example/prefix/7/")).unwrap(), (KEY.into(), "7".into()));
        for bad in ["", "127.0.0.1/2", "http://127.0.0.1/2", "ftp://k@h/2", "http://k@h"] {
            assert!(parse_dsn(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn one_key_from_wherever_it_is_and_they_must_agree() {
        let dsn = format!("http://{KEY}@127.0.0.1:8080/2");
        let header = format!("Sentry sentry_key={KEY}, sentry_version=7");
        assert_eq!(request_key(None, Some(KEY), None, 2).unwrap(), KEY);
        assert_eq!(request_key(Some(&header), None, None, 2).unwrap(), KEY);
        assert_eq!(request_key(None, None, Some(&dsn), 2).unwrap(), KEY);
        assert_eq!(request_key(Some(&header), Some(KEY), Some(&dsn), 2).unwrap(), KEY);
        assert_eq!(request_key(None, None, None, 2), Err(AuthError::Missing));
        assert_eq!(request_key(None, Some("  "), None, 2), Err(AuthError::Missing));
        assert!(matches!(request_key(Some(&header), Some("other"), None, 2), Err(AuthError::Disagree(_))));
        assert!(matches!(request_key(None, Some("other"), Some(&dsn), 2), Err(AuthError::Disagree(_))));
        assert_eq!(
            request_key(None, None, Some(&dsn), 3),
            Err(AuthError::WrongProject { dsn: "2".into(), url: 3 })
        );
        assert!(AuthError::Missing.to_string().contains("sentry_key"));
    }

    proptest::proptest! {
        #[test]
        fn any_input_is_answered_never_a_panic(h in ".{0,200}", q in ".{0,50}", d in ".{0,100}", p in -3i64..10) {
            let _ = key_from_header(&h);
            let _ = parse_dsn(&d);
            let _ = request_key(Some(&h), Some(&q), Some(&d), p);
        }
    }
}
