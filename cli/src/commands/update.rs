//! `berth update`: change a container's resource limits and restart policy.

use anyhow::Result;
use clap::Args;
use serde_json::json;

use crate::client::Client;
use crate::format::units::parse_ram;
use crate::opts::parse_restart;

/// Update configuration of one or more containers
#[derive(Args, Debug)]
pub struct UpdateCommand {
    /// Memory limit (e.g. 64m, 1g)
    #[arg(short = 'm', long, value_name = "BYTES")]
    pub memory: Option<String>,

    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long, value_name = "BYTES", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,

    /// Number of CPUs
    #[arg(long, value_name = "DECIMAL")]
    pub cpus: Option<String>,

    /// CPU shares (relative weight)
    #[arg(short = 'c', long, value_name = "INT")]
    pub cpu_shares: Option<i64>,

    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long, value_name = "INT", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,

    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long, value_name = "INT")]
    pub cpu_period: Option<i64>,

    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long, value_name = "INT", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,

    /// Restart policy to apply when a container exits
    #[arg(long, value_name = "POLICY")]
    pub restart: Option<String>,

    /// The containers
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `--cpus 1.5` in billionths of a CPU, as the docker CLI sends it.
fn nano_cpus(s: &str) -> Result<i64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("invalid argument \"{s}\" for \"--cpus\" flag"))?;
    if !(v.is_finite() && v >= 0.0) {
        return Err(format!("invalid argument \"{s}\" for \"--cpus\" flag"));
    }
    Ok((v * 1e9).round() as i64)
}

impl UpdateCommand {
    /// The `UpdateConfig` body: zero for what is not changed, as Docker.
    fn config(&self) -> Result<serde_json::Value, String> {
        let memory = self
            .memory
            .as_deref()
            .map(parse_ram)
            .transpose()?
            .unwrap_or(0);
        let memory_swap = match self.memory_swap.as_deref() {
            None => 0,
            Some("-1") => -1,
            Some(s) => parse_ram(s)?,
        };
        let nano = self
            .cpus
            .as_deref()
            .map(nano_cpus)
            .transpose()?
            .unwrap_or(0);
        let restart = self
            .restart
            .as_deref()
            .map(parse_restart)
            .transpose()?
            .unwrap_or_default();
        if self.memory.is_none()
            && self.memory_swap.is_none()
            && self.cpus.is_none()
            && self.cpu_shares.is_none()
            && self.cpu_quota.is_none()
            && self.cpu_period.is_none()
            && self.pids_limit.is_none()
            && self.restart.is_none()
        {
            return Err("you must provide one or more flags when using this command".into());
        }
        let mut v = json!({
            "Memory": memory,
            "MemorySwap": memory_swap,
            "NanoCpus": nano,
            "CpuShares": self.cpu_shares.unwrap_or(0),
            "CpuQuota": self.cpu_quota.unwrap_or(0),
            "CpuPeriod": self.cpu_period.unwrap_or(0),
            "RestartPolicy": {"Name": restart.name, "MaximumRetryCount": restart.maximum_retry_count},
        });
        if let Some(p) = self.pids_limit {
            v["PidsLimit"] = p.into();
        }
        Ok(v)
    }

    pub async fn execute(self, client: &Client) -> Result<i32> {
        let config = match self.config() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("{e}");
                return Ok(125);
            }
        };
        super::each(
            &self.containers,
            |c| client.container_update(c, &config),
            |c, r| {
                for w in r["Warnings"].as_array().into_iter().flatten() {
                    eprintln!("{}", w.as_str().unwrap_or_default());
                }
                crate::output::println(c)
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        u: UpdateCommand,
    }

    #[test]
    fn builds_dockers_update_config() {
        let t = T::try_parse_from([
            "t",
            "-m",
            "64m",
            "--cpus",
            "1.5",
            "--pids-limit",
            "-1",
            "--restart",
            "on-failure:3",
            "c",
        ])
        .unwrap();
        let v = t.u.config().unwrap();
        assert_eq!(v["Memory"], 64 << 20);
        assert_eq!(v["NanoCpus"], 1_500_000_000i64);
        assert_eq!(v["PidsLimit"], -1);
        assert_eq!(v["RestartPolicy"]["Name"], "on-failure");
        assert_eq!(v["RestartPolicy"]["MaximumRetryCount"], 3);
        let t = T::try_parse_from(["t", "c"]).unwrap();
        assert!(t.u.config().is_err());
    }
}
