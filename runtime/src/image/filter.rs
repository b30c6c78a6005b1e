//! The `filters` of `GET /images/json` (`docker images`), applied as
//! moby's image service applies them: `reference` (Go's `path.Match` glob
//! on each of an image's names, through `reference.FamiliarMatch`),
//! `dangling`, `label`, `before` and `since`.
//!
//! A `reference` filter also narrows what an image is listed under: only
//! the tags and repo digests that match are shown, as in Docker. This
//! module reads image records; it changes nothing.

use super::{ImageRecord, Images};
use crate::error::{Error, Result};
use crate::util;

/// Parsed `filters` of the image list.
#[derive(Debug, Clone, Default)]
pub struct ListFilters {
    /// Glob patterns: an image is listed under the names that match one.
    reference: Vec<String>,
    /// `Some(true)`: only images without tags; `Some(false)`: only images
    /// with a tag or a repo digest.
    dangling: Option<bool>,
    /// `KEY` or `KEY=VALUE`: all must match.
    label: Vec<String>,
    /// Only images created before (`before`) or after (`since`) this one.
    before: Option<String>,
    since: Option<String>,
}

/// An image as the filtered list shows it.
#[derive(Debug, Clone)]
pub struct Listed {
    pub record: ImageRecord,
    /// `name:tag`, those that passed the reference filter.
    pub tags: Vec<String>,
    /// `name@sha256:...`, those that passed the reference filter.
    pub digests: Vec<String>,
}

impl ListFilters {
    /// Parses Docker's filter JSON (`{"reference":["app*"]}`, or the old
    /// `{"reference":{"app*":true}}`). Patterns are checked here, so a bad
    /// one is refused even when no image would reach it.
    pub fn parse(json: &str) -> Result<ListFilters> {
        let mut f = ListFilters::default();
        if json.trim().is_empty() {
            return Ok(f);
        }
        for (key, values) in crate::container::filter_pairs(json)? {
            match key.as_str() {
                "reference" => {
                    for p in &values {
                        check_pattern(p).map_err(|why| {
                            Error::invalid(format!(
                                "invalid reference filter {p:?}: {why}: use * and ? wildcards, [a-z] classes and \\ escapes as in Go's path.Match"
                            ))
                        })?;
                    }
                    f.reference = values;
                }
                "label" => f.label = values,
                "dangling" => {
                    let mut want = None;
                    for v in &values {
                        let b = match v.to_ascii_lowercase().as_str() {
                            "true" | "1" => true,
                            "false" | "0" => false,
                            _ => {
                                return Err(Error::invalid(format!(
                                    "invalid filter 'dangling={v}': use dangling=true or dangling=false"
                                )));
                            }
                        };
                        // Docker: true wins when both are given.
                        want = Some(want.unwrap_or(false) || b);
                    }
                    f.dangling = want;
                }
                "before" => f.before = values.last().cloned(),
                "since" => f.since = values.last().cloned(),
                other => {
                    return Err(Error::invalid(format!(
                        "invalid filter '{other}': berth filters images by reference, dangling, label, before and since"
                    )));
                }
            }
        }
        Ok(f)
    }
}

impl Images {
    /// `GET /images/json`: the images that pass `f`, newest first, each
    /// with the names it is listed under. `before` and `since` name an
    /// image that must exist (404 otherwise, as in Docker).
    pub fn list_filtered(&self, f: &ListFilters) -> Result<Vec<Listed>> {
        let created = |r: &ImageRecord| util::parse_rfc3339(&r.created);
        let before = f.before.as_deref().map(|n| self.resolve(n)).transpose()?;
        let since = f.since.as_deref().map(|n| self.resolve(n)).transpose()?;
        let before = before.map(|r| created(&r));
        let since = since.map(|r| created(&r));
        let named = |name: &str| {
            f.reference.is_empty() || f.reference.iter().any(|p| familiar_match(p, name))
        };
        let mut out = Vec::new();
        for (record, all_tags) in self.list() {
            let t = created(&record);
            if let Some(b) = before
                && !(t.is_some() && b.is_some() && t < b)
            {
                continue;
            }
            if let Some(s) = since
                && !(t.is_some() && s.is_some() && t > s)
            {
                continue;
            }
            if !f.label.is_empty() {
                let labels = self
                    .handle(&record)
                    .ok()
                    .and_then(|h| h.config.config.map(|c| c.labels))
                    .unwrap_or_default();
                let ok = f.label.iter().all(|l| match l.split_once('=') {
                    Some((k, v)) => labels.get(k).map(String::as_str) == Some(v),
                    None => labels.contains_key(l),
                });
                if !ok {
                    continue;
                }
            }
            let tags: Vec<String> = all_tags.into_iter().filter(|t| named(t)).collect();
            let digests: Vec<String> = record
                .repo_digests
                .iter()
                .filter(|d| named(d))
                .cloned()
                .collect();
            if f.dangling == Some(true) && !tags.is_empty() {
                continue;
            }
            if tags.is_empty()
                && digests.is_empty()
                && (f.dangling == Some(false) || !f.reference.is_empty())
            {
                continue;
            }
            out.push(Listed {
                record,
                tags,
                digests,
            });
        }
        Ok(out)
    }
}

