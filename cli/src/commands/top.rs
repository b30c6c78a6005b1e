//! `berth top`: the processes of a running container, as `ps` shows them.

use std::io::Write;

use anyhow::Result;
use clap::Args;
use serde_json::Value;

use crate::client::Client;

/// Display the running processes of a container
#[derive(Args, Debug)]
#[command(override_usage = "berth top CONTAINER [ps OPTIONS]")]
pub struct TopCommand {
    /// The container
    #[arg(value_name = "CONTAINER")]
    pub container: String,

    /// Options for ps (default: -ef)
    #[arg(
        value_name = "ps OPTIONS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub ps_args: Vec<String>,
}

impl TopCommand {
    pub async fn execute(self, client: &Client) -> Result<i32> {
        let args = self.ps_args.join(" ");
        let top = match client
            .container_top(&self.container, (!args.is_empty()).then_some(args.as_str()))
            .await
        {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{e}");
                return Ok(1);
            }
        };
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .map(|x| x.as_str().unwrap_or_default().to_string())
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut rows = vec![strings(&top["Titles"])];
        if let Some(ps) = top["Processes"].as_array() {
            rows.extend(ps.iter().map(strings));
        }
        std::io::stdout()
            .lock()
            .write_all(render(&rows).as_bytes())?;
        Ok(0)
    }
}

/// docker top's layout: Go's tabwriter with minwidth 20, padding 3; the
/// last cell of a row is not padded.
fn render(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; columns];
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(row.len().saturating_sub(1)) {
            widths[i] = widths[i].max(cell.chars().count() + 3).max(20);
        }
    }
    let mut out = String::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < row.len() {
                out.extend(std::iter::repeat_n(' ', widths[i] - cell.chars().count()));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_like_docker_top() {
        let rows = vec![
            vec!["UID".to_string(), "PID".into(), "CMD".into()],
            vec!["root".to_string(), "4242".into(), "sleep 100".into()],
        ];
        assert_eq!(
            render(&rows),
            "UID                 PID                 CMD\nroot                4242                sleep 100\n"
        );
    }
}
