//! Parsing of option values the way the docker CLI reads them: `-e`, `-l`,
//! `--restart`, `--filter`, image references and tag targets. Pure functions.

use std::collections::BTreeMap;

use berth_api_types::container::RestartPolicy;

/// `-e NAME=value` is kept; `-e NAME` takes `NAME`'s value from the client's
/// environment when it is set there, else is sent as `NAME` (Docker's
/// `opts.ValidateEnv`; the daemon then unsets it).
pub fn parse_env(value: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let (name, rest) = match value.split_once('=') {
        Some((n, _)) => (n, true),
        None => (value, false),
    };
    if name.is_empty() {
        return Err(format!("invalid environment variable: {value}"));
    }
    if rest {
        return Ok(value.to_string());
    }
    Ok(match lookup(name) {
        Some(v) => format!("{name}={v}"),
        None => value.to_string(),
    })
}

/// `-l key=value` (or `-l key` for an empty value) into a map.
pub fn parse_labels(values: &[String]) -> Result<BTreeMap<String, String>, String> {
    let mut labels = BTreeMap::new();
    for v in values {
        let (k, val) = v.split_once('=').unwrap_or((v.as_str(), ""));
        if k.is_empty() {
            return Err(format!("invalid label '{v}': empty name"));
        }
        labels.insert(k.to_string(), val.to_string());
    }
    Ok(labels)
}

/// `--restart no|always|unless-stopped|on-failure[:N]`, parsed and validated
/// as Docker does (`opts.ParseRestartPolicy` + `ValidateRestartPolicy`).
pub fn parse_restart(policy: &str) -> Result<RestartPolicy, String> {
    if policy.is_empty() {
        return Ok(RestartPolicy::default());
    }
    let (name, count) = match policy.split_once(':') {
        Some(("", _)) => {
            return Err(
                "invalid restart policy format: no policy provided before colon".to_string(),
            );
        }
        Some((n, c)) => (n, Some(c)),
        None => (policy, None),
    };
    let count = match count {
        None | Some("") => 0,
        Some(c) => c.parse::<i64>().map_err(|_| {
            "invalid restart policy format: maximum retry count must be an integer".to_string()
        })?,
    };
    match name {
        "no" | "always" | "unless-stopped" => {
            if count != 0 {
                let mut msg = "invalid restart policy: maximum retry count can only be used with 'on-failure'".to_string();
                if count < 0 {
                    msg.push_str(" and cannot be negative");
                }
                return Err(msg);
            }
        }
        "on-failure" => {
            if count < 0 {
                return Err(
                    "invalid restart policy: maximum retry count cannot be negative".to_string(),
                );
            }
        }
        other => {
            return Err(format!(
                "invalid restart policy: unknown policy '{other}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
            ));
        }
    }
    Ok(RestartPolicy {
        name: name.to_string(),
        maximum_retry_count: count,
    })
}

/// `-f key=value` (repeatable) into Docker's `filters` JSON,
/// `{"key":["value",...]}`; `None` when there are none.
pub fn filters_json(filters: &[String]) -> Result<Option<String>, String> {
    if filters.is_empty() {
        return Ok(None);
    }
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in filters {
        let Some((k, v)) = f.split_once('=') else {
            return Err(format!("bad format of filter (expected name=value): {f}"));
        };
        let k = k.trim().to_lowercase();
        map.entry(k).or_default().push(v.trim().to_string());
    }
    Ok(Some(
        serde_json::to_string(&map).expect("a map of strings serializes"),
    ))
}

/// Splits `repo[:tag]` at the last `:` that comes after the last `/`
/// (`localhost:5000/app:v1` -> `localhost:5000/app`, `v1`). A digest
/// reference (`@sha256:...`) is returned whole with no tag.
pub fn split_tag(reference: &str) -> (&str, Option<&str>) {
    if reference.contains('@') {
        return (reference, None);
    }
    let parts = berth_api_types::reference::split(reference);
    (parts.name, parts.tag)
}

/// The reference as Docker shows it in "Unable to find image 'x:latest'
/// locally": `:latest` added when there is neither tag nor digest.
pub fn with_default_tag(reference: &str) -> String {
    match split_tag(reference) {
        (_, Some(_)) => reference.to_string(),
        _ if reference.contains('@') => reference.to_string(),
        _ => format!("{reference}:latest"),
    }
}