/// moby's `reference.FamiliarMatch`: `pattern` against the familiar
/// reference (`127.0.0.1:5000/app:v1`, `app@sha256:...`), then against
/// its name alone (`127.0.0.1:5000/app`).
pub fn familiar_match(pattern: &str, reference: &str) -> bool {
    if path_match(pattern, reference) == Ok(true) {
        return true;
    }
    path_match(pattern, familiar_name(reference)) == Ok(true)
}

/// The repository of a familiar reference: without `@digest`, and without
/// a `:tag` after the last `/` (a registry's port stays).
fn familiar_name(reference: &str) -> &str {
    berth_api_types::reference::split(reference).name
}

/// Why a pattern is malformed, if it is.
fn check_pattern(pattern: &str) -> std::result::Result<(), &'static str> {
    let mut rest = pattern;
    while !rest.is_empty() {
        let (_, chunk, r) = scan_chunk(rest);
        rest = r;
        match_chunk(chunk, "")?;
    }
    Ok(())
}

/// Go's `path.Match`: `*` is any run of characters but `/`, `?` one
/// character but `/`, `[...]` a class (`^` negates, `a-z` ranges), `\`
/// escapes. `Err` for a malformed pattern.
pub fn path_match(pattern: &str, name: &str) -> std::result::Result<bool, &'static str> {
    let mut pattern = pattern;
    let mut name = name;
    'pattern: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            // A trailing * matches the rest unless it has a /.
            return Ok(!name.contains('/'));
        }
        // A match at the current position; the last chunk must use up
        // the name.
        match match_chunk(chunk, name) {
            Ok(Some(t)) if t.is_empty() || !pattern.is_empty() => {
                name = t;
                continue;
            }
            Err(e) => return Err(e),
            _ => {}
        }
        if star {
            // Skip characters (never a /) before the chunk.
            for (i, c) in name.char_indices() {
                if c == '/' {
                    break;
                }
                match match_chunk(chunk, &name[i + c.len_utf8()..])? {
                    Some(t) if pattern.is_empty() && !t.is_empty() => continue,
                    Some(t) => {
                        name = t;
                        continue 'pattern;
                    }
                    None => {}
                }
            }
        }
        check_pattern(pattern)?;
        return Ok(false);
    }
    Ok(name.is_empty())
}

/// The next chunk of a pattern: whether stars lead it, the chunk (up to
/// the next star outside a class), and the rest.
fn scan_chunk(pattern: &str) -> (bool, &str, &str) {
    let trimmed = pattern.trim_start_matches('*');
    let star = trimmed.len() != pattern.len();
    let b = trimmed.as_bytes();
    let mut in_range = false;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if i + 1 < b.len() => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => break,
            _ => {}
        }
        i += 1;
    }
    (star, &trimmed[..i], &trimmed[i..])
}

