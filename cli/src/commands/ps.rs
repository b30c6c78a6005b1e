//! `berth ps`: list containers in docker's table.

use std::io::Write;

use anyhow::Result;
use berth_api_types::container::Summary;
use clap::Args;
use serde_json::Value;

use crate::client::Client;
use crate::format::table::Table;
use crate::format::template::Template;
use crate::format::units::ago;
use crate::format::{ellipsis, go_quote, short_id};
use crate::opts::filters_json;

/// List containers
#[derive(Args, Debug)]
pub struct PsCommand {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub all: bool,

    /// Only display container IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,

    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,

    /// Filter output based on conditions provided (KEY=VALUE, repeatable)
    #[arg(short = 'f', long = "filter", value_name = "FILTER")]
    pub filter: Vec<String>,

    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long = "last", value_name = "N", allow_negative_numbers = true, default_value_t = -1)]
    pub last: i64,

    /// Show the latest created container (includes all states)
    #[arg(short = 'l', long)]
    pub latest: bool,

    /// Format output using a Go template: 'table' (the default), 'table
    /// TEMPLATE' (a table with a header), 'json' (one JSON object per
    /// line), or 'TEMPLATE'; fields: .ID .Image .Command .CreatedAt
    /// .RunningFor .Ports .State .Status .Names .Labels .Mounts .Networks
    /// .Executor
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
}

impl PsCommand {
    pub async fn execute(self, client: &Client) -> Result<i32> {
        let filters = filters_json(&self.filter).map_err(anyhow::Error::msg)?;
        let mut limit = self.last;
        if self.latest && limit == -1 {
            limit = 1;
        }
        let list = client
            .container_list(self.all, (limit > 0).then_some(limit), filters.as_deref())
            .await?;
        let mut out = std::io::stdout().lock();
        if self.quiet {
            for c in &list {
                let id = if self.no_trunc {
                    c.id.clone()
                } else {
                    short_id(&c.id)
                };
                writeln!(out, "{id}")?;
            }
            return Ok(0);
        }
        let now = chrono::Utc::now();
        match self.format.as_deref() {
            None | Some("table") => render(&list, self.no_trunc, now).write_to(&mut out)?,
            Some(f) => {
                let text = formatted(&list, f, self.no_trunc, now).map_err(anyhow::Error::msg)?;
                out.write_all(text.as_bytes())?;
            }
        }
        Ok(0)
    }
}

/// The table `docker ps` prints, as a template.
const DEFAULT_TABLE: &str =
    "{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

/// Column titles of `table` formats, by field.
const HEADERS: [(&str, &str); 13] = [
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Ports", "PORTS"),
    ("State", "STATE"),
    ("Status", "STATUS"),
    ("Names", "NAMES"),
    ("Labels", "LABELS"),
    ("Mounts", "MOUNTS"),
    ("Networks", "NETWORKS"),
    ("Executor", "EXECUTOR"),
];

