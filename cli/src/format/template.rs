//! A tiny interpreter for the Go-template subset people pass to
//! `docker inspect --format`, evaluated over a `serde_json::Value`.
//!
//! Supported: literal text; actions `{{.}}`, `{{.A.B.C}}`, `{{json .X}}`,
//! `{{upper .X}}`, `{{lower .X}}`, `{{title .X}}`, `{{len .X}}`,
//! `{{join .X ","}}`, `{{split .X ","}}`, `{{index .X "key" 0}}`, string
//! literals, pipelines (`{{.X | json}}`), and `{{-`/`-}}` whitespace trimming.
//! Not supported: `if`, `range`, `with`, variables, comparisons; they fail
//! with an error instead of printing something wrong.
//!
//! Values print like Go's `%v`: strings bare, `[a b]` for arrays,
//! `map[k:v]` for objects, `<nil>` for null, `<no value>` for a missing key.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Action(Vec<Cmd>),
}

/// One command of a pipeline: its tokens.
type Cmd = Vec<Tok>;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// `.` (empty path) or `.A.B`.
    Field(Vec<String>),
    Str(String),
    Int(i64),
    Ident(String),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    nodes: Vec<Node>,
}

impl Template {
    pub fn parse(src: &str) -> Result<Template, String> {
        let mut nodes = Vec::new();
        let mut rest = src;
        let mut trim_next = false;
        while let Some(start) = rest.find("{{") {
            let mut text = &rest[..start];
            if trim_next {
                text = text.trim_start();
            }
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| format!("template: unclosed action in {src:?}"))?;
            let mut inner = &after[..end];
            if let Some(i) = inner.strip_prefix("- ").or_else(|| {
                inner
                    .strip_prefix('-')
                    .filter(|i| i.starts_with(['\t', '\n', '\r']))
            }) {
                text = text.trim_end();
                inner = i;
            }
            trim_next = false;
            if let Some(i) = inner.strip_suffix(" -").or_else(|| {
                inner
                    .strip_suffix('-')
                    .filter(|i| i.ends_with(['\t', '\n', '\r']))
            }) {
                trim_next = true;
                inner = i;
            }
            if !text.is_empty() {
                nodes.push(Node::Text(text.to_string()));
            }
            nodes.push(Node::Action(parse_pipeline(inner)?));
            rest = &after[end + 2..];
        }
        let text = if trim_next { rest.trim_start() } else { rest };
        if !text.is_empty() {
            nodes.push(Node::Text(text.to_string()));
        }
        Ok(Template { nodes })
    }

    pub fn execute(&self, data: &Value) -> Result<String, String> {
        let mut out = String::new();
        for node in &self.nodes {
            match node {
                Node::Text(t) => out.push_str(t),
                Node::Action(cmds) => {
                    let mut piped: Option<Option<Value>> = None;
                    for cmd in cmds {
                        piped = Some(eval_cmd(cmd, data, piped)?);
                    }
                    if let Some(v) = piped {
                        out.push_str(&display(v.as_ref()));
                    }
                }
            }
        }
        Ok(out)
    }
}

fn tokenize(src: &str) -> Result<Vec<Tok>, String> {
    let mut toks = Vec::new();
    let mut chars = src.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' || c == '`' {
            chars.next();
            let mut s = String::new();
            loop {
                match chars.next() {
                    None => return Err(format!("template: unterminated string in {src:?}")),
                    Some(q) if q == c => break,
                    Some('\\') if c == '"' => match chars.next() {
                        Some('n') => s.push('\n'),
                        Some('t') => s.push('\t'),
                        Some(e) => s.push(e),
                        None => return Err(format!("template: unterminated string in {src:?}")),
                    },
                    Some(ch) => s.push(ch),
                }
            }
            toks.push(Tok::Str(s));
        } else {
            let mut word = String::new();
            while let Some(&ch) = chars.peek() {
                if ch.is_whitespace() || ch == '"' {
                    break;
                }
                word.push(ch);
                chars.next();
            }
            toks.push(word_token(&word)?);
        }
    }
    Ok(toks)
}

fn word_token(word: &str) -> Result<Tok, String> {
    if word == "." {
        return Ok(Tok::Field(Vec::new()));
    }
    if let Some(path) = word.strip_prefix('.') {
        let parts: Vec<String> = path.split('.').map(str::to_string).collect();
        if parts
            .iter()
            .any(|p| p.is_empty() || !p.chars().all(|c| c.is_alphanumeric() || c == '_'))
        {
            return Err(format!("template: bad field reference {word:?}"));
        }
        return Ok(Tok::Field(parts));
    }
    if let Ok(n) = word.parse::<i64>() {
        return Ok(Tok::Int(n));
    }
    if word.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return Ok(Tok::Ident(word.to_string()));
    }
    Err(format!("template: unexpected {word:?}"))
}

fn parse_pipeline(src: &str) -> Result<Vec<Cmd>, String> {
    // Split on `|` outside string literals.
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in src.chars() {
        match quote {
            Some(q) => {
                cur.push(c);
                if escaped {
                    escaped = false;
                } else if c == '\\' && q == '"' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None if c == '|' => parts.push(std::mem::take(&mut cur)),
            None => {
                if c == '"' || c == '`' {
                    quote = Some(c);
                }
                cur.push(c);
            }
        }
    }
    parts.push(cur);
    let mut cmds = Vec::new();
    for p in parts {
        let toks = tokenize(&p)?;
        if toks.is_empty() {
            return Err(format!("template: missing command in {{{{{src}}}}}"));
        }
        if let Tok::Ident(name) = &toks[0] {
            if !FUNCS.contains(&name.as_str()) {
                return Err(format!(
                    "template: {name:?} is not supported by berth's --format (supported: \
                     .Field.Path, {})",
                    FUNCS.join(", ")
                ));
            }
        } else if toks.len() > 1 {
            return Err(format!(
                "template: can't give argument to non-function in {{{{{src}}}}}"
            ));
        }
        cmds.push(toks);
    }
    Ok(cmds)
}

