//! Nesting-depth guard on raw JSON and TOML text, run before any parser.
//!
//! Parsers, tree conversions and the drop of a parsed tree all recurse, so a
//! document of a million `[` overflows the stack however the parser itself
//! is written. These scans are a single pass over the bytes that keep no
//! more state than the limit allows. They over-estimate rather than
//! under-estimate (a TOML table header counts one level more than it makes),
//! which is harmless at a limit far above what a real document needs.

/// Deepest nesting accepted; the product contract itself needs 2.
pub const MAX_NESTING_DEPTH: usize = 32;

/// True when arrays and objects of a JSON text nest deeper than `limit`.
pub(crate) fn json_depth_exceeds(text: &str, limit: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for byte in text.bytes() {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Lexical {
    Code,
    Comment,
    BasicString,
    LiteralString,
    MultiBasicString,
    MultiLiteralString,
}

/// An open `[` or `{` in value position, with the key depth it was opened at.
#[derive(Clone, Copy)]
struct Open {
    inline_table: bool,
    committed_before: usize,
}

fn quote_of(state: Lexical) -> u8 {
    match state {
        Lexical::LiteralString | Lexical::MultiLiteralString => b'\'',
        _ => b'"',
    }
}

/// True when a TOML text nests deeper than `limit`. Depth here adds up every
/// way TOML nests: the dotted table header in force (`[a.b.c]`), the dots of
/// the key being written (`a.b.c = `), and open arrays and inline tables.
pub fn toml_depth_exceeds(text: &str, limit: usize) -> bool {
    let bytes = text.as_bytes();
    let mut state = Lexical::Code;
    let mut open: Vec<Open> = Vec::new();
    // Depth contributed by the table header in force.
    let mut header_depth = 0usize;
    let mut in_header = false;
    let mut at_line_start = true;
    // Dots of the key being written, and of keys whose `=` was passed.
    let mut in_key = true;
    let mut key_dots = 0usize;
    let mut committed = 0usize;
    let mut index = 0usize;
    while index < bytes.len() {
        let byte = bytes[index];
        let starts_triple = |quote: u8| bytes.get(index + 1) == Some(&quote) && bytes.get(index + 2) == Some(&quote);
        match state {
            Lexical::Comment => {
                if byte == b'\n' {
                    // Code sees the newline too, to reset the line state.
                    state = Lexical::Code;
                    continue;
                }
            }
            Lexical::BasicString | Lexical::LiteralString if byte == b'\n' => {
                // A one-line string cannot span lines: toml refuses the
                // document, and the scan must not stay "inside" it.
                state = Lexical::Code;
                continue;
            }
            Lexical::BasicString | Lexical::MultiBasicString if byte == b'\\' => {
                // Skip the escaped byte (escapes are ASCII), but never a
                // newline that would end a one-line string.
                let escaped_newline = bytes.get(index + 1) == Some(&b'\n');
                index += if escaped_newline && state == Lexical::BasicString {
                    1
                } else {
                    2
                };
                continue;
            }
            Lexical::BasicString | Lexical::LiteralString => {
                if byte == quote_of(state) {
                    state = Lexical::Code;
                }
            }
            Lexical::MultiBasicString | Lexical::MultiLiteralString => {
                let quote = quote_of(state);
                if byte == quote {
                    // A run of three or more quotes closes the string; up to
                    // two of them belong to its content, as toml reads it.
                    let run = bytes[index..].iter().take_while(|&&each| each == quote).count();
                    if run >= 3 {
                        state = Lexical::Code;
                    }
                    index += run;
                    continue;
                }
            }
            Lexical::Code => match byte {
                b' ' | b'\t' | b'\r' => {}
                b'\n' => {
                    at_line_start = true;
                    if open.is_empty() {
                        in_key = true;
                        key_dots = 0;
                        committed = 0;
                    }
                }
                b'#' => state = Lexical::Comment,
                b'"' | b'\'' => {
                    at_line_start = false;
                    let multi = starts_triple(byte);
                    state = match (byte, multi) {
                        (b'"', false) => Lexical::BasicString,
                        (b'"', true) => Lexical::MultiBasicString,
                        (_, false) => Lexical::LiteralString,
                        (_, true) => Lexical::MultiLiteralString,
                    };
                    if multi {
                        index += 3;
                        continue;
                    }
                }
                b'[' if open.is_empty() && (at_line_start || in_header) => {
                    // A table header `[a.b]` or `[[a.b]]`; an array of tables
                    // adds a level for the array.
                    header_depth = if in_header { header_depth + 1 } else { 2 };
                    in_header = true;
                    at_line_start = false;
                    if header_depth > limit {
                        return true;
                    }
                }
                b']' if in_header => in_header = false,
                b'.' if in_header => {
                    header_depth += 1;
                    if header_depth > limit {
                        return true;
                    }
                }
                _ => {
                    at_line_start = false;
                    match byte {
                        b'=' => {
                            committed += key_dots;
                            key_dots = 0;
                            in_key = false;
                        }
                        b'.' if in_key => key_dots += 1,
                        b'[' | b'{' => {
                            open.push(Open {
                                inline_table: byte == b'{',
                                committed_before: committed,
                            });
                            in_key = byte == b'{';
                            key_dots = 0;
                        }
                        b']' | b'}' => {
                            if let Some(closed) = open.pop() {
                                committed = closed.committed_before;
                            }
                            in_key = false;
                            key_dots = 0;
                        }
                        b',' => {
                            if let Some(top) = open.last()
                                && top.inline_table
                            {
                                in_key = true;
                                key_dots = 0;
                                committed = top.committed_before;
                            }
                        }
                        _ => {}
                    }
                    if header_depth + open.len() + committed + key_dots > limit {
                        return true;
                    }
                }
            },
        }
        index += 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_depth_counts_brackets_outside_strings() {
        assert!(!json_depth_exceeds(r#"{"a": {"b": [1, 2]}}"#, 3));
        assert!(json_depth_exceeds(r#"{"a": {"b": [[1]]}}"#, 3));
        assert!(!json_depth_exceeds(r#"{"a": "[[[[[[[[\"[[[["}"#, 1));
    }

    #[test]
    fn toml_depth_counts_every_kind_of_nesting() {
        let shallow = "version = \"14.0.1\"\n[license]\nexpires = 2027-03-31\n\
                       [update]\nsource = \"custom\" # [[[[[[[\nx = 1.5\n";
        assert!(!toml_depth_exceeds(shallow, 4));
        assert!(toml_depth_exceeds(
            &format!("a = {}1{}", "[".repeat(9), "]".repeat(9)),
            8
        ));
        assert!(toml_depth_exceeds(&format!("{}b = 1\n", "a.".repeat(9)), 8));
        assert!(toml_depth_exceeds(&format!("[{}b]\n", "a.".repeat(9)), 8));
        assert!(toml_depth_exceeds(
            &format!("a = {}{}", "{b = ".repeat(9), "}".repeat(9)),
            8
        ));
        assert!(toml_depth_exceeds(&format!("a = {{ {}c = 1 }}\n", "b.".repeat(9)), 8));
    }

    #[test]
    fn toml_depth_ignores_brackets_and_dots_in_strings_and_values() {
        let text = "a = \"[[[[[[[[[[\"\nb = '''\n[[[[[[[[[\n'''\nc = \"\"\"\n{{{{{{{{\"\"\"\n\
                    d = [1.1, 2.2, 3.3, 4.4, 5.5, 6.6, 7.7, 8.8, 9.9]\n\"e.f.g.h.i.j\" = 1\n";
        assert!(!toml_depth_exceeds(text, 3));
    }

    #[test]
    fn toml_depth_resets_after_each_key() {
        let text = "a.b.c = 1\nd.e.f = 2\n[x.y]\nz.w = 1\n[t]\nu.v = 1\n";
        assert!(!toml_depth_exceeds(text, 6));
    }
}