/// `docker ps --format`: `json`, `table TEMPLATE` or a template, over the
/// fields docker's container formatter gives (and berth's `Executor`).
/// As docker's, a literal `\t` or `\n` in the format is a tab or a newline.
fn formatted(
    list: &[Summary],
    format: &str,
    no_trunc: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<String, String> {
    let (table, src) = match format.strip_prefix("table") {
        Some(rest) if rest.is_empty() || rest.starts_with(char::is_whitespace) => {
            (true, rest.trim())
        }
        _ => (false, format.trim()),
    };
    let src = match src {
        "json" => "{{json .}}",
        "" if table => DEFAULT_TABLE,
        s => s,
    };
    let src = src.replace("\\t", "\t").replace("\\n", "\n");
    let template = Template::parse(&src)?;
    let rows = list
        .iter()
        .map(|c| template.execute(&fields(c, no_trunc, now)))
        .collect::<Result<Vec<String>, String>>()?;
    if !table {
        return Ok(rows.iter().map(|r| format!("{r}\n")).collect());
    }
    let titles: serde_json::Map<String, Value> = HEADERS
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect();
    let header = template.execute(&Value::Object(titles))?;
    let mut t = Table::new(&header.split('\t').collect::<Vec<_>>());
    for r in rows {
        t.push(r.split('\t').map(str::to_string).collect());
    }
    Ok(t.render())
}

/// One container as docker's formatter shows it.
fn fields(c: &Summary, no_trunc: bool, now: chrono::DateTime<chrono::Utc>) -> Value {
    let (id, command, image) = if no_trunc {
        (c.id.clone(), c.command.clone(), c.image.clone())
    } else {
        let image = if c.image.starts_with("sha256:") {
            short_id(&c.image)
        } else {
            c.image.clone()
        };
        (short_id(&c.id), ellipsis(&c.command, 20), image)
    };
    let mut labels: Vec<String> = c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    labels.sort();
    let mounts: Vec<String> = c
        .mounts
        .iter()
        .filter_map(|m| {
            let name = m
                .get("Name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty());
            let source = m.get("Source").and_then(Value::as_str);
            name.or(source).map(|n| {
                if no_trunc {
                    n.to_string()
                } else {
                    ellipsis(n, 15)
                }
            })
        })
        .collect();
    let mut networks: Vec<String> = c
        .network_settings
        .get("Networks")
        .and_then(Value::as_object)
        .map(|n| n.keys().cloned().collect())
        .unwrap_or_default();
    networks.sort();
    let created = chrono::DateTime::from_timestamp(c.created, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S +0000 UTC").to_string())
        .unwrap_or_default();
    serde_json::json!({
        "ID": id,
        "Image": image,
        "Command": go_quote(&command),
        "CreatedAt": created,
        "RunningFor": ago(c.created, now),
        "Ports": ports(&c.ports),
        "State": c.state,
        "Status": c.status,
        "Names": names(&c.names, no_trunc),
        "Labels": labels.join(","),
        "Mounts": mounts.join(","),
        "Networks": networks.join(","),
        "Executor": c.executor,
    })
}

/// The table `docker ps` prints by default: [`DEFAULT_TABLE`]'s columns.
fn render(list: &[Summary], no_trunc: bool, now: chrono::DateTime<chrono::Utc>) -> Table {
    const COLUMNS: [&str; 7] = [
        "ID",
        "Image",
        "Command",
        "RunningFor",
        "Status",
        "Ports",
        "Names",
    ];
    let mut t = Table::new(&COLUMNS.map(title));
    for c in list {
        let f = fields(c, no_trunc, now);
        t.push(
            COLUMNS
                .iter()
                .map(|k| f[*k].as_str().unwrap_or_default().to_string())
                .collect(),
        );
    }
    t
}

/// A field's column title in `table` formats.
fn title(field: &'static str) -> &'static str {
    HEADERS
        .iter()
        .find(|(f, _)| *f == field)
        .map_or(field, |(_, t)| *t)
}

/// Names without the leading `/`; link names (`/a/b`) only with --no-trunc.
fn names(names: &[String], no_trunc: bool) -> String {
    names
        .iter()
        .map(|n| n.strip_prefix('/').unwrap_or(n))
        .filter(|n| no_trunc || !n.contains('/'))
        .collect::<Vec<_>>()
        .join(",")
}

/// `0.0.0.0:8080->80/tcp, 443/tcp`, as docker's DisplayablePorts (without
/// its range folding).
fn ports(ports: &[serde_json::Value]) -> String {
    let mut out: Vec<String> = Vec::new();
    for p in ports {
        let private = p.get("PrivatePort").and_then(|v| v.as_u64()).unwrap_or(0);
        let proto = p.get("Type").and_then(|v| v.as_str()).unwrap_or("tcp");
        let public = p.get("PublicPort").and_then(|v| v.as_u64()).unwrap_or(0);
        let ip = p.get("IP").and_then(|v| v.as_str()).unwrap_or("");
        let s = if public > 0 {
            let ip = if ip.contains(':') {
                format!("[{ip}]")
            } else {
                ip.to_string()
            };
            format!("{ip}:{public}->{private}/{proto}")
        } else {
            format!("{private}/{proto}")
        };
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_like_docker_ps() {
        let now = chrono::DateTime::from_timestamp(1_000_100, 0).unwrap();
        let c = Summary {
            id: "0123456789abcdef0123456789abcdef".into(),
            names: vec!["/happy_bell".into()],
            image: "hello:latest".into(),
            command: "/hello.wasm --exit 3 --and-more".into(),
            created: 1_000_098,
            status: "Exited (3) 1 second ago".into(),
            ports: vec![
                serde_json::json!({"IP":"0.0.0.0","PrivatePort":80,"PublicPort":8080,"Type":"tcp"}),
            ],
            ..Default::default()
        };
        let text = render(&[c], false, now).render();
        assert_eq!(
            text,
            "CONTAINER ID   IMAGE          COMMAND                  CREATED         STATUS                    PORTS                  NAMES\n\
             0123456789ab   hello:latest   \"/hello.wasm --exit …\"   2 seconds ago   Exited (3) 1 second ago   0.0.0.0:8080->80/tcp   happy_bell\n"
        );
    }

    fn sample() -> Summary {
        Summary {
            id: "0123456789abcdef0123456789abcdef".into(),
            names: vec!["/happy_bell".into()],
            image: "hello:latest".into(),
            command: "/hello.wasm --exit 3 --and-more".into(),
            created: 1_000_098,
            state: "exited".into(),
            status: "Exited (3) 1 second ago".into(),
            labels: [
                ("b".to_string(), "2".to_string()),
                ("a".to_string(), "1".to_string()),
            ]
            .into_iter()
            .collect(),
            executor: "wasm".into(),
            ..Default::default()
        }
    }

    #[test]
    fn format_templates_like_docker_ps() {
        let now = chrono::DateTime::from_timestamp(1_000_100, 0).unwrap();
        let list = [sample()];
        assert_eq!(
            formatted(
                &list,
                "{{.ID}} {{.Names}} {{.State}} {{.Executor}} {{.Labels}}",
                false,
                now
            )
            .unwrap(),
            "0123456789ab happy_bell exited wasm a=1,b=2\n"
        );
        assert_eq!(
            formatted(
                &list,
                "{{.Command}}|{{.CreatedAt}}|{{.RunningFor}}",
                false,
                now
            )
            .unwrap(),
            "\"/hello.wasm --exit …\"|1970-01-12 13:48:18 +0000 UTC|2 seconds ago\n"
        );
        // `table` with a literal \t, as a shell passes it: a header row.
        assert_eq!(
            formatted(&list, r"table {{.ID}}\t{{.Status}}", false, now).unwrap(),
            "CONTAINER ID   STATUS\n0123456789ab   Exited (3) 1 second ago\n"
        );
        // `table` alone is the default table; `json` one object per line.
        assert_eq!(
            formatted(&list, "table", false, now).unwrap(),
            render(&list, false, now).render()
        );
        let json = formatted(&list, "json", true, now).unwrap();
        let v: Value = serde_json::from_str(json.trim_end()).unwrap();
        assert_eq!(v["ID"], "0123456789abcdef0123456789abcdef");
        assert_eq!(v["Names"], "happy_bell");
        assert!(formatted(&list, "{{if .ID}}x{{end}}", false, now).is_err());
    }

    #[test]
    fn link_names_hidden_unless_no_trunc() {
        let n = vec!["/a".to_string(), "/b/a".to_string()];
        assert_eq!(names(&n, false), "a");
        assert_eq!(names(&n, true), "a,b/a");
    }
}
