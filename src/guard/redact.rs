//! One redaction rule for every output (summary.json, samples.jtl, the terminal, `--json`, the
//! report, the mirror's status, S3): a URL's userinfo loses its password (or its user name, when
//! that is all it has, as with token-in-username URLs), and a header whose name looks secret
//! loses its value. Credentials are sent (as Basic auth) but never written.

use std::borrow::Cow;

pub const REDACTED: &str = "REDACTED";

/// Header names whose values never reach an output file or the terminal.
pub(crate) fn is_secret_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "authorization",
        "cookie",
        "token",
        "secret",
        "key",
        "auth",
        "password",
        "signature",
        "session",
    ]
    .iter()
    .any(|s| n.contains(s))
}

/// A header's value as it may be shown.
pub fn header_value<'a>(name: &str, value: &'a str) -> &'a str {
    if is_secret_header(name) {
        REDACTED
    } else {
        value
    }
}

/// `https://user:pass@host/x` -> `https://user:REDACTED@host/x`, `https://tok@host` ->
/// `https://REDACTED@host`. Works on the text (no URL parser): a string that is not a valid URL,
/// quoted in an error message, is redacted the same way, and nothing else of it changes.
pub fn url(u: &str) -> Cow<'_, str> {
    let Some(scheme_end) = u.find("://") else {
        return Cow::Borrowed(u);
    };
    let auth_start = scheme_end + 3;
    let rest = &u[auth_start..];
    let auth_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..auth_len].rfind('@') else {
        return Cow::Borrowed(u);
    };
    let userinfo = &rest[..at];
    let shown = match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:{REDACTED}"),
        None => REDACTED.to_string(),
    };
    Cow::Owned(format!("{}{shown}{}", &u[..auth_start], &rest[at..]))
}

/// Redacts every URL inside free text (an error message from a library, say).
pub fn text(s: &str) -> Cow<'_, str> {
    if !s.contains("://") || !s.contains('@') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("://") {
        // the URL starts after the last separator before its scheme
        let start = rest[..i]
            .rfind(|c: char| c.is_whitespace() || "\"'(<[{,=".contains(c))
            .map_or(0, |p| p + 1);
        let end = rest[i + 3..]
            .find(|c: char| c.is_whitespace() || "\"'>)]},".contains(c))
            .map_or(rest.len(), |p| i + 3 + p);
        out.push_str(&rest[..start]);
        out.push_str(&url(&rest[start..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_and_token_user_names_never_show() {
        for (given, shown) in [
            (
                "https://u:p@cdn.example/x",
                "https://u:REDACTED@cdn.example/x",
            ),
            ("https://tok@cdn.example", "https://REDACTED@cdn.example"),
            ("http://u:p@[::1]:8/a@b", "http://u:REDACTED@[::1]:8/a@b"),
            ("https://u:p:q@h?x=@", "https://u:REDACTED@h?x=@"),
            ("https://u:p@@h/", "https://u:REDACTED@h/"),
            ("not a url u:p@h", "not a url u:p@h"),
            (
                "https://cdn.example/a@2x.jpg",
                "https://cdn.example/a@2x.jpg",
            ),
        ] {
            assert_eq!(url(given), shown, "{given}");
        }
        assert_eq!(
            text("cannot parse \"ht!tps://u:s3cret@h/x\": bad, also (http://a:b@c)"),
            "cannot parse \"ht!tps://u:REDACTED@h/x\": bad, also (http://a:REDACTED@c)"
        );
    }

    #[test]
    fn secret_headers_lose_their_values() {
        assert_eq!(header_value("X-Api-Key", "k1"), REDACTED);
        assert_eq!(header_value("authorization", "Basic x"), REDACTED);
        assert_eq!(header_value("Accept", "image/avif"), "image/avif");
    }
}
