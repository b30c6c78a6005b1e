//! `berth system ...`: `df`, the daemon's disk usage.

use std::io::Write;

use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::Value;

use crate::client::Client;
use crate::format::table::Table;
use crate::format::units::human_size;

/// Manage berth
#[derive(Subcommand, Debug)]
pub enum SystemCommand {
    Df(DfCommand),
}

impl SystemCommand {
    pub async fn execute(self, client: &Client) -> Result<i32> {
        match self {
            SystemCommand::Df(c) => c.execute(client).await,
        }
    }
}

/// Show berth disk usage
#[derive(Args, Debug)]
pub struct DfCommand {}

impl DfCommand {
    pub async fn execute(self, client: &Client) -> Result<i32> {
        let du = match client.system_df().await {
            Ok(d) => d,
            Err(e) => {
                eprintln!("{e}");
                return Ok(1);
            }
        };
        render(&du).write_to(&mut std::io::stdout().lock())?;
        std::io::stdout().flush()?;
        Ok(0)
    }
}

/// "1.2MB (50%)", or just the size when the total is zero, as docker's
/// disk usage formatter.
fn reclaimable(reclaimable: i64, total: i64) -> String {
    if total > 0 {
        format!(
            "{} ({}%)",
            human_size(reclaimable),
            reclaimable * 100 / total
        )
    } else {
        human_size(reclaimable)
    }
}

/// docker system df's summary table.
fn render(du: &Value) -> Table {
    let arr = |k: &str| du[k].as_array().cloned().unwrap_or_default();
    let n = |v: &Value, k: &str| v[k].as_i64().unwrap_or(0);
    let mut t = Table::new(&["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]);

    let images = arr("Images");
    let total = du["LayersSize"].as_i64().unwrap_or(0);
    let active: Vec<&Value> = images.iter().filter(|i| n(i, "Containers") > 0).collect();
    let used: i64 = active
        .iter()
        .filter(|i| n(i, "Size") >= 0 && n(i, "SharedSize") >= 0)
        .map(|i| n(i, "Size") - n(i, "SharedSize"))
        .sum();
    t.push(vec![
        "Images".into(),
        images.len().to_string(),
        active.len().to_string(),
        human_size(total),
        reclaimable((total - used).max(0), total),
    ]);

    let containers = arr("Containers");
    let state = |c: &Value| c["State"].as_str().unwrap_or_default().to_string();
    let size: i64 = containers.iter().map(|c| n(c, "SizeRw")).sum();
    let active = containers
        .iter()
        .filter(|c| ["running", "paused", "restarting"].contains(&state(c).as_str()))
        .count();
    let free: i64 = containers
        .iter()
        .filter(|c| state(c) != "running")
        .map(|c| n(c, "SizeRw"))
        .sum();
    t.push(vec![
        "Containers".into(),
        containers.len().to_string(),
        active.to_string(),
        human_size(size),
        reclaimable(free, size),
    ]);

    let volumes = arr("Volumes");
    t.push(vec![
        "Local Volumes".into(),
        volumes.len().to_string(),
        "0".into(),
        human_size(0),
        human_size(0),
    ]);
    let cache = arr("BuildCache");
    t.push(vec![
        "Build Cache".into(),
        cache.len().to_string(),
        "0".into(),
        human_size(0),
        human_size(0),
    ]);
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_like_docker_system_df() {
        let du = serde_json::json!({
            "LayersSize": 2_000_000,
            "Images": [
                {"Size": 1_500_000, "SharedSize": 0, "Containers": 1},
                {"Size": 500_000, "SharedSize": 0, "Containers": 0},
            ],
            "Containers": [
                {"State": "running", "SizeRw": 100},
                {"State": "exited", "SizeRw": 20},
            ],
            "Volumes": [],
            "BuildCache": [],
        });
        let text = render(&du).render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE"
        );
        assert_eq!(
            lines[1],
            "Images          2         1         2MB       500kB (25%)"
        );
        assert_eq!(
            lines[2],
            "Containers      2         1         120B      20B (16%)"
        );
        assert_eq!(lines[3], "Local Volumes   0         0         0B        0B");
        assert_eq!(lines[4], "Build Cache     0         0         0B        0B");
    }
}
