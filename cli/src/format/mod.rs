//! Output formatting shared by commands: tables, units, JSON indentation and
//! the `--format` template subset. Pure functions only; no I/O beyond
//! writing into a caller's buffer.

pub mod json;
pub mod table;
pub mod template;
pub mod units;

/// Docker's `stringid.TruncateID`: drop `sha256:` and keep 12 characters.
pub fn short_id(id: &str) -> String {
    let id = id.split_once(':').map_or(id, |(_, hex)| hex);
    id.chars().take(12).collect()
}

/// Docker's `formatter.Ellipsis`: at most `max` characters, the last one
/// `…` when the text had to be cut.
pub fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// Go's `strconv.Quote`: double quotes, with `"`, `\` and control characters
/// escaped.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ids() {
        assert_eq!(short_id("sha256:0123456789abcdef0123"), "0123456789ab");
        assert_eq!(short_id("0123456789abcdef"), "0123456789ab");
        assert_eq!(short_id("abc"), "abc");
    }

    #[test]
    fn command_column_like_docker_ps() {
        assert_eq!(go_quote(&ellipsis("/hello.wasm", 20)), "\"/hello.wasm\"");
        assert_eq!(
            go_quote(&ellipsis("/bin/sh -c 'while true; do sleep 1; done'", 20)),
            "\"/bin/sh -c 'while t…\""
        );
        assert_eq!(ellipsis("12345678901234567890", 20), "12345678901234567890");
        assert_eq!(go_quote("a\"b\\c\n"), r#""a\"b\\c\n""#);
    }
}
