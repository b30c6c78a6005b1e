//! Managing a container that exists: `rename`, `pause`/`unpause`, `top` and
//! `update`, as Docker's API does them.
//!
//! Native containers are paused with the cgroup freezer and updated through
//! their cgroup; Wasm containers are paused and updated through their
//! executor's [`Control`](crate::executor::Control) (the guest is suspended
//! at its next epoch tick; its memory cap is shared with its store). `top`
//! lists a native container's processes from its cgroup and `/proc`; a Wasm
//! container has none to list. This module changes records only through
//! the container's lock and persists them itself.

use super::{Container, Containers, Status, names};
use crate::error::{Error, Result, ResultExt};
use crate::executor::ExecutorKind;
use crate::executor::native::cgroups::{Cgroup, Resources};
use crate::store::Durability;
use berth_api_types::container::RestartPolicy;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// `POST /containers/{id}/update` body (Docker's `UpdateConfig`). Zero
/// values leave a setting as it is, as in Docker; `PidsLimit` is left alone
/// when absent.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct UpdateRequest {
    pub memory: i64,
    pub memory_swap: i64,
    pub nano_cpus: i64,
    pub cpu_shares: i64,
    pub cpu_quota: i64,
    pub cpu_period: i64,
    pub pids_limit: Option<i64>,
    pub restart_policy: RestartPolicy,
    /// Everything else the client sent: refused when set, since berth
    /// cannot change it.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// `POST /containers/{id}/update` answer.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateResponse {
    pub warnings: Vec<String>,
}

/// `GET /containers/{id}/top` answer.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct TopResponse {
    pub titles: Vec<String>,
    pub processes: Vec<Vec<String>>,
}

/// Whether a JSON value a client sent sets something (Go's zero values and
/// `null` do not).
fn is_set(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Null => false,
        serde_json::Value::Bool(b) => *b,
        serde_json::Value::Number(n) => n.as_f64() != Some(0.0),
        serde_json::Value::String(s) => !s.is_empty(),
        serde_json::Value::Array(a) => !a.is_empty(),
        serde_json::Value::Object(o) => o.values().any(is_set),
    }
}

impl Containers {
    /// The cgroup of a native container that has processes.
    pub(super) fn cgroup_of(&self, id: &str) -> Result<Cgroup> {
        let mgr = self.native.cgroups.as_ref().ok_or_else(|| {
            Error::not_implemented("this host has no cgroups mounted that berth can use")
        })?;
        mgr.open(id).ok_or_else(|| {
            Error::internal(format!(
                "the cgroup of container {id} is missing: its processes cannot be found"
            ))
        })
    }

    /// `POST /containers/{id}/rename?name=`. The name index and the
    /// record change together, under the registry lock: the new name is
    /// durable before either is visible, and a failed write changes
    /// neither.
    #[tracing::instrument(level = "debug", skip_all, fields(container = name))]
    pub fn rename(&self, name: &str, new_name: &str) -> Result<()> {
        if new_name.trim_start_matches('/').is_empty() {
            return Err(Error::invalid("Neither old nor new names may be empty"));
        }
        let new_name = names::validate(new_name.trim_start_matches('/'))?;
        let c = self.get(name)?;
        let (old, rec) = {
            let mut reg = self.registry.write().unwrap();
            let mut inner = c.inner.lock().unwrap();
            if inner.removed {
                return Err(Error::not_found(format!("No such container: {name}")));
            }
            let old = inner.record.name.clone();
            if old == new_name {
                return Err(Error::invalid(
                    "Renaming a container with the same name as its current name",
                ));
            }
            if let Some(other) = reg.by_name.get(&new_name) {
                return Err(Error::conflict(format!(
                    "Conflict. The container name \"/{new_name}\" is already in use by container \"{other}\". \
                     You have to remove (or rename) that container to be able to reuse that name."
                )));
            }
            let mut rec = inner.record.clone();
            rec.name = new_name.clone();
            self.write_now(&rec, Durability::Immediate)?;
            inner.record.name = new_name.clone();
            if reg.by_name.get(&old) == Some(&c.id) {
                reg.by_name.remove(&old);
            }
            reg.by_name.insert(new_name.clone(), c.id.clone());
            (old, inner.record.clone())
        };
        self.events.container(
            "rename",
            &rec.id,
            super::event_attributes(&rec, &[("oldName", format!("/{old}"))]),
        );
        Ok(())
    }