const FUNCS: &[&str] = &[
    "json", "upper", "lower", "title", "len", "join", "split", "index",
];

fn lookup(data: &Value, path: &[String]) -> Result<Option<Value>, String> {
    let mut cur = data;
    for (i, key) in path.iter().enumerate() {
        match cur {
            Value::Object(map) => match map.get(key) {
                Some(v) => cur = v,
                None if i + 1 == path.len() => return Ok(None),
                None => {
                    return Err(format!(
                        "template: nil pointer evaluating .{}",
                        path[..=i + 1].join(".")
                    ));
                }
            },
            _ => {
                return Err(format!(
                    "template: can't evaluate field {key} in .{}",
                    path[..i].join(".")
                ));
            }
        }
    }
    Ok(Some(cur.clone()))
}

fn eval_arg(tok: &Tok, data: &Value) -> Result<Option<Value>, String> {
    match tok {
        Tok::Field(path) => lookup(data, path),
        Tok::Str(s) => Ok(Some(Value::String(s.clone()))),
        Tok::Int(n) => Ok(Some(Value::from(*n))),
        Tok::Ident(name) => Err(format!("template: function {name:?} used as an argument")),
    }
}

fn eval_cmd(
    cmd: &[Tok],
    data: &Value,
    piped: Option<Option<Value>>,
) -> Result<Option<Value>, String> {
    let Tok::Ident(name) = &cmd[0] else {
        if piped.is_some() {
            return Err("template: can't pipe into a non-function".to_string());
        }
        return eval_arg(&cmd[0], data);
    };
    let mut args = cmd[1..]
        .iter()
        .map(|t| eval_arg(t, data))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(p) = piped {
        args.push(p);
    }
    let want = |n: usize| {
        if args.len() == n {
            Ok(())
        } else {
            Err(format!(
                "template: wrong number of args for {name}: want {n} got {}",
                args.len()
            ))
        }
    };
    let s = |v: &Option<Value>| display(v.as_ref());
    Ok(Some(match name.as_str() {
        "json" => {
            want(1)?;
            let v = args[0].clone().unwrap_or(Value::Null);
            Value::String(serde_json::to_string(&v).map_err(|e| e.to_string())?)
        }
        "upper" => {
            want(1)?;
            Value::String(s(&args[0]).to_uppercase())
        }
        "lower" => {
            want(1)?;
            Value::String(s(&args[0]).to_lowercase())
        }
        "title" => {
            want(1)?;
            Value::String(title(&s(&args[0])))
        }
        "len" => {
            want(1)?;
            let n = match &args[0] {
                Some(Value::Array(a)) => a.len(),
                Some(Value::Object(o)) => o.len(),
                Some(Value::String(t)) => t.len(),
                _ => return Err("template: len of a value without a length".to_string()),
            };
            Value::from(n)
        }
        "join" => {
            want(2)?;
            let sep = s(&args[1]);
            match &args[0] {
                Some(Value::Array(a)) => Value::String(
                    a.iter()
                        .map(|v| display(Some(v)))
                        .collect::<Vec<_>>()
                        .join(&sep),
                ),
                Some(Value::Null) | None => Value::String(String::new()),
                _ => return Err("template: join needs an array".to_string()),
            }
        }
        "split" => {
            want(2)?;
            Value::Array(
                s(&args[0])
                    .split(s(&args[1]).as_str())
                    .map(|p| Value::String(p.to_string()))
                    .collect(),
            )
        }
        "index" => {
            if args.len() < 2 {
                return Err("template: index needs a value and at least one key".to_string());
            }
            let mut cur = args[0].clone().unwrap_or(Value::Null);
            for key in &args[1..] {
                cur = match (&cur, key) {
                    (Value::Object(o), Some(Value::String(k))) => match o.get(k) {
                        Some(v) => v.clone(),
                        None => return Ok(None),
                    },
                    (Value::Array(a), Some(Value::Number(n))) => {
                        let i = n.as_u64().ok_or("template: index out of range")?;
                        a.get(i as usize)
                            .cloned()
                            .ok_or("template: index out of range")?
                    }
                    _ => return Err("template: can't index item".to_string()),
                };
            }
            cur
        }
        _ => unreachable!("checked at parse time"),
    }))
}

fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start && c.is_alphanumeric() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !c.is_alphanumeric();
    }
    out
}

/// Go's `%v` of a decoded JSON value.
pub fn display(v: Option<&Value>) -> String {
    match v {
        None => "<no value>".to_string(),
        Some(Value::Null) => "<nil>".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Array(a)) => {
            let items: Vec<String> = a.iter().map(|x| display(Some(x))).collect();
            format!("[{}]", items.join(" "))
        }
        Some(Value::Object(o)) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            let items: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{k}:{}", display(o.get(k))))
                .collect();
            format!("map[{}]", items.join(" "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(t: &str, v: &Value) -> Result<String, String> {
        Template::parse(t)?.execute(v)
    }

    fn sample() -> Value {
        json!({
            "Id": "abc123",
            "State": {"Status": "exited", "ExitCode": 3, "Running": false},
            "Config": {"Env": ["A=1", "B=2"], "Labels": {"b": "2", "a": "1"}, "Cmd": null},
            "HostConfig": {"Memory": 67108864}
        })
    }

    #[test]
    fn field_paths() {
        let v = sample();
        assert_eq!(run("{{.State.Status}}", &v).unwrap(), "exited");
        assert_eq!(run("{{.Id}}", &v).unwrap(), "abc123");
        assert_eq!(run("{{ .State.ExitCode }}", &v).unwrap(), "3");
        assert_eq!(run("{{.HostConfig.Memory}}", &v).unwrap(), "67108864");
        assert_eq!(run("{{.State.Running}}", &v).unwrap(), "false");
        assert_eq!(
            run("id={{.Id}} rc={{.State.ExitCode}}!", &v).unwrap(),
            "id=abc123 rc=3!"
        );
        assert_eq!(run("{{.Nope}}", &v).unwrap(), "<no value>");
        assert_eq!(run("{{.Config.Cmd}}", &v).unwrap(), "<nil>");
        assert!(run("{{.Id.Foo}}", &v).is_err());
    }

    #[test]
    fn go_value_printing() {
        let v = sample();
        assert_eq!(run("{{.Config.Env}}", &v).unwrap(), "[A=1 B=2]");
        assert_eq!(run("{{.Config.Labels}}", &v).unwrap(), "map[a:1 b:2]");
    }

    #[test]
    fn json_and_functions() {
        let v = sample();
        assert_eq!(run("{{json .Config.Env}}", &v).unwrap(), r#"["A=1","B=2"]"#);
        assert_eq!(run("{{json .State.Status}}", &v).unwrap(), r#""exited""#);
        assert_eq!(
            run("{{.Config.Env | json}}", &v).unwrap(),
            r#"["A=1","B=2"]"#
        );
        assert_eq!(run("{{upper .State.Status}}", &v).unwrap(), "EXITED");
        assert_eq!(run(r#"{{join .Config.Env ","}}"#, &v).unwrap(), "A=1,B=2");
        assert_eq!(run(r#"{{index .Config.Labels "a"}}"#, &v).unwrap(), "1");
        assert_eq!(run("{{index .Config.Env 1}}", &v).unwrap(), "B=2");
        assert_eq!(run("{{len .Config.Env}}", &v).unwrap(), "2");
        assert_eq!(run("{{json .}}", &json!({"a": 1})).unwrap(), r#"{"a":1}"#);
    }

    #[test]
    fn trim_markers() {
        let v = sample();
        assert_eq!(run("a  {{- .Id -}}  b", &v).unwrap(), "aabc123b");
    }

    #[test]
    fn unsupported_actions_fail() {
        assert!(Template::parse("{{if .State.Running}}x{{end}}").is_err());
        assert!(Template::parse("{{range .Config.Env}}{{.}}{{end}}").is_err());
        assert!(Template::parse("{{.Id").is_err());
    }
}
