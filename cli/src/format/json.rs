//! Re-indents JSON text without reparsing it, like Go's `json.Indent`, so
//! that `inspect` prints the daemon's fields in the daemon's order.

/// Indents `src` with `indent` per level. Empty arrays and objects stay
/// `[]`/`{}`; the output has no trailing newline.
pub fn indent(src: &[u8], indent: &str) -> String {
    let mut out: Vec<u8> = Vec::with_capacity(src.len() * 2);
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    // An opening bracket whose newline is deferred until we know the
    // container is not empty.
    let mut pending_open = false;

    let newline = |out: &mut Vec<u8>, depth: usize| {
        out.push(b'\n');
        for _ in 0..depth {
            out.extend_from_slice(indent.as_bytes());
        }
    };

    for &c in src {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == b'\\' {
                escaped = true;
            } else if c == b'"' {
                in_string = false;
            }
            continue;
        }
        if matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
            continue;
        }
        if pending_open {
            pending_open = false;
            if c == b']' || c == b'}' {
                depth -= 1;
                out.push(c);
                continue;
            }
            newline(&mut out, depth);
        }
        match c {
            b'"' => {
                in_string = true;
                out.push(c);
            }
            b'{' | b'[' => {
                out.push(c);
                depth += 1;
                pending_open = true;
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            b',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            b':' => {
                out.extend_from_slice(b": ");
            }
            _ => out.push(c),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indents_like_go() {
        let src = br#"[{"Id":"x","Args":[],"Env":["A=1","B=2"],"M":{},"S":"a, b: {c}"}]"#;
        assert_eq!(
            indent(src, "    "),
            r#"[
    {
        "Id": "x",
        "Args": [],
        "Env": [
            "A=1",
            "B=2"
        ],
        "M": {},
        "S": "a, b: {c}"
    }
]"#
        );
    }

    #[test]
    fn handles_escapes_and_whitespace() {
        let src = b"{ \"a\\\"b\" : [ 1 , 2 ] }\n";
        assert_eq!(
            indent(src, "  "),
            "{\n  \"a\\\"b\": [\n    1,\n    2\n  ]\n}"
        );
    }
}