    /// `POST /containers/{id}/pause`.
    #[tracing::instrument(level = "debug", skip_all, fields(container = name))]
    pub async fn pause(&self, name: &str) -> Result<()> {
        let c = self.get(name)?;
        let _op = c.ops.lock().await;
        let (rec, control) = {
            let inner = c.inner.lock().unwrap();
            match inner.record.state.status {
                Status::Running => {}
                Status::Paused => {
                    return Err(Error::conflict(format!(
                        "Container {} is already paused",
                        c.id
                    )));
                }
                _ => {
                    return Err(Error::conflict(format!(
                        "Container {} is not running",
                        c.id
                    )));
                }
            }
            (inner.record.clone(), inner.control.clone())
        };
        match rec.workload.kind() {
            ExecutorKind::Native => {
                let cg = self.cgroup_of(&rec.id)?;
                tokio::task::spawn_blocking(move || cg.freeze())
                    .await
                    .ctx("freezing the container")??;
            }
            ExecutorKind::Wasm => match control {
                Some(ctl) => ctl.pause()?,
                None => {
                    return Err(Error::conflict(format!(
                        "Container {} is not running",
                        c.id
                    )));
                }
            },
        }
        let rec = {
            let mut inner = c.inner.lock().unwrap();
            if inner.record.state.status != Status::Running {
                // It ended while being frozen.
                return Err(Error::conflict(format!(
                    "Container {} is not running",
                    c.id
                )));
            }
            inner.record.state.status = Status::Paused;
            inner.record.clone()
        };
        self.persist(&rec, Durability::None)?;
        self.emit(&c, "pause", &[]);
        Ok(())
    }

    /// `POST /containers/{id}/unpause`.
    #[tracing::instrument(level = "debug", skip_all, fields(container = name))]
    pub async fn unpause(&self, name: &str) -> Result<()> {
        let c = self.get(name)?;
        let _op = c.ops.lock().await;
        if c.inner.lock().unwrap().record.state.status != Status::Paused {
            return Err(Error::conflict(format!("Container {} is not paused", c.id)));
        }
        self.unpause_if_paused(&c).await
    }

    /// Thaws a paused container (for unpause, and before stop, SIGKILL and
    /// forced removal); does nothing to one that is not paused.
    pub(super) async fn unpause_if_paused(&self, c: &Container) -> Result<()> {
        let (rec, control) = {
            let inner = c.inner.lock().unwrap();
            if inner.record.state.status != Status::Paused {
                return Ok(());
            }
            (inner.record.clone(), inner.control.clone())
        };
        match rec.workload.kind() {
            ExecutorKind::Native => {
                let cg = self.cgroup_of(&rec.id)?;
                tokio::task::spawn_blocking(move || cg.thaw())
                    .await
                    .ctx("thawing the container")??;
            }
            ExecutorKind::Wasm => {
                if let Some(ctl) = control {
                    ctl.resume()?;
                }
            }
        }
        let rec = {
            let mut inner = c.inner.lock().unwrap();
            if inner.record.state.status != Status::Paused {
                return Ok(());
            }
            inner.record.state.status = Status::Running;
            inner.record.clone()
        };
        self.persist(&rec, Durability::None)?;
        self.emit(c, "unpause", &[]);
        Ok(())
    }

