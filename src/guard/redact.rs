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
        "passwd",
        "pwd",
        "credential",
        "jwt",
        "bearer",
        "private",
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
/// `https://REDACTED@host`. A string the URL parser takes is redacted as the parser reads it
/// (`http:u:p@h`, `http:\\u:p@h` and other spellings it accepts carry credentials too); any
/// other string loses everything between its scheme and its last `@`, so a password holding a
/// `/`, `?` or `#` cannot escape. Nothing changes without an `@`.
pub fn url(u: &str) -> Cow<'_, str> {
    if !u.contains('@') {
        return Cow::Borrowed(u);
    }
    if let Ok(mut p) = url::Url::parse(u) {
        if p.password().is_some() {
            let _ = p.set_password(Some(REDACTED));
            return Cow::Owned(p.to_string());
        }
        if !p.username().is_empty() {
            let _ = p.set_username(REDACTED);
            return Cow::Owned(p.to_string());
        }
        if p.has_authority() || !u.contains("//") {
            return Cow::Borrowed(u);
        }
    }
    let Some(colon) = u.find(':') else {
        return Cow::Borrowed(u);
    };
    let auth_start =
        colon + 1 + u[colon + 1..].len() - u[colon + 1..].trim_start_matches(['/', '\\']).len();
    match u.rfind('@') {
        Some(at) if at >= auth_start => {
            Cow::Owned(format!("{}{REDACTED}{}", &u[..auth_start], &u[at..]))
        }
        _ => Cow::Borrowed(u),
    }
}

/// Redacts every URL-like word of free text (an error message quoting input): each
/// whitespace-separated word holding a `:` before an `@` goes through `url`, quotes and
/// brackets around it kept.
pub fn text(s: &str) -> Cow<'_, str> {
    if !s.contains('@') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut changed = false;
    // words between whitespace of any kind (line breaks and tabs kept as they are)
    let mut rest = s;
    while !rest.is_empty() {
        let ws = rest.len() - rest.trim_start().len();
        out.push_str(&rest[..ws]);
        rest = &rest[ws..];
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let word = &rest[..end];
        rest = &rest[end..];
        let core = word.trim_matches(|c: char| "\"'`()<>[]{},;".contains(c));
        let suspect = core.find(':').is_some_and(|c| core[c..].contains('@'));
        if suspect {
            let start = word.find(core).unwrap_or(0);
            let red = url(core);
            if red != core {
                changed = true;
                out.push_str(&word[..start]);
                out.push_str(&red);
                out.push_str(&word[start + core.len()..]);
                continue;
            }
        }
        out.push_str(word);
    }
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(s)
    }
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
            ("https://tok@cdn.example", "https://REDACTED@cdn.example/"),
            ("http://u:p@[::1]:8/a@b", "http://u:REDACTED@[::1]:8/a@b"),
            ("https://u:p:q@h?x=@", "https://u:REDACTED@h/?x=@"),
            ("https://u:p@@h/", "https://u:REDACTED@h/"),
            ("http:u:hunter2@h/", "http://u:REDACTED@h/"),
            ("http:///u:hunter2@h/", "http://u:REDACTED@h/"),
            ("http:\\\\u:hunter2@h/", "http://u:REDACTED@h/"),
            ("http://u:pa/ss@h/", "http://REDACTED@h/"),
            ("http://u:p#ss@h/", "http://REDACTED@h/"),
            ("ht!tp://u:s3cret@h/x", "ht!tp://REDACTED@h/x"),
            (
                "https://cdn.example/a@2x.jpg",
                "https://cdn.example/a@2x.jpg",
            ),
            ("plain text, no at sign", "plain text, no at sign"),
        ] {
            assert_eq!(url(given), shown, "{given}");
        }
        assert_eq!(
            text("cannot parse \"ht!tps://u:s3cret@h/x\": bad, also (http://a:b@c)"),
            "cannot parse \"ht!tps://REDACTED@h/x\": bad, also (http://a:REDACTED@c/)"
        );
        for secret in ["s3,cr)et", "p'w", "p\"w", "a\u{a0}b"] {
            let msg = format!("error: {:?} is bad", format!("http://u:{secret}@h/x"));
            assert!(!text(&msg).contains(secret), "{}", text(&msg));
        }
        assert_eq!(text("no secret here: a@b"), "no secret here: a@b");
        assert_eq!(
            text("failed: http://u:pw@h/x\nretry\twith http://v:q@h"),
            "failed: http://u:REDACTED@h/x\nretry\twith http://v:REDACTED@h/"
        );
    }

    #[test]
    fn secret_headers_lose_their_values() {
        assert_eq!(header_value("X-Api-Key", "k1"), REDACTED);
        assert_eq!(header_value("authorization", "Basic x"), REDACTED);
        assert_eq!(header_value("Accept", "image/avif"), "image/avif");
    }
}
