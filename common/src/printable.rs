//! Characters that steer a terminal or reorder what a person reads
//! (issue 24 point 9), and how each front end writes them out. The
//! coordinator refuses them in names at its edge and escapes them in free
//! text (server/src/agents/inbound); the admin CLI and the report escape names
//! again where they print them, for rows stored before that edge existed.

use std::borrow::Cow;

/// C0 and C1 controls, DEL, and Unicode's bidirectional marks, embeddings,
/// overrides and isolates.
pub fn is_steering(c: char) -> bool {
    c.is_control() || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The first steering character of a name, for the refusal's text.
pub fn first_in(value: &str) -> Option<char> {
    value.chars().find(|&c| is_steering(c))
}

/// Writes out every steering character of free text except `\n` and `\t`
/// as `\u{…}`, then keeps at most `max` bytes (on a character boundary,
/// ending in "…" when cut). Leaves text with nothing to escape untouched.
pub fn escape_text(value: &mut String, max: usize) {
    let steers = |c: char| is_steering(c) && c != '\n' && c != '\t';
    if !value.chars().any(steers) {
        return;
    }
    let mut escaped = String::with_capacity(value.len() + 16);
    for c in value.chars() {
        if steers(c) {
            escaped.extend(c.escape_unicode());
        } else {
            escaped.push(c);
        }
    }
    if escaped.len() > max {
        let mut cut = max.saturating_sub('…'.len_utf8());
        while !escaped.is_char_boundary(cut) {
            cut -= 1;
        }
        escaped.truncate(cut);
        escaped.push('…');
    }
    *value = escaped;
}

/// A name as a terminal may print it: every steering character (newlines
/// too: a name is one line) written out as `\u{…}`.
pub fn printable(value: &str) -> Cow<'_, str> {
    if !value.chars().any(is_steering) {
        return Cow::Borrowed(value);
    }
    let mut escaped = String::with_capacity(value.len() + 16);
    for c in value.chars() {
        if is_steering(c) {
            escaped.extend(c.escape_unicode());
        } else {
            escaped.push(c);
        }
    }
    Cow::Owned(escaped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_escapes_and_bidi_overrides_are_steering() {
        for c in [
            '\u{1b}', '\u{7}', '\u{7f}', '\u{9b}', '\n', '\r', '\u{202e}', '\u{2066}',
        ] {
            assert!(is_steering(c), "{c:?}");
        }
        for c in ['a', '-', 'é', '大', ' '] {
            assert!(!is_steering(c), "{c:?}");
        }
        assert_eq!(first_in("pc\u{1b}]52;c;aGk=\u{7}"), Some('\u{1b}'));
        assert_eq!(first_in("大阪-pc-01"), None);
    }

    #[test]
    fn text_keeps_newlines_and_writes_out_escapes() {
        let mut output = "\u{1b}[31mfailed\u{1b}[0m\nline 2\tcol\r".to_string();
        escape_text(&mut output, 4096);
        assert_eq!(output, "\\u{1b}[31mfailed\\u{1b}[0m\nline 2\tcol\\u{d}");
        let mut plain = "nothing to do\n".to_string();
        escape_text(&mut plain, 4);
        assert_eq!(plain, "nothing to do\n", "untouched when nothing steers");
    }

    #[test]
    fn printable_names_are_one_line_without_escapes() {
        assert_eq!(printable("pc-01"), "pc-01");
        assert_eq!(printable("pc\u{1b}]52;c;x\u{7}\n"), "pc\\u{1b}]52;c;x\\u{7}\\u{a}");
    }

    #[test]
    fn escaped_text_stays_within_its_limit_on_a_character_boundary() {
        let mut output = format!("{}大", "\u{1b}".repeat(100));
        escape_text(&mut output, 64);
        assert!(output.len() <= 64, "{}", output.len());
        assert!(output.ends_with('…'));
        assert!(!output.contains('\u{1b}'));
    }
}