    /// `GET /containers/{id}/top?ps_args=`: the container's processes as
    /// `ps -ef` shows them, read from its cgroup and `/proc`. Other
    /// `ps_args` run the host's `ps` with them and keep the container's
    /// rows, as Docker does.
    pub async fn top(&self, name: &str, ps_args: &str) -> Result<TopResponse> {
        let c = self.get(name)?;
        let rec = c.record();
        if rec.workload.kind() == ExecutorKind::Wasm {
            return Err(Error::invalid(
                "top is not available for Wasm containers: a Wasm container is one module instance, not processes",
            ));
        }
        if !matches!(rec.state.status, Status::Running | Status::Paused) {
            return Err(Error::conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        let cg = self.cgroup_of(&rec.id)?;
        let args = ps_args.trim().to_string();
        tokio::task::spawn_blocking(move || {
            let pids = cg.pids()?;
            if args.is_empty() || args == "-ef" {
                Ok(top::ps_ef(&pids))
            } else {
                top::run_ps(&args, &pids)
            }
        })
        .await
        .ctx("listing processes")?
    }

    /// `POST /containers/{id}/update`: resource limits and the restart
    /// policy. A running native container gets the new limits in its
    /// cgroup at once; a Wasm container's memory cap applies to the running
    /// guest. The record's `HostConfig` keeps them for the next start.
    #[tracing::instrument(level = "debug", skip_all, fields(container = name))]
    pub async fn update(&self, name: &str, req: UpdateRequest) -> Result<UpdateResponse> {
        let c = self.get(name)?;
        let _op = c.ops.lock().await;
        let (rec, control) = {
            let inner = c.inner.lock().unwrap();
            (inner.record.clone(), inner.control.clone())
        };
        if let Some((key, _)) = req.other.iter().find(|(_, v)| is_set(v)) {
            return Err(Error::not_implemented(format!(
                "berth cannot update {key} yet: it updates Memory, MemorySwap, NanoCpus, CpuShares, CpuQuota, CpuPeriod, PidsLimit and RestartPolicy"
            )));
        }
        let mut warnings = Vec::new();
        let mut host = rec.host_config.clone();
        if !req.restart_policy.name.is_empty() {
            if host.auto_remove {
                return Err(Error::invalid(
                    "Restart policy cannot be updated because AutoRemove is enabled for the container",
                ));
            }
            let mut probe = host.clone();
            probe.restart_policy = req.restart_policy.clone();
            super::spec::Restart::parse(&probe)?;
            host.restart_policy = req.restart_policy.clone();
        }
        let cpu_set =
            req.nano_cpus != 0 || req.cpu_quota != 0 || req.cpu_period != 0 || req.cpu_shares != 0;
        let running = matches!(rec.state.status, Status::Running | Status::Paused);
        match rec.workload.kind() {
            ExecutorKind::Wasm => {
                if cpu_set {
                    return Err(Error::not_implemented(
                        "CPU limits (--cpus, --cpu-shares, --cpu-quota, --cpu-period) are not supported for Wasm containers yet",
                    ));
                }
                if req.pids_limit.is_some() {
                    return Err(Error::invalid(
                        "a pids limit has no meaning for a Wasm container: it is one module instance, not processes",
                    ));
                }
                if req.memory_swap != 0 {
                    warnings.push(
                        "memory swap limit ignored: a Wasm container's memory is its linear memory, which does not swap"
                            .to_string(),
                    );
                }
                if req.memory != 0 {
                    if req.memory > 0 && req.memory < 65536 {
                        return Err(Error::invalid(
                            "memory limit too small: a Wasm container needs at least one 64 KiB page (--memory 64k)",
                        ));
                    }
                    let limit = (req.memory > 0).then_some(req.memory as u64);
                    if running && let Some(ctl) = &control {
                        ctl.set_memory_limit(limit)?;
                    }
                    host.memory = req.memory.max(0);
                }
            }
            ExecutorKind::Native => {
                check_native_update(&req, &host)?;
                if running {
                    let r = Resources {
                        memory: (req.memory != 0).then_some(req.memory),
                        memory_swap: (req.memory_swap != 0).then_some(req.memory_swap),
                        cpu_shares: (req.cpu_shares > 0).then_some(req.cpu_shares as u64),
                        nano_cpus: (req.nano_cpus != 0).then_some(req.nano_cpus),
                        cpu_quota: (req.cpu_quota != 0).then_some(req.cpu_quota),
                        cpu_period: (req.cpu_period > 0).then_some(req.cpu_period as u64),
                        pids_limit: req.pids_limit,
                        ..Default::default()
                    };
                    let cg = self.cgroup_of(&rec.id)?;
                    tokio::task::spawn_blocking(move || cg.set(&r))
                        .await
                        .ctx("updating the container's cgroup")??;
                }
                if req.memory != 0 {
                    host.memory = req.memory.max(0);
                }
                if req.memory_swap != 0 {
                    host.memory_swap = req.memory_swap;
                }
                if req.cpu_shares != 0 {
                    host.cpu_shares = req.cpu_shares;
                }
                if req.nano_cpus != 0 {
                    host.nano_cpus = req.nano_cpus;
                }
                if req.cpu_quota != 0 {
                    host.cpu_quota = req.cpu_quota;
                }
                if req.cpu_period != 0 {
                    host.cpu_period = req.cpu_period;
                }
                if let Some(p) = req.pids_limit {
                    // 0 and -1 both lift the limit; kept as -1 so that the
                    // next start does not read 0 as "the default limit".
                    host.pids_limit = Some(if p <= 0 { -1 } else { p });
                }
            }
        }
        let rec = {
            let mut inner = c.inner.lock().unwrap();
            inner.record.host_config = host;
            inner.record.clone()
        };
        self.persist(&rec, Durability::Immediate)?;
        self.emit(&c, "update", &[]);
        Ok(UpdateResponse { warnings })
    }

    /// Native containers' unpacked layers and Wasm containers' nothing:
    /// what image pruning must keep.
    pub fn layers_in_use(&self) -> HashSet<crate::util::Digest> {
        self.registry
            .read()
            .unwrap()
            .by_id
            .values()
            .filter_map(|c| c.inner.lock().unwrap().record.workload.native().cloned())
            .flat_map(|n| n.layers.into_iter().map(|l| l.digest))
            .collect()
    }
}

/// Docker's checks of an update against what the container has.
fn check_native_update(
    req: &UpdateRequest,
    host: &berth_api_types::container::HostConfig,
) -> Result<()> {
    if req.memory > 0 && req.memory < 6 * 1024 * 1024 {
        return Err(Error::invalid("Minimum memory limit allowed is 6MB"));
    }
    if req.memory_swap > 0 {
        let memory = if req.memory != 0 {
            req.memory
        } else {
            host.memory
        };
        if memory > 0 && req.memory_swap < memory {
            return Err(Error::invalid(
                "Minimum memoryswap limit should be larger than memory limit, see usage",
            ));
        }
    }
    if req.memory > 0
        && req.memory_swap == 0
        && host.memory_swap > 0
        && req.memory > host.memory_swap
    {
        return Err(Error::invalid(
            "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time",
        ));
    }
    if req.nano_cpus != 0 && (req.cpu_quota != 0 || req.cpu_period != 0) {
        return Err(Error::invalid(
            "Conflicting options: Nano CPUs and CPU Period cannot both be set",
        ));
    }
    if req.nano_cpus != 0 && (host.cpu_quota != 0 || host.cpu_period != 0) {
        return Err(Error::invalid(
            "Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set",
        ));
    }
    if (req.cpu_quota != 0 || req.cpu_period != 0) && host.nano_cpus != 0 {
        return Err(Error::invalid(
            "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set",
        ));
    }
    let ncpu = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1) as i64;
    if req.nano_cpus < 0 || req.nano_cpus > ncpu * 1_000_000_000 {
        return Err(Error::invalid(format!(
            "Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
        )));
    }
    if req.cpu_shares < 0 {
        return Err(Error::invalid("invalid CPU shares: they can't be negative"));
    }
    Ok(())
}

/// Process listings for `top`.
mod top {
    use super::TopResponse;
    use crate::error::{Error, Result};
    use std::collections::HashMap;

