//! `GET /containers/{id}/stats`: samples of a native container's cgroup
//! counters, or of a Wasm container's own accounting (linear memory, time
//! spent running the guest), in Docker's JSON shape (`read`, `cpu_stats`, `precpu_stats`,
//! `memory_stats`, `pids_stats`, `blkio_stats`), which `docker stats`
//! turns into percentages.

use super::{Containers, Status};
use crate::error::Result;
use crate::executor::native::cgroups::Stats;
use crate::executor::{ExecutorKind, Usage};
use serde_json::{Value, json};

/// One sample, kept to serve as the next sample's `precpu_stats`.
#[derive(Debug, Clone)]
pub struct Sample {
    pub read: String,
    pub cpu: Value,
    pub json: Value,
}

/// Total CPU time of the host in nanoseconds, from `/proc/stat`, as Docker's
/// `system_cpu_usage`.
fn system_cpu_ns() -> u64 {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: u64 = text
        .lines()
        .next()
        .filter(|l| l.starts_with("cpu "))
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .take(8)
                .filter_map(|v| v.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    ticks * (1_000_000_000 / hz)
}

fn cpu_json(s: &Stats, online: usize) -> Value {
    json!({
        "cpu_usage": {
            "total_usage": s.cpu.total_ns,
            "percpu_usage": if s.cpu.per_cpu_ns.is_empty() { Value::Null } else { json!(s.cpu.per_cpu_ns) },
            "usage_in_kernelmode": s.cpu.system_ns,
            "usage_in_usermode": s.cpu.user_ns,
        },
        "system_cpu_usage": system_cpu_ns(),
        "online_cpus": online,
        "throttling_data": {
            "periods": s.cpu.periods,
            "throttled_periods": s.cpu.throttled_periods,
            "throttled_time": s.cpu.throttled_ns,
        },
    })
}

impl Containers {
    /// One stats sample of a container; `prev` fills `precpu_stats`.
    pub fn stats_sample(&self, name: &str, prev: Option<&Sample>) -> Result<Sample> {
        let c = self.get(name)?;
        let rec = c.record();
        let online = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let read = crate::util::now_rfc3339();
        let running = rec.state.status == Status::Running || rec.state.status == Status::Paused;
        let empty_cpu = json!({"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0}, "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}});
        let (cpu, memory, pids, blkio) = if rec.workload.kind() == ExecutorKind::Wasm {
            // The executor's own accounting: the guest's linear memory and
            // the time spent running it.
            let usage = running
                .then(|| c.inner.lock().unwrap().control.clone())
                .flatten()
                .and_then(|control| control.usage());
            wasm_parts(usage, online)
        } else {
            self.native_parts(&rec, running, online, &empty_cpu)?
        };
        let (preread, precpu) = match prev {
            Some(p) => (p.read.clone(), p.cpu.clone()),
            None => (crate::util::ZERO_TIME.to_string(), empty_cpu),
        };
        let json = json!({
            "read": read,
            "preread": preread,
            "pids_stats": pids,
            "blkio_stats": blkio,
            "num_procs": 0,
            "storage_stats": {},
            "cpu_stats": cpu,
            "precpu_stats": precpu,
            "memory_stats": memory,
            "name": format!("/{}", rec.name),
            "id": rec.id,
            "networks": {},
        });
        Ok(Sample { read, cpu, json })
    }

    /// A native container's cpu, memory, pids and blkio stats from its
    /// cgroup (zeros when it is not running).
    fn native_parts(
        &self,
        rec: &super::ContainerRecord,
        running: bool,
        online: usize,
        empty_cpu: &Value,
    ) -> Result<(Value, Value, Value, Value)> {
        let stats = if running {
            self.native
                .cgroups
                .as_ref()
                .and_then(|m| m.open(&rec.id))
                .map(|cg| cg.stats())
                .transpose()?
        } else {
            None
        };
        Ok(match &stats {
            None => (empty_cpu.clone(), json!({}), json!({}), json!({})),
            Some(s) => {
                let mut memory = json!({
                    "usage": s.memory.usage,
                    "stats": s.memory.stats,
                    "limit": s.memory.limit.unwrap_or_else(host_memory),
                });
                if let Some(m) = s.memory.max_usage {
                    memory["max_usage"] = m.into();
                }
                if let Some(f) = s.memory.failcnt {
                    memory["failcnt"] = f.into();
                }
                let mut pids = json!({"current": s.pids.current});
                if let Some(l) = s.pids.limit {
                    pids["limit"] = l.into();
                }
                let io: Vec<Value> = s
                    .io
                    .iter()
                    .map(|e| json!({"major": e.major, "minor": e.minor, "op": e.op, "value": e.value}))
                    .collect();
                (
                    cpu_json(s, online),
                    memory,
                    pids,
                    json!({"io_service_bytes_recursive": io}),
                )
            }
        })
    }
}

/// A Wasm container's cpu, memory, pids and blkio stats: `usage` is
/// `None` when it is not running.
fn wasm_parts(usage: Option<Usage>, online: usize) -> (Value, Value, Value, Value) {
    let cpu = json!({
        "cpu_usage": {
            "total_usage": usage.map_or(0, |u| u.cpu_ns),
            "usage_in_kernelmode": 0,
            "usage_in_usermode": usage.map_or(0, |u| u.cpu_ns),
        },
        "system_cpu_usage": system_cpu_ns(),
        "online_cpus": online,
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    });
    let memory = match usage {
        None => json!({}),
        Some(u) => json!({
            "usage": u.memory,
            "stats": {},
            "limit": u.memory_limit.unwrap_or_else(host_memory),
        }),
    };
    (cpu, memory, json!({}), json!({}))
}

fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("MemTotal:")
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}
