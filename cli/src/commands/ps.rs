//! `berth ps`: list containers in docker's table.

use std::io::Write;

use anyhow::Result;
use berth_api_types::container::Summary;
use clap::Args;

use crate::client::Client;
use crate::format::table::Table;
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
        render(&list, self.no_trunc, now).write_to(&mut out)?;
        Ok(0)
    }
}

fn render(list: &[Summary], no_trunc: bool, now: chrono::DateTime<chrono::Utc>) -> Table {
    let mut t = Table::new(&[
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ]);
    for c in list {
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
        t.push(vec![
            id,
            image,
            go_quote(&command),
            ago(c.created, now),
            c.status.clone(),
            ports(&c.ports),
            names(&c.names, no_trunc),
        ]);
    }
    t
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

    #[test]
    fn link_names_hidden_unless_no_trunc() {
        let n = vec!["/a".to_string(), "/b/a".to_string()];
        assert_eq!(names(&n, false), "a");
        assert_eq!(names(&n, true), "a,b/a");
    }
}
