//! `berth stats`: live resource usage of containers, as `docker stats`
//! computes it from the daemon's samples.

use anyhow::Result;
use clap::Args;
use serde_json::Value;

use crate::client::Client;
use crate::format::table::Table;
use crate::format::units::{bytes_size, human_size};

/// Display a live stream of container(s) resource usage statistics
#[derive(Args, Debug)]
#[command(override_usage = "berth stats [OPTIONS] [CONTAINER...]")]
pub struct StatsCommand {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub all: bool,

    /// Disable streaming stats and only pull the first result
    #[arg(long = "no-stream")]
    pub no_stream: bool,

    /// Containers (default: every running container)
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// One row of the table, from one sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub id: String,
    pub name: String,
    pub cpu_percent: f64,
    pub mem_usage: u64,
    pub mem_limit: u64,
    pub block_read: u64,
    pub block_write: u64,
    pub pids: u64,
}

impl Row {
    /// docker stats' arithmetic over one sample.
    pub fn from_sample(v: &Value) -> Row {
        let u = |p: &str| v.pointer(p).and_then(Value::as_u64).unwrap_or(0);
        let cpu_delta = u("/cpu_stats/cpu_usage/total_usage") as f64
            - u("/precpu_stats/cpu_usage/total_usage") as f64;
        let sys_delta =
            u("/cpu_stats/system_cpu_usage") as f64 - u("/precpu_stats/system_cpu_usage") as f64;
        let online = u("/cpu_stats/online_cpus").max(1) as f64;
        let cpu_percent = if cpu_delta > 0.0 && sys_delta > 0.0 {
            cpu_delta / sys_delta * online * 100.0
        } else {
            0.0
        };
        let usage = u("/memory_stats/usage");
        // Page cache the kernel can drop does not count (v1, then v2 keys).
        let cache = v
            .pointer("/memory_stats/stats/total_inactive_file")
            .or_else(|| v.pointer("/memory_stats/stats/inactive_file"))
            .and_then(Value::as_u64)
            .filter(|c| *c < usage)
            .unwrap_or(0);
        let (mut read, mut write) = (0, 0);
        if let Some(entries) = v
            .pointer("/blkio_stats/io_service_bytes_recursive")
            .and_then(Value::as_array)
        {
            for e in entries {
                let n = e["value"].as_u64().unwrap_or(0);
                match e["op"].as_str().map(str::to_ascii_lowercase).as_deref() {
                    Some("read") => read += n,
                    Some("write") => write += n,
                    _ => {}
                }
            }
        }
        Row {
            id: v["id"]
                .as_str()
                .unwrap_or_default()
                .chars()
                .take(12)
                .collect(),
            name: v["name"]
                .as_str()
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
            cpu_percent,
            mem_usage: usage - cache,
            mem_limit: u("/memory_stats/limit"),
            block_read: read,
            block_write: write,
            pids: u("/pids_stats/current"),
        }
    }

    fn cells(&self) -> Vec<String> {
        let mem_percent = if self.mem_limit > 0 {
            self.mem_usage as f64 / self.mem_limit as f64 * 100.0
        } else {
            0.0
        };
        vec![
            self.id.clone(),
            self.name.clone(),
            format!("{:.2}%", self.cpu_percent),
            format!(
                "{} / {}",
                bytes_size(self.mem_usage as i64),
                bytes_size(self.mem_limit as i64)
            ),
            format!("{mem_percent:.2}%"),
            "0B / 0B".to_string(),
            format!(
                "{} / {}",
                human_size(self.block_read as i64),
                human_size(self.block_write as i64)
            ),
            self.pids.to_string(),
        ]
    }
}

impl StatsCommand {
    pub async fn execute(self, client: &Client) -> Result<i32> {
        let names: Vec<String> = if self.containers.is_empty() {
            client
                .container_list(self.all, None, None)
                .await?
                .into_iter()
                .map(|c| c.id)
                .collect()
        } else {
            self.containers.clone()
        };
        let interactive = !self.no_stream && crate::term::stdout_is_tty();
        loop {
            let samples = futures_join(client, &names).await;
            let mut table = Table::new(&[
                "CONTAINER ID",
                "NAME",
                "CPU %",
                "MEM USAGE / LIMIT",
                "MEM %",
                "NET I/O",
                "BLOCK I/O",
                "PIDS",
            ]);
            let mut failed = false;
            for (name, s) in names.iter().zip(samples) {
                match s {
                    Ok(v) => table.push(Row::from_sample(&v).cells()),
                    Err(e) => {
                        eprintln!("berth: {name}: {e}");
                        failed = true;
                    }
                }
            }
            let mut text = String::new();
            if interactive {
                // Clear the screen and home the cursor, as docker does.
                text.push_str("\x1b[2J\x1b[H");
            }
            text.push_str(table.render().trim_end_matches('\n'));
            crate::output::println(&text)?;
            if self.no_stream {
                return Ok(if failed { 1 } else { 0 });
            }
        }
    }
}

/// One sample of each container, concurrently (each takes a second).
async fn futures_join(
    client: &Client,
    names: &[String],
) -> Vec<Result<Value, crate::client::ClientError>> {
    let mut set = Vec::new();
    for n in names {
        set.push(client.container_stats_once(n));
    }
    let mut out = Vec::with_capacity(set.len());
    // Start them all before awaiting any.
    let mut pinned: Vec<_> = set.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<Result<Value, crate::client::ClientError>>> =
        (0..pinned.len()).map(|_| None).collect();
    let mut left = pinned.len();
    std::future::poll_fn(|cx| {
        for (i, f) in pinned.iter_mut().enumerate() {
            if done[i].is_none()
                && let std::task::Poll::Ready(r) = f.as_mut().poll(cx)
            {
                done[i] = Some(r);
                left -= 1;
            }
        }
        if left == 0 {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out.extend(done.into_iter().map(|r| r.expect("every future finished")));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn computes_like_docker_stats() {
        let v = json!({
            "id": "0123456789abcdef", "name": "/web",
            "cpu_stats": {"cpu_usage": {"total_usage": 300}, "system_cpu_usage": 2000, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 100}, "system_cpu_usage": 1000},
            "memory_stats": {"usage": 1000, "limit": 4000, "stats": {"total_inactive_file": 200}},
            "pids_stats": {"current": 3},
            "blkio_stats": {"io_service_bytes_recursive": [{"op": "Read", "value": 5}, {"op": "write", "value": 7}]},
        });
        let r = Row::from_sample(&v);
        assert_eq!(r.id, "0123456789ab");
        assert_eq!(r.name, "web");
        assert!((r.cpu_percent - 40.0).abs() < 1e-9);
        assert_eq!(r.mem_usage, 800);
        assert_eq!((r.block_read, r.block_write, r.pids), (5, 7, 3));
    }
}
