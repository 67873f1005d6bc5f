//! Untrusted text (log lines, paths, headers a server sent) quoted in a message: control
//! characters are escaped, so a log cannot move the cursor, set the terminal's title or clear
//! the screen, and bidirectional overrides cannot reorder what the reader sees.

use std::borrow::Cow;
use std::fmt::Write;

fn unsafe_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `escape` for a message of several lines: its line breaks stay.
pub fn escape_lines(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c != '\n' && unsafe_char(c)) {
        return Cow::Borrowed(text);
    }
    let lines: Vec<Cow<str>> = text.split('\n').map(escape).collect();
    Cow::Owned(lines.join("\n"))
}

/// `text` with every control character (C0, DEL, C1) and bidi override written as `\xNN` or
/// `\u{NNNN}`; a backslash is doubled only when something was escaped, so plain text is
/// returned as it is.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            c if unsafe_char(c) && (c as u32) < 0x100 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if unsafe_char(c) => {
                let _ = write!(out, "\\u{{{:04x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_escapes_from_input_are_shown_not_obeyed() {
        assert_eq!(escape("GET /a.jpg"), "GET /a.jpg");
        assert_eq!(
            escape("\u{1b}]0;owned\u{7}\u{1b}[2J x\\y"),
            "\\x1b]0;owned\\x07\\x1b[2J x\\\\y"
        );
        assert_eq!(escape("a\u{9b}31m\u{202e}b\tc"), "a\\x9b31m\\u{202e}b\\tc");
        assert!(!escape("\u{7f}").contains('\u{7f}'));
        assert_eq!(escape_lines("a\nb\u{1b}c"), "a\nb\\x1bc");
        assert_eq!(escape_lines("a\nb"), "a\nb");
    }
}