/// The `repo`, `tag` pair for `POST /images/{src}/tag` from a target like
/// `name[:tag]`; the tag defaults to `latest`.
pub fn tag_target(target: &str) -> Result<(String, String), String> {
    if target.contains('@') {
        return Err(format!(
            "refusing to create a tag with a digest reference: {target}"
        ));
    }
    let (repo, tag) = split_tag(target);
    if repo.is_empty() {
        return Err(format!("invalid reference format: {target}"));
    }
    match tag {
        Some("") => Err(format!("invalid reference format: {target}")),
        Some(t) => Ok((repo.to_string(), t.to_string())),
        None => Ok((repo.to_string(), "latest".to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_without_value_comes_from_the_client() {
        let lookup = |k: &str| (k == "HOME").then(|| "/root".to_string());
        assert_eq!(parse_env("A=1", lookup).unwrap(), "A=1");
        assert_eq!(parse_env("A=", lookup).unwrap(), "A=");
        assert_eq!(parse_env("A=b=c", lookup).unwrap(), "A=b=c");
        assert_eq!(parse_env("HOME", lookup).unwrap(), "HOME=/root");
        assert_eq!(parse_env("UNSET_X", lookup).unwrap(), "UNSET_X");
        assert_eq!(
            parse_env("=x", lookup).unwrap_err(),
            "invalid environment variable: =x"
        );
    }

    #[test]
    fn labels() {
        let l = parse_labels(&["a=1".into(), "b".into(), "c=x=y".into()]).unwrap();
        assert_eq!(l["a"], "1");
        assert_eq!(l["b"], "");
        assert_eq!(l["c"], "x=y");
        assert!(parse_labels(&["=1".into()]).is_err());
    }

    #[test]
    fn restart_policies() {
        let p = |s| parse_restart(s);
        assert_eq!(p("").unwrap(), RestartPolicy::default());
        assert_eq!(p("no").unwrap().name, "no");
        assert_eq!(p("always").unwrap().name, "always");
        assert_eq!(p("unless-stopped").unwrap().name, "unless-stopped");
        let of = p("on-failure:3").unwrap();
        assert_eq!(
            (of.name.as_str(), of.maximum_retry_count),
            ("on-failure", 3)
        );
        assert_eq!(p("on-failure").unwrap().maximum_retry_count, 0);
        assert!(
            p("on-failure:-1")
                .unwrap_err()
                .contains("cannot be negative")
        );
        assert!(
            p("on-failure:x")
                .unwrap_err()
                .contains("must be an integer")
        );
        assert!(
            p("always:2")
                .unwrap_err()
                .contains("only be used with 'on-failure'")
        );
        assert!(p(":2").unwrap_err().contains("no policy provided"));
        assert!(
            p("sometimes")
                .unwrap_err()
                .contains("unknown policy 'sometimes'")
        );
    }

    #[test]
    fn filters() {
        assert_eq!(filters_json(&[]).unwrap(), None);
        assert_eq!(
            filters_json(&[
                "status=exited".into(),
                "status=created".into(),
                "name=x".into()
            ])
            .unwrap()
            .unwrap(),
            r#"{"name":["x"],"status":["exited","created"]}"#
        );
        assert!(filters_json(&["oops".into()]).is_err());
    }

    #[test]
    fn tag_splitting() {
        assert_eq!(split_tag("hello"), ("hello", None));
        assert_eq!(split_tag("hello:v1"), ("hello", Some("v1")));
        assert_eq!(
            split_tag("localhost:5000/app"),
            ("localhost:5000/app", None)
        );
        assert_eq!(
            split_tag("localhost:5000/app:v1"),
            ("localhost:5000/app", Some("v1"))
        );
        assert_eq!(split_tag("a/b/c:d"), ("a/b/c", Some("d")));
        assert_eq!(split_tag("app@sha256:abc"), ("app@sha256:abc", None));
        assert_eq!(tag_target("x").unwrap(), ("x".into(), "latest".into()));
        assert_eq!(
            tag_target("localhost:5000/x:2").unwrap(),
            ("localhost:5000/x".into(), "2".into())
        );
        assert!(tag_target("x@sha256:00").is_err());
        assert!(tag_target("x:").is_err());
        assert_eq!(with_default_tag("hello"), "hello:latest");
        assert_eq!(with_default_tag("hello:v1"), "hello:v1");
        assert_eq!(with_default_tag("reg:5000/hello"), "reg:5000/hello:latest");
        assert_eq!(with_default_tag("h@sha256:ab"), "h@sha256:ab");
    }
}
