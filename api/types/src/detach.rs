//! Docker's detach keys: the key sequence that, typed into an attached
//! session with a TTY (attach, `start -a -i`, `run -it`, `exec -it`), ends
//! the session and leaves the container (or exec) running.
//!
//! The format is moby's `term.ToBytes`: comma-separated keys, each a single
//! character (`a`, `Q`, `@`...), `ctrl-<c>` for `c` in `@`, `a`-`z`, `[`,
//! `\`, `]`, `^`, `_`, or `DEL`. The default is `ctrl-p,ctrl-q`. Shared by
//! berthd (which watches the input of a session it serves) and the CLI
//! (which watches its own terminal, as the docker CLI does).

/// `ctrl-p,ctrl-q`, Docker's default.
pub const DEFAULT_DETACH_KEYS: [u8; 2] = [0x10, 0x11];

/// The control keys `ctrl-@` (0) to `ctrl-_` (31), in code order.
const CTRL: &[u8; 32] = b"@abcdefghijklmnopqrstuvwxyz[\\]^_";

/// Parses a detach key sequence; an empty string means the default.
/// The error says what was wrong and what is accepted.
pub fn parse_detach_keys(keys: &str) -> Result<Vec<u8>, String> {
    if keys.is_empty() {
        return Ok(DEFAULT_DETACH_KEYS.to_vec());
    }
    let mut out = Vec::new();
    for key in keys.split(',') {
        let code = if key.len() == 1 {
            key.as_bytes()[0]
        } else if key == "DEL" {
            127
        } else if let Some(c) = key.strip_prefix("ctrl-").filter(|c| c.len() == 1) {
            match CTRL.iter().position(|x| *x == c.as_bytes()[0]) {
                Some(i) => i as u8,
                None => return Err(unknown(keys, key)),
            }
        } else {
            return Err(unknown(keys, key));
        };
        out.push(code);
    }
    Ok(out)
}

fn unknown(keys: &str, key: &str) -> String {
    format!(
        "Invalid detach keys ({keys}) provided: unknown key '{key}'; give comma-separated keys, \
         each a single character or ctrl-<a-z, @, [, \\, ], ^ or _> (for example ctrl-p,ctrl-q)"
    )
}

/// Watches a session's input for the detach sequence. Bytes that may start
/// the sequence are held back until the next byte tells; bytes that turn
/// out not to be part of it are passed on in order.
#[derive(Debug, Clone)]
pub struct DetachWatch {
    keys: Vec<u8>,
    /// How much of `keys` the input ends with (held back).
    matched: usize,
}

impl DetachWatch {
    /// `keys` as [`parse_detach_keys`] gives them (never empty).
    pub fn new(keys: Vec<u8>) -> DetachWatch {
        assert!(!keys.is_empty(), "detach keys are never empty");
        DetachWatch { keys, matched: 0 }
    }

    /// Takes the next input: appends to `out` what is to be passed on and
    /// returns true when the sequence is complete (the sequence itself is
    /// never passed on; input after it is dropped, as the session ends).
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        for &b in input {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return true;
                }
                continue;
            }
            // The held bytes and `b` do not continue the sequence: keep the
            // longest tail of them that still starts it, pass on the rest.
            let mut seen = self.keys[..self.matched].to_vec();
            seen.push(b);
            let keep = (1..=seen.len().min(self.keys.len() - 1))
                .rev()
                .find(|&n| seen[seen.len() - n..] == self.keys[..n])
                .unwrap_or(0);
            out.extend_from_slice(&seen[..seen.len() - keep]);
            self.matched = keep;
        }
        false
    }

    /// What is held back (the input ended in the middle of a possible
    /// sequence), for a session that ends otherwise.
    pub fn held(&self) -> &[u8] {
        &self.keys[..self.matched]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_as_mobys_to_bytes() {
        assert_eq!(parse_detach_keys("").unwrap(), [16, 17]);
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), [16, 17]);
        assert_eq!(parse_detach_keys("ctrl-a,b").unwrap(), [1, b'b']);
        assert_eq!(
            parse_detach_keys("ctrl-@,ctrl-_,DEL").unwrap(),
            [0, 31, 127]
        );
        assert_eq!(parse_detach_keys("ctrl-\\,ctrl-[").unwrap(), [28, 27]);
        assert_eq!(parse_detach_keys("e,x,i,t").unwrap(), b"exit");
        for bad in [
            "ctrl-P", "ctrl-", "ctrl-1", "abc", "a,,b", ",", "ctrl-ab", "shift-a",
        ] {
            let e = parse_detach_keys(bad).unwrap_err();
            assert!(e.starts_with("Invalid detach keys"), "{bad}: {e}");
        }
    }

    fn run(keys: &[u8], chunks: &[&[u8]]) -> (Vec<u8>, bool) {
        let mut w = DetachWatch::new(keys.to_vec());
        let mut out = Vec::new();
        for c in chunks {
            if w.feed(c, &mut out) {
                return (out, true);
            }
        }
        (out, false)
    }

    #[test]
    fn the_sequence_detaches_and_is_not_passed_on() {
        assert_eq!(run(&[16, 17], &[b"ls\x10\x11rest"]), (b"ls".to_vec(), true));
        // Split across reads.
        assert_eq!(run(&[16, 17], &[b"a\x10", b"\x11"]), (b"a".to_vec(), true));
        // A lone first key is held back, then passed on when the next byte
        // does not continue the sequence.
        assert_eq!(run(&[16, 17], &[b"a\x10"]), (b"a".to_vec(), false));
        assert_eq!(
            run(&[16, 17], &[b"a\x10", b"b"]),
            (b"a\x10b".to_vec(), false)
        );
        // A repeated first key still starts the sequence.
        assert_eq!(run(&[16, 17], &[b"\x10\x10\x11"]), (b"\x10".to_vec(), true));
        assert_eq!(run(b"aab", &[b"aaab"]), (b"a".to_vec(), true));
        assert_eq!(run(b"abab", &[b"ababab"]), (Vec::new(), true));
        assert_eq!(run(b"abac", &[b"ababac"]), (b"ab".to_vec(), true));
        assert_eq!(run(&[1], &[b"x\x01y"]), (b"x".to_vec(), true));
        let mut w = DetachWatch::new(vec![16, 17]);
        let mut out = Vec::new();
        assert!(!w.feed(b"q\x10", &mut out));
        assert_eq!(w.held(), [16]);
    }
}
