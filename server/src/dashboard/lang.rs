//! The dashboard's language: `?setlang=ja` (the switch in the page header)
//! chooses it and is remembered in a cookie; without a choice, the
//! browser's `Accept-Language` decides; English otherwise.
//!
//! The cookie holds only `en` or `ja` and is no credential (the admin
//! certificate is), so it is readable by the page and not `Secure`-only:
//! the dashboard is HTTPS anyway, and the browser test reaches it through a
//! plain loopback forwarder.

use axum::http::{HeaderMap, HeaderValue, header};
use rollcall_common::i18n::Lang;

pub const COOKIE: &str = "rollcall_lang";
/// The query parameter of the language switch.
pub const SWITCH: &str = "setlang";
/// A year: the choice outlives the browser session.
const COOKIE_MAX_AGE_S: u32 = 365 * 24 * 3600;

/// What the request asks for: the language, and whether it was chosen just
/// now (then the response sets the cookie).
pub fn of_request(query: Option<&str>, headers: &HeaderMap) -> (Lang, bool) {
    if let Some(chosen) = query.and_then(switched) {
        return (chosen, true);
    }
    if let Some(remembered) = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(from_cookie)
    {
        return (remembered, false);
    }
    let accepted = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|value| value.to_str().ok())
        .map_or(Lang::En, Lang::from_accept_language);
    (accepted, false)
}

fn switched(query: &str) -> Option<Lang> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == SWITCH).then(|| Lang::from_code(value)).flatten()
    })
}

fn from_cookie(header: &str) -> Option<Lang> {
    header.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        (key == COOKIE).then(|| Lang::from_code(value.trim())).flatten()
    })
}

/// The `Set-Cookie` value that remembers `lang`.
pub fn cookie(lang: Lang) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{COOKIE}={}; Path=/; Max-Age={COOKIE_MAX_AGE_S}; SameSite=Strict",
        lang.code()
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("rollcall_lang=en; Path=/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn the_switch_beats_the_cookie_which_beats_accept_language() {
        let browser = headers(&[
            (header::COOKIE, "other=1; rollcall_lang=en"),
            (header::ACCEPT_LANGUAGE, "ja,en;q=0.5"),
        ]);
        assert_eq!(of_request(Some("cause=license&setlang=ja"), &browser), (Lang::Ja, true));
        assert_eq!(of_request(None, &browser), (Lang::En, false));
        let japanese = headers(&[(header::ACCEPT_LANGUAGE, "fr;q=0.9, ja-JP;q=0.8, en;q=0.1")]);
        assert_eq!(of_request(Some("setlang=xx"), &japanese), (Lang::Ja, false));
        assert_eq!(of_request(None, &HeaderMap::new()), (Lang::En, false));
        assert_eq!(
            cookie(Lang::Ja).to_str().unwrap().split(';').next(),
            Some("rollcall_lang=ja")
        );
    }
}