/// Matches a chunk (no stars) at the start of `s`: the rest of `s` if it
/// matches. The whole chunk is checked for syntax even after a mismatch.
fn match_chunk<'a>(chunk: &str, s: &'a str) -> std::result::Result<Option<&'a str>, &'static str> {
    const BAD: &str = "syntax error in pattern";
    let mut chunk = chunk;
    let mut s = s;
    let mut failed = false;
    while let Some(c0) = chunk.chars().next() {
        if !failed && s.is_empty() {
            failed = true;
        }
        match c0 {
            '[' => {
                let mut r = '\0';
                if !failed {
                    r = s.chars().next().unwrap_or('\0');
                    s = &s[r.len_utf8()..];
                }
                chunk = &chunk[1..];
                let negated = chunk.starts_with('^');
                if negated {
                    chunk = &chunk[1..];
                }
                let mut matched = false;
                let mut ranges = 0;
                loop {
                    if chunk.starts_with(']') && ranges > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    let (lo, rest) = class_char(chunk).ok_or(BAD)?;
                    chunk = rest;
                    let mut hi = lo;
                    if let Some(after) = chunk.strip_prefix('-') {
                        let (h, rest) = class_char(after).ok_or(BAD)?;
                        hi = h;
                        chunk = rest;
                    }
                    if lo <= r && r <= hi {
                        matched = true;
                    }
                    ranges += 1;
                }
                if matched == negated {
                    failed = true;
                }
            }
            '?' => {
                if !failed {
                    let c = s.chars().next().unwrap_or('/');
                    if c == '/' {
                        failed = true;
                    }
                    s = &s[c.len_utf8().min(s.len())..];
                }
                chunk = &chunk[1..];
            }
            _ => {
                let lit = if c0 == '\\' {
                    chunk = &chunk[1..];
                    chunk.chars().next().ok_or(BAD)?
                } else {
                    c0
                };
                if !failed {
                    if !s.starts_with(lit) {
                        failed = true;
                    } else {
                        s = &s[lit.len_utf8()..];
                    }
                }
                chunk = &chunk[lit.len_utf8()..];
            }
        }
    }
    Ok((!failed).then_some(s))
}