    const TITLES: [&str; 8] = ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"];

    /// One process as `/proc` describes it.
    struct Proc {
        pid: i32,
        ppid: i32,
        uid: u32,
        tty_nr: u64,
        /// utime + stime, in clock ticks.
        cpu_ticks: u64,
        /// Since boot, in clock ticks.
        start_ticks: u64,
        cmd: String,
    }

    fn read_proc(pid: i32) -> Option<Proc> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let open = stat.find('(')?;
        let close = stat.rfind(')')?;
        let comm = &stat[open + 1..close];
        let f: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        // After the command: state ppid pgrp session tty_nr tpgid flags
        // minflt cminflt majflt cmajflt utime stime ... starttime (20th).
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let uid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|u| u.parse().ok())
            .unwrap_or(0);
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let cmd = if args.is_empty() {
            format!("[{comm}]")
        } else {
            args.join(" ")
        };
        Some(Proc {
            pid,
            ppid: num(1)? as i32,
            uid,
            tty_nr: num(4)?,
            cpu_ticks: num(11)? + num(12)?,
            start_ticks: num(19)?,
            cmd,
        })
    }

    /// User names from the host's `/etc/passwd`, as `ps` shows them.
    fn users() -> HashMap<u32, String> {
        std::fs::read_to_string("/etc/passwd")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?;
                let uid = f.nth(1)?.parse().ok()?;
                Some((uid, name.to_string()))
            })
            .collect()
    }

    fn clock_ticks() -> u64 {
        // SAFETY: sysconf has no preconditions.
        (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).max(1) as u64
    }

    fn boot_time() -> i64 {
        std::fs::read_to_string("/proc/stat")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }

    /// `ps`'s TTY column: `pts/N`, `ttyN`, `ttySN`, or `?`.
    pub(super) fn tty_name(tty_nr: u64) -> String {
        if tty_nr == 0 {
            return "?".into();
        }
        let major = (tty_nr >> 8) & 0xfff;
        let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
        match major {
            136..=143 => format!("pts/{}", (major - 136) * 256 + minor),
            4 if minor < 64 => format!("tty{minor}"),
            4 => format!("ttyS{}", minor - 64),
            _ => "?".into(),
        }
    }

    /// `ps`'s TIME column: `[DD-]HH:MM:SS` of CPU time.
    pub(super) fn cpu_time(secs: u64) -> String {
        let (d, h, m, s) = (
            secs / 86400,
            (secs / 3600) % 24,
            (secs / 60) % 60,
            secs % 60,
        );
        if d > 0 {
            format!("{d}-{h:02}:{m:02}:{s:02}")
        } else {
            format!("{h:02}:{m:02}:{s:02}")
        }
    }

    /// `ps`'s STIME column: the time today, the date this year, else the
    /// year.
    pub(super) fn start_time(start: i64, now: i64) -> String {
        use chrono::TimeZone;
        let Some(t) = chrono::Local.timestamp_opt(start, 0).single() else {
            return "?".into();
        };
        let age = now - start;
        if age > 365 * 86400 {
            t.format("%Y").to_string()
        } else if age > 86400 {
            t.format("%b%d").to_string()
        } else {
            t.format("%H:%M").to_string()
        }
    }

    /// `ps -ef` of the given processes.
    pub(super) fn ps_ef(pids: &[i32]) -> TopResponse {
        let hz = clock_ticks();
        let btime = boot_time();
        let now = chrono::Utc::now().timestamp();
        let users = users();
        let mut procs: Vec<Proc> = pids.iter().filter_map(|p| read_proc(*p)).collect();
        procs.sort_by_key(|p| p.pid);
        let processes = procs
            .iter()
            .map(|p| {
                let start = btime + (p.start_ticks / hz) as i64;
                let elapsed = (now - start).max(1) as u64;
                let c = (p.cpu_ticks * 100 / hz / elapsed).min(99);
                vec![
                    users
                        .get(&p.uid)
                        .cloned()
                        .unwrap_or_else(|| p.uid.to_string()),
                    p.pid.to_string(),
                    p.ppid.to_string(),
                    c.to_string(),
                    start_time(start, now),
                    tty_name(p.tty_nr),
                    cpu_time(p.cpu_ticks / hz),
                    p.cmd.clone(),
                ]
            })
            .collect();
        TopResponse {
            titles: TITLES.iter().map(|t| t.to_string()).collect(),
            processes,
        }
    }

    /// Runs the host's `ps` with `args` and keeps the rows of `pids`, as
    /// Docker does for `docker top CONTAINER ARGS`.
    pub(super) fn run_ps(args: &str, pids: &[i32]) -> Result<TopResponse> {
        let out = std::process::Command::new("ps")
            .args(args.split_whitespace())
            .output()
            .map_err(|e| Error::internal(format!("running ps: {e}")))?;
        if !out.status.success() {
            return Err(Error::invalid(format!(
                "Error running ps: {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        parse_ps(&String::from_utf8_lossy(&out.stdout), pids)
    }

    /// Docker's parsing of `ps` output: the header's words are the titles,
    /// the last column takes the rest of the line, and rows are kept by
    /// their PID column.
    pub(super) fn parse_ps(text: &str, pids: &[i32]) -> Result<TopResponse> {
        let mut lines = text.lines();
        let titles: Vec<String> = lines
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .map(String::from)
            .collect();
        let pid_col = titles.iter().position(|t| t == "PID").ok_or_else(|| {
            Error::invalid("Couldn't find PID field in ps output: give ps arguments that show it")
        })?;
        let mut processes = Vec::new();
        for line in lines {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < titles.len() || titles.is_empty() {
                continue;
            }
            let Ok(pid) = fields[pid_col].parse::<i32>() else {
                continue;
            };
            if !pids.contains(&pid) {
                continue;
            }
            let mut row: Vec<String> = fields[..titles.len() - 1]
                .iter()
                .map(|s| s.to_string())
                .collect();
            row.push(fields[titles.len() - 1..].join(" "));
            processes.push(row);
        }
        Ok(TopResponse { titles, processes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_columns_like_procps() {
        assert_eq!(top::tty_name(0), "?");
        assert_eq!(top::tty_name((136 << 8) | 3), "pts/3");
        assert_eq!(top::tty_name((4 << 8) | 1), "tty1");
        assert_eq!(top::cpu_time(5), "00:00:05");
        assert_eq!(top::cpu_time(3 * 86400 + 3661), "3-01:01:01");
        let now = 1_700_000_000;
        assert_eq!(top::start_time(now - 400 * 86400, now).len(), 4);
        assert_eq!(top::start_time(now - 60, now).len(), 5);
    }

    #[test]
    fn ps_output_is_filtered_by_pid_like_docker() {
        let text = "  PID TTY      STAT   TIME COMMAND\n    1 ?        Ss     0:00 sleep 100\n   42 pts/0    S      0:00 sh -c echo hi\n";
        let r = top::parse_ps(text, &[42]).unwrap();
        assert_eq!(r.titles, ["PID", "TTY", "STAT", "TIME", "COMMAND"]);
        assert_eq!(
            r.processes,
            vec![vec!["42", "pts/0", "S", "0:00", "sh -c echo hi"]]
        );
        assert!(top::parse_ps("USER COMMAND\nroot x\n", &[1]).is_err());
    }

    #[test]
    fn ps_ef_lists_this_process() {
        let me = std::process::id() as i32;
        let r = top::ps_ef(&[me]);
        assert_eq!(r.titles.len(), 8);
        assert_eq!(r.processes.len(), 1);
        assert_eq!(r.processes[0][1], me.to_string());
    }

    #[test]
    fn update_requests_read_dockers_zero_values() {
        let r: UpdateRequest = serde_json::from_str(
            r#"{"Memory":52428800,"MemorySwap":0,"CpuShares":0,"BlkioWeight":0,"CpusetCpus":"","PidsLimit":null,"RestartPolicy":{"Name":"","MaximumRetryCount":0},"Ulimits":null}"#,
        )
        .unwrap();
        assert_eq!(r.memory, 52428800);
        assert_eq!(r.pids_limit, None);
        assert!(!r.other.values().any(is_set));
        let r: UpdateRequest = serde_json::from_str(r#"{"BlkioWeight":300}"#).unwrap();
        assert!(r.other.values().any(is_set));
    }

    #[test]
    fn native_update_checks() {
        let host = berth_api_types::container::HostConfig {
            memory: 100 << 20,
            memory_swap: 200 << 20,
            ..Default::default()
        };
        let req = |j: &str| serde_json::from_str::<UpdateRequest>(j).unwrap();
        assert!(check_native_update(&req(r#"{"Memory":1000}"#), &host).is_err());
        assert!(check_native_update(&req(r#"{"Memory":314572800}"#), &host).is_err());
        assert!(check_native_update(&req(r#"{"Memory":157286400}"#), &host).is_ok());
        assert!(
            check_native_update(&req(r#"{"NanoCpus":500000000,"CpuQuota":1000}"#), &host).is_err()
        );
    }
}