/// A possibly escaped character of a class, and what follows it; `None`
/// when the class is malformed (empty, unterminated, a bare `-` or `]`).
fn class_char(chunk: &str) -> Option<(char, &str)> {
    let chunk = match chunk.chars().next()? {
        '-' | ']' => return None,
        '\\' => &chunk[1..],
        _ => chunk,
    };
    let c = chunk.chars().next()?;
    let rest = &chunk[c.len_utf8()..];
    (!rest.is_empty()).then_some((c, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_match_like_go() {
        // Cases from Go's path/match_test.go.
        let cases: &[(&str, &str, Result<bool, ()>)] = &[
            ("abc", "abc", Ok(true)),
            ("*", "abc", Ok(true)),
            ("*c", "abc", Ok(true)),
            ("a*", "a", Ok(true)),
            ("a*", "abc", Ok(true)),
            ("a*", "ab/c", Ok(false)),
            ("a*/b", "abc/b", Ok(true)),
            ("a*/b", "a/c/b", Ok(false)),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", Ok(true)),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", Ok(true)),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", Ok(false)),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", Ok(false)),
            ("a*b?c*x", "abxbbxdbxebxczzx", Ok(true)),
            ("a*b?c*x", "abxbbxdbxebxczzy", Ok(false)),
            ("ab[c]", "abc", Ok(true)),
            ("ab[b-d]", "abc", Ok(true)),
            ("ab[e-g]", "abc", Ok(false)),
            ("ab[^c]", "abc", Ok(false)),
            ("ab[^b-d]", "abc", Ok(false)),
            ("ab[^e-g]", "abc", Ok(true)),
            ("a\\*b", "a*b", Ok(true)),
            ("a\\*b", "ab", Ok(false)),
            ("a?b", "a☺b", Ok(true)),
            ("a[^a]b", "a☺b", Ok(true)),
            ("a???b", "a☺b", Ok(false)),
            ("a[^a][^a][^a]b", "a☺b", Ok(false)),
            ("[a-ζ]*", "α", Ok(true)),
            ("*[a-ζ]", "A", Ok(false)),
            ("a?b", "a/b", Ok(false)),
            ("a*b", "a/b", Ok(false)),
            ("[\\]a]", "]", Ok(true)),
            ("[\\-]", "-", Ok(true)),
            ("[x\\-]", "x", Ok(true)),
            ("[x\\-]", "-", Ok(true)),
            ("[x\\-]", "z", Ok(false)),
            ("[\\-x]", "x", Ok(true)),
            ("[\\-x]", "-", Ok(true)),
            ("[\\-x]", "a", Ok(false)),
            ("[]a]", "]", Err(())),
            ("[-]", "-", Err(())),
            ("[x-]", "x", Err(())),
            ("[x-]", "-", Err(())),
            ("[x-]", "z", Err(())),
            ("[-x]", "x", Err(())),
            ("[-x]", "-", Err(())),
            ("[-x]", "a", Err(())),
            ("\\", "a", Err(())),
            ("[a-b-c]", "a", Err(())),
            ("[", "a", Err(())),
            ("[^", "a", Err(())),
            ("[^bc", "a", Err(())),
            ("a[", "a", Err(())),
            ("a[", "ab", Err(())),
            ("a[", "x", Err(())),
            ("a/b[", "x", Err(())),
            ("*x", "xxx", Ok(true)),
        ];
        for (p, s, want) in cases {
            let got = path_match(p, s).map_err(|_| ());
            assert_eq!(got, *want, "path.Match({p:?}, {s:?})");
            assert_eq!(check_pattern(p).is_ok(), want.is_ok(), "check {p:?}");
        }
    }

    #[test]
    fn familiar_match_like_moby() {
        // The name alone, with a registry port: the old filter missed it.
        assert!(familiar_match(
            "127.0.0.1:5000/app",
            "127.0.0.1:5000/app:latest"
        ));
        assert!(familiar_match(
            "127.0.0.1:5000/app:latest",
            "127.0.0.1:5000/app:latest"
        ));
        assert!(!familiar_match(
            "127.0.0.1:5000/app:v2",
            "127.0.0.1:5000/app:latest"
        ));
        assert!(familiar_match(
            "127.0.0.1:*/app",
            "127.0.0.1:5000/app:latest"
        ));
        assert!(familiar_match("*/app", "127.0.0.1:5000/app:v1"));
        assert!(!familiar_match("app", "127.0.0.1:5000/app:v1"));
        assert!(!familiar_match("*", "127.0.0.1:5000/app:v1"));
        assert!(familiar_match("*", "busybox:latest"));
        assert!(familiar_match("busy*:lat?st", "busybox:latest"));
        assert!(familiar_match("app:v[0-9]", "app:v1"));
        // Digests: the whole familiar string, or the name.
        let d = format!("localhost:5000/app@sha256:{}", "a".repeat(64));
        assert!(familiar_match("localhost:5000/app", &d));
        assert!(familiar_match(&d, &d));
        assert!(familiar_match("localhost:5000/app@sha256:*", &d));
        assert!(!familiar_match("localhost:5000/app:latest", &d));
        assert_eq!(familiar_name("a/b:1"), "a/b");
        assert_eq!(familiar_name("h:5000/a"), "h:5000/a");
        assert_eq!(familiar_name("h:5000/a:v"), "h:5000/a");
    }

    #[test]
    fn parse_checks_keys_values_and_patterns() {
        assert!(ListFilters::parse(r#"{"reference":["a["]}"#).is_err());
        assert!(ListFilters::parse(r#"{"dangling":["maybe"]}"#).is_err());
        assert!(ListFilters::parse(r#"{"bogus":["x"]}"#).is_err());
        let f = ListFilters::parse(r#"{"dangling":{"true":true},"before":["a"]}"#).unwrap();
        assert_eq!(f.dangling, Some(true));
        assert_eq!(f.before.as_deref(), Some("a"));
    }

    #[test]
    fn list_narrows_names_and_applies_dangling_before_and_since() {
        let (_d, images) = super::super::tests::fixture();
        let a = super::super::tests::put_wasm(&images, b"\0asm\x01\0\0\0", "127.0.0.1:5000/app");
        images
            .tag(
                "127.0.0.1:5000/app",
                &crate::image::Reference::parse("other:v1").unwrap(),
            )
            .unwrap();
        let f = |j: &str| {
            images
                .list_filtered(&ListFilters::parse(j).unwrap())
                .unwrap()
        };
        let got = f(r#"{"reference":["127.0.0.1:5000/app"]}"#);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].record.id, a.id);
        assert_eq!(got[0].tags, ["127.0.0.1:5000/app:latest"]);
        assert_eq!(f(r#"{"reference":["oth*"]}"#)[0].tags, ["other:v1"]);
        assert!(f(r#"{"reference":["nope"]}"#).is_empty());
        assert!(f(r#"{"dangling":["true"]}"#).is_empty());
        assert_eq!(f(r#"{"dangling":["false"]}"#).len(), 1);
        assert!(f(r#"{"label":["x"]}"#).is_empty());
        // before/since are strict, and name an existing image.
        assert!(f(r#"{"before":["other:v1"]}"#).is_empty());
        assert!(f(r#"{"since":["other:v1"]}"#).is_empty());
        let err = images
            .list_filtered(&ListFilters::parse(r#"{"since":["nope"]}"#).unwrap())
            .unwrap_err();
        assert_eq!(err.kind(), crate::error::ErrorKind::NotFound);
    }
}
