//! cgroups for native containers, on cgroup v1, v2 and the hybrid layout.
//!
//! This module finds how the host mounts cgroups (from `/proc/self/mountinfo`:
//! for each controller, which hierarchy holds it), makes one cgroup per
//! container at `<hierarchy root>/<parent>/<id>` in every hierarchy (the
//! "cgroupfs" driver: no systemd; the parent is `berth` unless configured),
//! applies Docker's resource options with Docker's and runc's conversions,
//! reads the counters behind `docker stats`, and freezes, signals and removes
//! a container's processes. Device rules are put in place here too (the
//! v1 devices controller, or on v2 an eBPF filter), with the rules'
//! meaning and the eBPF code in [`devices`](super::devices).
//!
//! It touches nothing but the cgroup filesystems, and there only the
//! `<parent>` subtree, plus `cgroup.subtree_control` of the ancestors on v2
//! (controllers must be enabled top-down). It knows a container only by its
//! id: spawning, namespaces and mounting `/sys/fs/cgroup` inside the
//! container belong to the executor, and Docker-level defaults such as "a
//! pids limit on by default" belong to whoever builds the [`Resources`].

use std::collections::BTreeMap;
use std::fmt::Display;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::devices::{self, DevicePolicy, DeviceRule};
use crate::error::{Error, Result};

/// Name of the cgroup under each hierarchy root that holds berth's
/// containers, like Docker's `/docker`.
pub const DEFAULT_PARENT: &str = "berth";

/// What `docker info` calls the cgroup driver.
pub const DRIVER: &str = "cgroupfs";

/// Controllers that can be bound to a v1 hierarchy (as mount options).
const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "blkio",
    "perf_event",
    "net_prio",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
    "debug",
];

/// Controllers berth enables in `cgroup.subtree_control` on the way down to
/// its cgroups on v2 (those it sets limits with or reads counters from).
const V2_WANTED: &[&str] = &["cpuset", "cpu", "io", "memory", "pids"];

/// CFS period Docker uses for `--cpus` (100 ms, in µs).
pub const NANO_CPUS_PERIOD: u64 = 100_000;

/// `cpuacct.stat` counts in USER_HZ ticks, which Linux fixes at 100 per
/// second for user space on every architecture.
const NS_PER_TICK: u64 = 10_000_000;

/// v1 reports "no limit" as the largest page-aligned i64; anything this big
/// is no limit.
const V1_UNLIMITED: u64 = 1 << 62;

/// How long freeze and thaw wait for the kernel to reach the state.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(3);

/// How long destroy retries `rmdir` while the last processes leave.
const DESTROY_TIMEOUT: Duration = Duration::from_secs(3);

/// Resource options, with Docker's `HostConfig` meaning and units.
///
/// `None` leaves a setting alone (on create: the kernel's default, which is
/// no limit). As in Docker's API, `Some(0)` means the same as `None` for
/// every field except `pids_limit`, and an empty `cpuset_cpus` too.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// Memory limit in bytes (`--memory`); -1 for no limit.
    pub memory: Option<i64>,
    /// Memory plus swap in bytes (`--memory-swap`); -1 for unlimited swap.
    /// Left unset with a memory limit, [`CgroupManager::create`] makes it
    /// twice the memory, as Docker does, where swap is accounted.
    pub memory_swap: Option<i64>,
    /// Relative CPU weight (`--cpu-shares`), 2 to 262144, default 1024.
    pub cpu_shares: Option<u64>,
    /// CPUs in billionths (`--cpus 1.5` is 1_500_000_000). Becomes a CFS
    /// quota over a 100 ms period; excludes `cpu_quota` and `cpu_period`.
    pub nano_cpus: Option<i64>,
    /// CFS quota in µs per period (`--cpu-quota`); -1 for no limit.
    pub cpu_quota: Option<i64>,
    /// CFS period in µs (`--cpu-period`), 1000 to 1000000.
    pub cpu_period: Option<u64>,
    /// Most tasks the container may have (`--pids-limit`); 0 or -1: no limit.
    pub pids_limit: Option<i64>,
    /// CPUs the container may run on (`--cpuset-cpus`), e.g. `0-2,4`.
    pub cpuset_cpus: Option<String>,
    /// Device access rules, in order (OCI `linux.resources.devices`,
    /// v1's meaning). Empty leaves device access alone. Applied by
    /// [`CgroupManager::create`] only, before any process joins; `set`
    /// leaves them as they are.
    #[serde(default)]
    pub devices: Vec<DeviceRule>,
}

impl Resources {
    /// Checks the values as Docker does at `create`, with Docker's messages.
    /// [`CgroupManager::create`] calls it; the container layer may call it
    /// earlier to refuse a bad `create` before anything runs.
    pub fn validate(&self) -> Result<()> {
        self.check(true)
    }

    fn check(&self, creating: bool) -> Result<()> {
        let memory = self.memory.unwrap_or(0);
        let swap = self.memory_swap.unwrap_or(0);
        if memory < -1 {
            return Err(Error::invalid(format!("invalid memory limit {memory}")));
        }
        if memory > 0 && memory < 6 * 1024 * 1024 {
            return Err(Error::invalid("Minimum memory limit allowed is 6MB"));
        }
        if swap < -1 {
            return Err(Error::invalid(format!("invalid memory swap limit {swap}")));
        }
        if memory > 0 && swap > 0 && swap < memory {
            return Err(Error::invalid(
                "Minimum memoryswap limit should be larger than memory limit, see usage",
            ));
        }
        if creating && memory <= 0 && swap > 0 {
            return Err(Error::invalid(
                "You should always set the Memory limit when using Memoryswap limit, see usage",
            ));
        }
        let nano = self.nano_cpus.unwrap_or(0);
        let quota = self.cpu_quota.unwrap_or(0);
        let period = self.cpu_period.unwrap_or(0);
        if nano > 0 && period > 0 {
            return Err(Error::invalid(
                "Conflicting options: Nano CPUs and CPU Period cannot both be set",
            ));
        }
        if nano > 0 && quota > 0 {
            return Err(Error::invalid(
                "Conflicting options: Nano CPUs and CPU Quota cannot both be set",
            ));
        }
        let ncpu = online_cpus() as i64;
        if nano < 0 || (nano > 0 && (nano < 10_000_000 || nano > ncpu * 1_000_000_000)) {
            return Err(Error::invalid(format!(
                "Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
            )));
        }
        if period != 0 && !(1000..=1_000_000).contains(&period) {
            return Err(Error::invalid(
                "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1 second (i.e. 1000000)",
            ));
        }
        if quota < -1 || (quota > 0 && quota < 1000) {
            return Err(Error::invalid(
                "CPU cfs quota can not be less than 1ms (i.e. 1000)",
            ));
        }
        if let Some(cpus) = self.cpuset_cpus.as_deref().filter(|s| !s.trim().is_empty())
            && parse_cpu_list(cpus).is_none()
        {
            return Err(Error::invalid(format!(
                "Invalid value {cpus} for cpuset cpus"
            )));
        }
        if !self.devices.is_empty() {
            DevicePolicy::from_rules(&self.devices)?;
        }
        Ok(())
    }

    /// The values to write: zero values dropped, `--cpus` turned into a
    /// quota, negative values folded to -1 ("no limit").
    fn limits(&self) -> Limits {
        let nonzero = |v: Option<i64>| v.filter(|&v| v != 0).map(|v| v.max(-1));
        let mut l = Limits {
            memory: nonzero(self.memory),
            swap: nonzero(self.memory_swap),
            shares: self.cpu_shares.filter(|&s| s != 0),
            quota: nonzero(self.cpu_quota),
            period: self.cpu_period.filter(|&p| p != 0),
            pids: self.pids_limit.map(|p| if p <= 0 { -1 } else { p }),
            cpus: self
                .cpuset_cpus
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from),
        };
        if let Some(n) = self.nano_cpus.filter(|&n| n > 0) {
            let (quota, period) = nano_cpus_to_quota(n);
            l.quota = Some(quota);
            l.period = Some(period);
        }
        l
    }
}

/// Values to write; `-1` is "no limit" and `None` "leave alone".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Limits {
    memory: Option<i64>,
    /// Memory plus swap, Docker's meaning.
    swap: Option<i64>,
    shares: Option<u64>,
    quota: Option<i64>,
    period: Option<u64>,
    pids: Option<i64>,
    cpus: Option<String>,
}

/// One mounted cgroup hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hierarchy {
    /// Where the host mounts it, e.g. `/sys/fs/cgroup/memory`.
    pub mount_point: PathBuf,
    /// v1: the controllers bound to it, sorted (`cpu`, `cpuacct`, or
    /// `name=systemd` for a named hierarchy). v2: the controllers its root
    /// offers (`cgroup.controllers`).
    pub controllers: Vec<String>,
    /// The cgroup2 ("unified") hierarchy.
    pub unified: bool,
}

/// The host's cgroup layout, and where berth keeps its cgroups in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupManager {
    /// v1 hierarchies first, then the unified one if mounted.
    hierarchies: Vec<Hierarchy>,
    parent: String,
}

/// What the host's cgroups can limit, for `docker info` and for warnings
/// when an option will be discarded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Features {
    pub memory: bool,
    /// Memory plus swap can be limited (v1 `memory.memsw.*`, v2 `memory.swap.max`).
    pub swap: bool,
    pub cpu_shares: bool,
    pub cpu_cfs: bool,
    pub cpuset: bool,
    pub pids: bool,
    /// pause/unpause: v1 freezer controller or v2 `cgroup.freeze`.
    pub freezer: bool,
}

impl CgroupManager {
    /// Reads `/proc/self/mountinfo` and finds every cgroup hierarchy:
    /// pure v1, pure v2, or hybrid (v1 controllers plus a cgroup2 mount).
    pub fn detect() -> Result<CgroupManager> {
        let text = fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| Error::internal(format!("cannot read /proc/self/mountinfo: {e}")))?;
        CgroupManager::from_mountinfo(&text)
    }

    /// Like [`detect`](Self::detect) from a given mountinfo text; the v2
    /// controllers are read from `<mount point>/cgroup.controllers`, so a
    /// fake tree in a temporary directory works.
    pub fn from_mountinfo(mountinfo: &str) -> Result<CgroupManager> {
        let hierarchies = hierarchies_from_mounts(&parse_mountinfo(mountinfo));
        if hierarchies.is_empty() {
            return Err(Error::internal(
                "no cgroup filesystem is mounted (none in /proc/self/mountinfo); \
                 native containers need cgroup v2 at /sys/fs/cgroup or cgroup v1 controllers",
            ));
        }
        Ok(CgroupManager {
            hierarchies,
            parent: DEFAULT_PARENT.to_string(),
        })
    }

    /// Keeps containers under `parent` (one or more `/`-separated names,
    /// relative to each hierarchy root) instead of `berth`.
    pub fn with_parent(mut self, parent: &str) -> Result<CgroupManager> {
        let parent = parent.trim_matches('/');
        for part in parent.split('/') {
            check_name(part, "cgroup parent")?;
        }
        self.parent = parent.to_string();
        Ok(self)
    }

    /// `1` when any real controller is on a v1 hierarchy (this includes the
    /// hybrid layout), `2` when all are on cgroup2: what `docker info` shows
    /// as CgroupVersion.
    pub fn version(&self) -> u8 {
        let v1 = self
            .hierarchies
            .iter()
            .any(|h| !h.unified && h.controllers.iter().any(|c| !c.starts_with("name=")));
        if v1 { 1 } else { 2 }
    }

    /// Every hierarchy berth puts its cgroups in.
    pub fn hierarchies(&self) -> &[Hierarchy] {
        &self.hierarchies
    }

    /// The parent cgroup's path relative to each hierarchy root.
    pub fn parent(&self) -> &str {
        &self.parent
    }

    /// What the host can limit.
    pub fn features(&self) -> Features {
        let probe = self.cgroup_at(PathBuf::new());
        let mut f = Features::default();
        match probe.place("memory") {
            Some(Place::V1(d)) => {
                f.memory = true;
                f.swap = d.join("memory.memsw.limit_in_bytes").exists();
            }
            Some(Place::V2(d)) => {
                f.memory = true;
                // The root has no memory.* files; any child shows them.
                f.swap = any_child_has(&d, "memory.swap.max");
            }
            None => {}
        }
        match probe.place("cpu") {
            Some(Place::V1(d)) => {
                f.cpu_shares = d.join("cpu.shares").exists();
                f.cpu_cfs = d.join("cpu.cfs_quota_us").exists();
            }
            Some(Place::V2(_)) => {
                f.cpu_shares = true;
                f.cpu_cfs = true;
            }
            None => {}
        }
        f.cpuset = probe.place("cpuset").is_some();
        f.pids = probe.place("pids").is_some();
        f.freezer = probe.place("freezer").is_some() || probe.unified_dir().is_some();
        f
    }

    fn cgroup_at(&self, rel: PathBuf) -> Cgroup {
        Cgroup {
            rel,
            hierarchies: self.hierarchies.clone(),
        }
    }

    fn cgroup(&self, id: &str) -> Cgroup {
        self.cgroup_at(Path::new(&self.parent).join(id))
    }

    /// A cgroup for a container cloned ahead of time (a standby shim's),
    /// made in the v1 hierarchies only and without limits: moving a task
    /// into a v1 cgroup waits for an RCU grace period (milliseconds), which
    /// the standby pays before any container needs it. [`Cgroup::rename_to`]
    /// then gives it its container's name and [`Cgroup::configure`] its
    /// limits, both cheap.
    pub fn create_standby(&self, name: &str) -> Result<Cgroup> {
        check_name(name, "standby cgroup name")?;
        let v1 = CgroupManager {
            hierarchies: self
                .hierarchies
                .iter()
                .filter(|h| !h.unified)
                .cloned()
                .collect(),
            parent: self.parent.clone(),
        };
        let cg = v1.cgroup(name);
        v1.make_dirs(&cg)?;
        Ok(cg)
    }

    /// Removes standby cgroups left by shims that died before use.
    pub fn sweep_standby(&self) {
        for h in &self.hierarchies {
            let Ok(entries) = fs::read_dir(h.mount_point.join(&self.parent)) else {
                continue;
            };
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with("standby-") {
                    let _ = fs::remove_dir(e.path());
                }
            }
        }
    }

    /// Makes the container's cgroup in every hierarchy and applies `r`.
    /// Idempotent: an existing cgroup is reused and its limits set again.
    /// If it fails, a cgroup it made is removed again.
    pub fn create(&self, id: &str, r: &Resources) -> Result<Cgroup> {
        check_name(id, "container id")?;
        r.check(true)?;
        let cg = self.cgroup(id);
        let existed = cg.exists();
        let result = self.make_dirs(&cg).and_then(|()| {
            let mut limits = r.limits();
            if let Some(m) = limits.memory.filter(|&m| m > 0)
                && limits.swap.is_none()
                && cg.swap_accounted()
            {
                // Docker's default: as much swap as memory.
                limits.swap = Some(m.saturating_mul(2));
            }
            cg.apply(&limits)?;
            cg.apply_devices(&r.devices)
        });
        match result {
            Ok(()) => Ok(cg),
            Err(e) => {
                if !existed && let Err(e2) = cg.destroy() {
                    tracing::warn!(cgroup = %cg.rel_path(), error = %e2, "could not remove a half-made cgroup");
                }
                Err(e.context(format!("cgroup {}", cg.rel_path())))
            }
        }
    }

    /// The container's cgroup if it exists (after a daemon restart).
    pub fn open(&self, id: &str) -> Option<Cgroup> {
        check_name(id, "container id").ok()?;
        let cg = self.cgroup(id);
        cg.exists().then_some(cg)
    }

    fn make_dirs(&self, cg: &Cgroup) -> Result<()> {
        for h in &self.hierarchies {
            let cpuset_v1 = !h.unified && h.controllers.iter().any(|c| c == "cpuset");
            let mut dir = h.mount_point.clone();
            for part in cg.rel.components() {
                if h.unified {
                    enable_controllers(&dir)?;
                }
                let child = dir.join(part);
                match fs::create_dir(&child) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => {
                        return Err(Error::internal(format!(
                            "cannot create cgroup {}: {e}",
                            child.display()
                        )));
                    }
                }
                if cpuset_v1 {
                    // A new v1 cpuset starts with no CPUs and no memory
                    // nodes, and refuses tasks (ENOSPC) until given some.
                    for file in ["cpuset.cpus", "cpuset.mems"] {
                        if read_trim(&child, file).unwrap_or_default().is_empty() {
                            let v = read_trim(&dir, file).unwrap_or_default();
                            write(&child, file, &v)?;
                        }
                    }
                }
                dir = child;
            }
        }
        Ok(())
    }
}

/// Enables [`V2_WANTED`] controllers (those available) for the children of
/// `dir` on cgroup v2.
fn enable_controllers(dir: &Path) -> Result<()> {
    let available = read_words(dir, "cgroup.controllers");
    let enabled = read_words(dir, "cgroup.subtree_control");
    let want: Vec<&str> = V2_WANTED
        .iter()
        .copied()
        .filter(|c| available.iter().any(|a| a == c) && !enabled.iter().any(|e| e == c))
        .collect();
    if want.is_empty() {
        return Ok(());
    }
    let file = dir.join("cgroup.subtree_control");
    let all: Vec<String> = want.iter().map(|c| format!("+{c}")).collect();
    if write_file(&file, &all.join(" ")).is_ok() {
        return Ok(());
    }
    // One by one, so one refusal (cpu with realtime tasks about) does not
    // keep the others off.
    for c in want {
        if let Err(e) = write_file(&file, &format!("+{c}")) {
            if e.raw_os_error() == Some(libc::EBUSY) {
                return Err(Error::internal(format!(
                    "cannot enable the {c} controller in {}: that cgroup holds processes, and \
                     cgroup v2 allows controllers only over cgroups without processes; run \
                     berthd in a leaf cgroup (as a docker-in-docker entrypoint does)",
                    dir.display()
                )));
            }
            tracing::warn!(cgroup = %dir.display(), controller = c, error = %e, "cannot enable cgroup controller");
        }
    }
    Ok(())
}

/// Where one controller's files are for a cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Place {
    V1(PathBuf),
    V2(PathBuf),
}

/// One container's cgroup: the same relative path in every hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroup {
    /// `<parent>/<id>`, relative to each hierarchy root.
    rel: PathBuf,
    hierarchies: Vec<Hierarchy>,
}

/// Where a cgroup is in one hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CgroupPath {
    /// Where the hierarchy is mounted on the host.
    pub mount_point: PathBuf,
    /// Its controllers (v1: what to pass as `-o` when mounting it inside
    /// the container's cgroup namespace).
    pub controllers: Vec<String>,
    /// cgroup2 (mount with type `cgroup2`, no options).
    pub unified: bool,
    /// The cgroup's directory on the host.
    pub path: PathBuf,
}

/// Counters for `docker stats`. Missing files (a controller not mounted, an
/// older kernel) leave zeros or `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub cpu: CpuStats,
    pub memory: MemoryStats,
    pub pids: PidsStats,
    /// Bytes read and written per block device.
    pub io: Vec<IoEntry>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CpuStats {
    /// CPU time used, all CPUs together.
    pub total_ns: u64,
    /// Per CPU; v1 only (v2 does not count per CPU).
    pub per_cpu_ns: Vec<u64>,
    pub user_ns: u64,
    pub system_ns: u64,
    /// CFS periods that had runnable tasks.
    pub periods: u64,
    /// Periods in which the quota ran out.
    pub throttled_periods: u64,
    pub throttled_ns: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MemoryStats {
    /// v1 `memory.usage_in_bytes`, v2 `memory.current` (page cache included;
    /// `docker stats` subtracts `total_inactive_file` (v1) or
    /// `inactive_file` (v2) from `stats`).
    pub usage: u64,
    /// Peak usage: v1 `memory.max_usage_in_bytes`, v2 `memory.peak`
    /// (Linux 5.19+).
    pub max_usage: Option<u64>,
    /// `None` when unlimited; Docker then shows the host's memory.
    pub limit: Option<u64>,
    /// Times the limit was hit: v1 `memory.failcnt`, v2 `max` in
    /// `memory.events`.
    pub failcnt: Option<u64>,
    /// `memory.stat` as the kernel gives it (v1 and v2 differ in keys).
    pub stats: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PidsStats {
    pub current: u64,
    /// `None` when unlimited.
    pub limit: Option<u64>,
}

/// One block I/O counter, as Docker's `BlkioStatEntry`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IoEntry {
    pub major: u64,
    pub minor: u64,
    /// `read` or `write`.
    pub op: String,
    pub value: u64,
}

impl Cgroup {
    /// The path as the container's processes show it in `/proc/PID/cgroup`
    /// on the host: `/<parent>/<id>`.
    pub fn rel_path(&self) -> String {
        format!("/{}", self.rel.display())
    }

    /// The cgroup's directory in every hierarchy.
    pub fn paths(&self) -> Vec<CgroupPath> {
        self.hierarchies
            .iter()
            .map(|h| CgroupPath {
                mount_point: h.mount_point.clone(),
                controllers: h.controllers.clone(),
                unified: h.unified,
                path: self.dir(h),
            })
            .collect()
    }

    fn dir(&self, h: &Hierarchy) -> PathBuf {
        h.mount_point.join(&self.rel)
    }

    fn exists(&self) -> bool {
        self.hierarchies.iter().any(|h| self.dir(h).is_dir())
    }

    /// The cgroup's directory in the v1 hierarchy with `controller`, else in
    /// the v2 hierarchy if that offers it. `freezer` is never a v2
    /// controller (v2 freezes with the core file `cgroup.freeze`).
    fn place(&self, controller: &str) -> Option<Place> {
        if let Some(h) = self
            .hierarchies
            .iter()
            .find(|h| !h.unified && h.controllers.iter().any(|c| c == controller))
        {
            return Some(Place::V1(self.dir(h)));
        }
        self.hierarchies
            .iter()
            .find(|h| h.unified && h.controllers.iter().any(|c| c == controller))
            .map(|h| Place::V2(self.dir(h)))
    }

    fn unified_dir(&self) -> Option<PathBuf> {
        self.hierarchies
            .iter()
            .find(|h| h.unified)
            .map(|h| self.dir(h))
    }

    /// The directory whose `cgroup.procs` lists every process: the unified
    /// one when there is one (all processes are in it, also on hybrid),
    /// else the first v1 hierarchy with a real controller.
    fn procs_dir(&self) -> Option<PathBuf> {
        self.unified_dir().filter(|d| d.is_dir()).or_else(|| {
            self.hierarchies
                .iter()
                .find(|h| !h.unified && h.controllers.iter().any(|c| !c.starts_with("name=")))
                .or(self.hierarchies.first())
                .map(|h| self.dir(h))
        })
    }

    fn swap_accounted(&self) -> bool {
        match self.place("memory") {
            Some(Place::V1(d)) => d.join("memory.memsw.limit_in_bytes").exists(),
            Some(Place::V2(d)) => d.join("memory.swap.max").exists(),
            None => false,
        }
    }

    /// Moves process `pid` (all its threads) into this cgroup in every
    /// hierarchy. Its future children follow it.
    /// Renames the cgroup (v1 allows it within a parent; the tasks stay).
    pub fn rename_to(&self, parent: &str, id: &str) -> Result<Cgroup> {
        check_name(id, "container id")?;
        let rel = Path::new(parent).join(id);
        for h in &self.hierarchies {
            let from = h.mount_point.join(&self.rel);
            let to = h.mount_point.join(&rel);
            fs::rename(&from, &to).map_err(|e| {
                Error::internal(format!(
                    "renaming cgroup {} to {}: {e}",
                    from.display(),
                    to.display()
                ))
            })?;
        }
        Ok(Cgroup {
            rel,
            hierarchies: self.hierarchies.clone(),
        })
    }

    /// Applies limits and device rules to a cgroup made without them, as
    /// [`CgroupManager::create`] does.
    pub fn configure(&self, r: &Resources) -> Result<()> {
        self.configure_devices(r)?;
        self.configure_limits(r)
    }

    /// The device rules of [`Cgroup::configure`]. On cgroup v1 they are
    /// replaced by denying all then allowing each, so a process of the
    /// cgroup must not make device nodes meanwhile.
    pub fn configure_devices(&self, r: &Resources) -> Result<()> {
        self.apply_devices(&r.devices)
    }

    /// [`Cgroup::configure`] but the device rules.
    pub fn configure_limits(&self, r: &Resources) -> Result<()> {
        r.check(true)?;
        let mut limits = r.limits();
        if let Some(m) = limits.memory.filter(|&m| m > 0)
            && limits.swap.is_none()
            && self.swap_accounted()
        {
            limits.swap = Some(m.saturating_mul(2));
        }
        self.apply(&limits)
    }

    pub fn add_pid(&self, pid: i32) -> Result<()> {
        for h in &self.hierarchies {
            write(&self.dir(h), "cgroup.procs", pid)?;
        }
        Ok(())
    }

    /// Puts device rules in place: in the v1 devices cgroup where that
    /// controller is mounted (also on the hybrid layout), else as an eBPF
    /// filter on the v2 cgroup. Empty rules change nothing.
    fn apply_devices(&self, rules: &[DeviceRule]) -> Result<()> {
        if rules.is_empty() {
            return Ok(());
        }
        let policy = DevicePolicy::from_rules(rules)?;
        match self.place("devices") {
            Some(Place::V1(d)) => devices::apply_v1(&d, &policy),
            _ => match self.unified_dir().filter(|d| d.is_dir()) {
                Some(d) => devices::apply_v2(&d, &policy),
                None if policy.allows_everything() => Ok(()),
                None => Err(Error::internal(
                    "device rules cannot be enforced: neither the v1 devices cgroup \
                     controller nor cgroup v2 is mounted",
                )),
            },
        }
    }

    /// Changes limits of a running container (`docker update`). Unset
    /// fields stay as they are; device rules are not changed.
    pub fn set(&self, r: &Resources) -> Result<()> {
        r.check(false)?;
        self.apply(&r.limits())
            .map_err(|e| e.context(format!("cgroup {}", self.rel_path())))
    }

    fn apply(&self, l: &Limits) -> Result<()> {
        if l.memory.is_some() || l.swap.is_some() {
            match self.place("memory") {
                Some(Place::V1(d)) => set_memory_v1(&d, l.memory, l.swap)?,
                Some(Place::V2(d)) => set_memory_v2(&d, l.memory, l.swap)?,
                None => discarded("memory limit", "memory"),
            }
        }
        if l.shares.is_some() || l.quota.is_some() || l.period.is_some() {
            match self.place("cpu") {
                Some(Place::V1(d)) => set_cpu_v1(&d, l)?,
                Some(Place::V2(d)) => set_cpu_v2(&d, l)?,
                None => discarded("CPU limit", "cpu"),
            }
        }
        if let Some(cpus) = &l.cpus {
            match self.place("cpuset") {
                Some(p) => set_cpuset(&p, cpus)?,
                None => discarded("cpuset", "cpuset"),
            }
        }
        if let Some(pids) = l.pids {
            match self.place("pids") {
                Some(Place::V1(d) | Place::V2(d)) => write(&d, "pids.max", max_or(pids))?,
                None => discarded("pids limit", "pids"),
            }
        }
        Ok(())
    }

    /// Reads the counters.
    pub fn stats(&self) -> Result<Stats> {
        if !self.exists() {
            return Err(Error::not_found(format!(
                "cgroup {} does not exist",
                self.rel_path()
            )));
        }
        let mut s = Stats::default();

        match self.place("cpuacct") {
            Some(Place::V1(d)) => {
                s.cpu.total_ns = read_u64(&d, "cpuacct.usage").unwrap_or(0);
                s.cpu.per_cpu_ns = read_trim(&d, "cpuacct.usage_percpu")
                    .map(|t| parse_u64_list(&t))
                    .unwrap_or_default();
                if let (Some(user), Some(sys)) = (
                    read_u64(&d, "cpuacct.usage_user"),
                    read_u64(&d, "cpuacct.usage_sys"),
                ) {
                    s.cpu.user_ns = user;
                    s.cpu.system_ns = sys;
                } else if let Some(t) = read_trim(&d, "cpuacct.stat") {
                    let m = parse_keyed(&t);
                    s.cpu.user_ns = m.get("user").copied().unwrap_or(0) * NS_PER_TICK;
                    s.cpu.system_ns = m.get("system").copied().unwrap_or(0) * NS_PER_TICK;
                }
            }
            _ => {
                // v2: cpu.stat is a core file, present without the cpu
                // controller.
                if let Some(t) = self.unified_dir().and_then(|d| read_trim(&d, "cpu.stat")) {
                    let m = parse_keyed(&t);
                    let us = |k: &str| m.get(k).copied().unwrap_or(0) * 1000;
                    s.cpu.total_ns = us("usage_usec");
                    s.cpu.user_ns = us("user_usec");
                    s.cpu.system_ns = us("system_usec");
                }
            }
        }
        match self.place("cpu") {
            Some(Place::V1(d)) => {
                let m = parse_keyed(&read_trim(&d, "cpu.stat").unwrap_or_default());
                s.cpu.periods = m.get("nr_periods").copied().unwrap_or(0);
                s.cpu.throttled_periods = m.get("nr_throttled").copied().unwrap_or(0);
                s.cpu.throttled_ns = m.get("throttled_time").copied().unwrap_or(0);
            }
            Some(Place::V2(d)) => {
                let m = parse_keyed(&read_trim(&d, "cpu.stat").unwrap_or_default());
                s.cpu.periods = m.get("nr_periods").copied().unwrap_or(0);
                s.cpu.throttled_periods = m.get("nr_throttled").copied().unwrap_or(0);
                s.cpu.throttled_ns = m.get("throttled_usec").copied().unwrap_or(0) * 1000;
            }
            None => {}
        }

        match self.place("memory") {
            Some(Place::V1(d)) => {
                s.memory.usage = read_u64(&d, "memory.usage_in_bytes").unwrap_or(0);
                s.memory.max_usage = read_u64(&d, "memory.max_usage_in_bytes");
                s.memory.limit = read_limit(&d, "memory.limit_in_bytes");
                s.memory.failcnt = read_u64(&d, "memory.failcnt");
                s.memory.stats = parse_keyed(&read_trim(&d, "memory.stat").unwrap_or_default());
            }
            Some(Place::V2(d)) => {
                s.memory.usage = read_u64(&d, "memory.current").unwrap_or(0);
                s.memory.max_usage = read_u64(&d, "memory.peak");
                s.memory.limit = read_limit(&d, "memory.max");
                s.memory.failcnt = read_trim(&d, "memory.events")
                    .and_then(|t| parse_keyed(&t).get("max").copied());
                s.memory.stats = parse_keyed(&read_trim(&d, "memory.stat").unwrap_or_default());
            }
            None => {}
        }

        if let Some(Place::V1(d) | Place::V2(d)) = self.place("pids") {
            s.pids.current = read_u64(&d, "pids.current").unwrap_or(0);
            s.pids.limit = read_limit(&d, "pids.max");
        }

        if let Some(Place::V1(d)) = self.place("blkio") {
            // CFQ's counters where that scheduler runs, else BFQ's, else the
            // throttling layer's (which counts for every device).
            s.io = [
                "blkio.io_service_bytes_recursive",
                "blkio.bfq.io_service_bytes_recursive",
                "blkio.throttle.io_service_bytes_recursive",
            ]
            .iter()
            .filter_map(|f| read_trim(&d, f))
            .map(|t| parse_blkio_v1(&t))
            .find(|v| !v.is_empty())
            .unwrap_or_default();
        } else if let Some(Place::V2(d)) = self.place("io") {
            s.io = parse_io_stat(&read_trim(&d, "io.stat").unwrap_or_default());
        }
        Ok(s)
    }

    /// Whether the kernel OOM-killed a process in this cgroup (v2: `oom_kill`
    /// in `memory.events`; v1: in `memory.oom_control`, Linux 4.13+). Ask
    /// before [`destroy`](Self::destroy): the counter goes with the cgroup.
    pub fn oom_killed(&self) -> bool {
        let text = match self.place("memory") {
            Some(Place::V1(d)) => read_trim(&d, "memory.oom_control"),
            Some(Place::V2(d)) => read_trim(&d, "memory.events"),
            None => None,
        };
        text.and_then(|t| parse_keyed(&t).get("oom_kill").copied())
            .is_some_and(|n| n > 0)
    }

    /// Freezes every process (pause) and waits until the kernel says they
    /// are frozen. If that does not happen in time, thaws them and fails.
    pub fn freeze(&self) -> Result<()> {
        self.set_frozen(true)
    }

    /// Thaws the processes again (unpause).
    pub fn thaw(&self) -> Result<()> {
        self.set_frozen(false)
    }

    /// Whether the cgroup is frozen (paused), e.g. found so after a restart.
    pub fn frozen(&self) -> bool {
        match self.freezer() {
            Some(Place::V1(d)) => read_trim(&d, "freezer.state").as_deref() == Some("FROZEN"),
            Some(Place::V2(d)) => v2_frozen(&d) == Some(true),
            None => false,
        }
    }

    /// The v1 freezer if mounted, else v2's core `cgroup.freeze`.
    fn freezer(&self) -> Option<Place> {
        match self.place("freezer") {
            Some(p) => Some(p),
            None => self
                .unified_dir()
                .filter(|d| d.join("cgroup.freeze").exists())
                .map(Place::V2),
        }
    }

    fn set_frozen(&self, frozen: bool) -> Result<()> {
        match self.freezer() {
            Some(Place::V1(d)) => {
                let want = if frozen { "FROZEN" } else { "THAWED" };
                // Writing FROZEN again while the state is FREEZING retries
                // the tasks that were busy.
                let r = wait_state(frozen, || {
                    write(&d, "freezer.state", want)?;
                    Ok(read_trim(&d, "freezer.state").as_deref() == Some(want))
                });
                if r.is_err() && frozen {
                    let _ = write(&d, "freezer.state", "THAWED");
                }
                r
            }
            Some(Place::V2(d)) => {
                write(&d, "cgroup.freeze", u8::from(frozen))?;
                let r = wait_state(frozen, || Ok(v2_frozen(&d) == Some(frozen)));
                if r.is_err() && frozen {
                    let _ = write(&d, "cgroup.freeze", 0);
                }
                r
            }
            None => Err(Error::not_implemented(
                "pausing needs the freezer cgroup (v1) or cgroup v2",
            )),
        }
    }

    /// The processes in the cgroup and any cgroups below it.
    pub fn pids(&self) -> Result<Vec<i32>> {
        let Some(dir) = self.procs_dir() else {
            return Ok(Vec::new());
        };
        let mut pids = Vec::new();
        collect_pids(&dir, &mut pids).map_err(|e| {
            Error::internal(format!("cannot list processes of {}: {e}", dir.display()))
        })?;
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    /// Sends `sig` to every process. SIGKILL on v2 (also the hybrid
    /// layout's unified mount) uses `cgroup.kill` (Linux 5.14+), which
    /// races no fork. Otherwise the cgroup is frozen while each process is
    /// signalled, and thawed after, unless it was paused already (a paused
    /// container gets its signal when unpaused). SIGKILL always thaws a v1
    /// freezer: tasks it holds cannot die, whoever sends the signal.
    pub fn kill_all(&self, sig: i32) -> Result<()> {
        if sig == libc::SIGKILL
            && let Some(d) = self.unified_dir()
            && d.join("cgroup.kill").exists()
            && write(&d, "cgroup.kill", 1).is_ok()
        {
            if matches!(self.freezer(), Some(Place::V1(_))) && self.frozen() {
                self.thaw()?;
            }
            return Ok(());
        }
        let was_frozen = self.frozen();
        let froze = !was_frozen && self.freeze().is_ok();
        let mut result = Ok(());
        for pid in self.pids()? {
            // SAFETY: kill(2) takes plain integers and touches no memory.
            if unsafe { libc::kill(pid, sig) } != 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::ESRCH) && result.is_ok() {
                    result = Err(Error::internal(format!(
                        "cannot send signal {sig} to process {pid}: {e}"
                    )));
                }
            }
        }
        if froze || (was_frozen && sig == libc::SIGKILL) {
            self.thaw()?;
        }
        result
    }

    /// Removes the cgroup from every hierarchy (sub-cgroups first),
    /// retrying a few seconds while the last processes leave. Removing one
    /// that is gone is no error. Does not kill: see [`kill_all`](Self::kill_all).
    pub fn destroy(&self) -> Result<()> {
        let deadline = Instant::now() + DESTROY_TIMEOUT;
        let mut first_error = None;
        for h in &self.hierarchies {
            let dir = self.dir(h);
            if let Err(e) = remove_tree(&dir, deadline) {
                let busy = e.raw_os_error() == Some(libc::EBUSY);
                let msg = if busy {
                    format!(
                        "cannot remove cgroup {}: it still has processes",
                        dir.display()
                    )
                } else {
                    format!("cannot remove cgroup {}: {e}", dir.display())
                };
                first_error.get_or_insert(Error::internal(msg));
            }
        }
        match first_error {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }
}

fn discarded(what: &str, controller: &str) {
    tracing::warn!(
        "{what} discarded: the {controller} cgroup controller is not available on this host"
    );
}

/// v1 memory and memory+swap. The kernel keeps memory <= memsw at every
/// moment, so the order depends on the direction (as runc does it).
fn set_memory_v1(dir: &Path, memory: Option<i64>, swap: Option<i64>) -> Result<()> {
    const MEM: &str = "memory.limit_in_bytes";
    const MEMSW: &str = "memory.memsw.limit_in_bytes";
    let has_swap = dir.join(MEMSW).exists();
    let mut swap = swap;
    if swap.is_some() && !has_swap {
        tracing::warn!("memory swap limit discarded: swap accounting is off on this host");
        swap = None;
    }
    if memory == Some(-1) && swap.is_none() && has_swap {
        // "No memory limit" lifts the swap limit too.
        swap = Some(-1);
    }
    match (memory, swap) {
        (Some(m), Some(s)) => {
            let current = read_u64(dir, MEM).unwrap_or(u64::MAX);
            if s == -1 || current < s as u64 {
                write(dir, MEMSW, s)?;
                write(dir, MEM, m)?;
            } else {
                write(dir, MEM, m)?;
                write(dir, MEMSW, s)?;
            }
        }
        (Some(m), None) => {
            if has_swap
                && m > 0
                && let Some(sw) = read_u64(dir, MEMSW).filter(|&sw| sw < V1_UNLIMITED)
                && (m as u64) > sw
            {
                return Err(Error::invalid(
                    "Memory limit should be smaller than already set memoryswap limit, \
                     update the memoryswap at the same time",
                ));
            }
            write(dir, MEM, m)?;
        }
        (None, Some(s)) => write(dir, MEMSW, s)?,
        (None, None) => {}
    }
    Ok(())
}

/// v2 `memory.max` and `memory.swap.max` (swap alone, so memory+swap minus
/// memory).
fn set_memory_v2(dir: &Path, memory: Option<i64>, swap: Option<i64>) -> Result<()> {
    let has_swap = dir.join("memory.swap.max").exists();
    let swap = match (memory, swap) {
        (Some(-1), None) => Some(-1),
        (_, s) => s,
    };
    if let Some(s) = swap {
        if has_swap {
            let mem = match memory {
                Some(m) => m,
                None => read_limit(dir, "memory.max").map_or(-1, |m| m as i64),
            };
            write(dir, "memory.swap.max", max_or(swap_to_v2(s, mem)?))?;
        } else if s != -1 {
            tracing::warn!("memory swap limit discarded: swap accounting is off on this host");
        }
    }
    if let Some(m) = memory {
        write(dir, "memory.max", max_or(m))?;
    }
    Ok(())
}

/// v1 `cpu.shares` and CFS. Lowering the period can be refused (EINVAL)
/// until the quota is lowered, so then the period is written again after.
fn set_cpu_v1(dir: &Path, l: &Limits) -> Result<()> {
    if let Some(shares) = l.shares {
        write(dir, "cpu.shares", shares)?;
    }
    let mut period_later = None;
    if let Some(p) = l.period {
        let file = dir.join("cpu.cfs_period_us");
        if let Err(e) = write_file(&file, &p.to_string()) {
            if e.raw_os_error() == Some(libc::EINVAL) && l.quota.is_some() {
                period_later = Some(p);
            } else {
                return Err(write_error(&file, &p.to_string(), &e));
            }
        }
    }
    if let Some(q) = l.quota {
        write(dir, "cpu.cfs_quota_us", q)?;
        if let Some(p) = period_later {
            write(dir, "cpu.cfs_period_us", p)?;
        }
    }
    Ok(())
}

/// v2 `cpu.weight` and `cpu.max` ("QUOTA PERIOD"); a part not given keeps
/// its current value.
fn set_cpu_v2(dir: &Path, l: &Limits) -> Result<()> {
    if let Some(shares) = l.shares {
        write(dir, "cpu.weight", shares_to_weight(shares))?;
    }
    if l.quota.is_some() || l.period.is_some() {
        let current = read_trim(dir, "cpu.max").unwrap_or_default();
        let mut cur = current.split_whitespace();
        let cur_quota = cur.next().unwrap_or("max").to_string();
        let cur_period = cur.next().unwrap_or("100000").to_string();
        let quota = l.quota.map_or(cur_quota, max_or);
        let period = l.period.map_or(cur_period, |p| p.to_string());
        write(dir, "cpu.max", format!("{quota} {period}"))?;
    }
    Ok(())
}

fn set_cpuset(place: &Place, cpus: &str) -> Result<()> {
    let (dir, effective) = match place {
        Place::V1(d) => (d, "cpuset.effective_cpus"),
        Place::V2(d) => (d, "cpuset.cpus.effective"),
    };
    let file = dir.join("cpuset.cpus");
    if let Err(e) = write_file(&file, cpus) {
        // v2 says EINVAL; v1 says ERANGE for a CPU the machine lacks.
        if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ERANGE)) {
            let available = dir
                .parent()
                .and_then(|p| read_trim(p, effective).or_else(|| read_trim(p, "cpuset.cpus")))
                .unwrap_or_default();
            return Err(Error::invalid(format!(
                "Requested CPUs are not available - requested {cpus}, available: {available}"
            )));
        }
        return Err(write_error(&file, cpus, &e));
    }
    Ok(())
}

/// Polls `reached` (which may also re-request the state) until it says yes
/// or [`FREEZE_TIMEOUT`] passes.
fn wait_state(frozen: bool, mut reached: impl FnMut() -> Result<bool>) -> Result<()> {
    let deadline = Instant::now() + FREEZE_TIMEOUT;
    let mut n = 0u32;
    loop {
        if reached()? {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let what = if frozen { "freeze" } else { "thaw" };
            return Err(Error::internal(format!(
                "cannot {what} the container's processes: the kernel did not finish in {}s",
                FREEZE_TIMEOUT.as_secs()
            )));
        }
        sleep(Duration::from_millis(1 << n.min(4)));
        n += 1;
    }
}

/// `frozen` from v2 `cgroup.events`.
fn v2_frozen(dir: &Path) -> Option<bool> {
    let t = read_trim(dir, "cgroup.events")?;
    parse_keyed(&t).get("frozen").map(|&v| v == 1)
}

fn collect_pids(dir: &Path, out: &mut Vec<i32>) -> io::Result<()> {
    let text = match fs::read_to_string(dir.join("cgroup.procs")) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    out.extend(
        text.split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok()),
    );
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            collect_pids(&entry.path(), out)?;
        }
    }
    Ok(())
}

fn remove_tree(dir: &Path, deadline: Instant) -> io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            remove_tree(&entry.path(), deadline)?;
        }
    }
    let mut n = 0u32;
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                sleep(Duration::from_millis(1 << n.min(5)));
                n += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

fn any_child_has(dir: &Path, file: &str) -> bool {
    fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.path().is_dir() && e.path().join(file).exists())
    })
}

/// A cgroup name: one path component.
fn check_name(name: &str, what: &str) -> Result<()> {
    if name.is_empty()
        || name == "."
        || name == ".."
        || name.len() > 255
        || name.contains(['/', '\0', '\n'])
    {
        return Err(Error::invalid(format!("invalid {what} {name:?}")));
    }
    Ok(())
}

// ---- pure conversions ----

/// Docker's `--cpus`: a 100 ms period and the share of it. Returns
/// (quota µs, period µs).
pub fn nano_cpus_to_quota(nano_cpus: i64) -> (i64, u64) {
    let quota = nano_cpus.saturating_mul(NANO_CPUS_PERIOD as i64) / 1_000_000_000;
    (quota, NANO_CPUS_PERIOD)
}

/// v1 `cpu.shares` (2..=262144) to v2 `cpu.weight` (1..=10000), with the
/// formula runc (1.3.2+) and crun (1.23+) use: a quadratic in log2 space
/// that maps the defaults onto each other (1024 to 100) and the ends onto
/// the ends. (The older linear formula, `1 + (shares-2)*9999/262142`, gave
/// 1024 shares a weight of 39, under the default.) 0 stays 0 ("unset").
pub fn shares_to_weight(shares: u64) -> u64 {
    match shares {
        0 => 0,
        1..=2 => 1,
        262_144.. => 10_000,
        _ => {
            let l = (shares as f64).log2();
            let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
            (10f64.powf(exponent).ceil() as u64).clamp(1, 10_000)
        }
    }
}

/// Docker's memory+swap (`-1` unlimited) to v2 `memory.swap.max` (swap
/// alone; `-1` for "max"), given the memory limit (`-1` unlimited), as runc
/// converts it.
pub fn swap_to_v2(memory_swap: i64, memory: i64) -> Result<i64> {
    if memory_swap == -1 {
        return Ok(-1);
    }
    if memory <= 0 {
        return Err(Error::invalid(
            "unable to set swap limit without memory limit",
        ));
    }
    if memory_swap < memory {
        return Err(Error::invalid(
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ));
    }
    Ok(memory_swap - memory)
}

/// `-1` as the cgroup word for "no limit".
fn max_or(v: i64) -> String {
    if v < 0 {
        "max".to_string()
    } else {
        v.to_string()
    }
}

/// A CPU list like `0-2,4`, as the sorted CPU numbers; `None` if malformed.
pub fn parse_cpu_list(s: &str) -> Option<Vec<u32>> {
    let mut cpus = Vec::new();
    for part in s.trim().split(',') {
        let part = part.trim();
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
                if a > b || b - a > 65_536 {
                    return None;
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(part.parse().ok()?),
        }
    }
    cpus.sort_unstable();
    cpus.dedup();
    Some(cpus)
}

/// "key value" lines (`memory.stat`, `cpu.stat`, `memory.events`,
/// `memory.oom_control`, `cgroup.events`); other lines are skipped.
pub fn parse_keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|line| {
            let mut it = line.split_whitespace();
            let (k, v) = (it.next()?, it.next()?);
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

/// Whitespace-separated numbers (`cpuacct.usage_percpu`).
fn parse_u64_list(text: &str) -> Vec<u64> {
    text.split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect()
}

/// A limit file: `max` (v2) or a huge number (v1) is `None`.
fn parse_limit(text: &str) -> Option<u64> {
    let v: u64 = text.trim().parse().ok()?;
    (v < V1_UNLIMITED).then_some(v)
}

/// v2 `io.stat`: `MAJ:MIN rbytes=N wbytes=N rios=N ...` per device.
pub fn parse_io_stat(text: &str) -> Vec<IoEntry> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let Some((major, minor)) = it.next().and_then(parse_dev) else {
            continue;
        };
        for kv in it {
            let (op, v) = match kv.split_once('=') {
                Some(("rbytes", v)) => ("read", v),
                Some(("wbytes", v)) => ("write", v),
                _ => continue,
            };
            if let Ok(value) = v.parse() {
                out.push(IoEntry {
                    major,
                    minor,
                    op: op.to_string(),
                    value,
                });
            }
        }
    }
    out
}

/// v1 `blkio.*io_service_bytes*`: `MAJ:MIN Read N` lines, `Total N` last.
pub fn parse_blkio_v1(text: &str) -> Vec<IoEntry> {
    text.lines()
        .filter_map(|line| {
            let mut it = line.split_whitespace();
            let (major, minor) = parse_dev(it.next()?)?;
            let op = it.next()?.to_ascii_lowercase();
            let value = it.next()?.parse().ok()?;
            matches!(op.as_str(), "read" | "write").then_some(IoEntry {
                major,
                minor,
                op,
                value,
            })
        })
        .collect()
}

fn parse_dev(s: &str) -> Option<(u64, u64)> {
    let (a, b) = s.split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

// ---- mountinfo ----

#[derive(Debug)]
struct MountEntry {
    root: String,
    mount_point: PathBuf,
    fstype: String,
    super_options: String,
}

/// `/proc/self/mountinfo` lines: `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS
/// [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS`.
fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            if left.len() < 6 {
                return None;
            }
            let mut right = right.split(' ');
            let fstype = right.next()?.to_string();
            let _source = right.next();
            let super_options = right.next().unwrap_or("").to_string();
            Some(MountEntry {
                root: unescape_mount(left[3]),
                mount_point: PathBuf::from(unescape_mount(left[4])),
                fstype,
                super_options,
            })
        })
        .collect()
}

/// mountinfo writes space, tab, newline and backslash as `\NNN` octal.
fn unescape_mount(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let v = (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One hierarchy per distinct v1 controller set, plus the first cgroup2
/// mount. A mount of a hierarchy's root (`/`) wins over a bind mount of
/// one of its cgroups.
fn hierarchies_from_mounts(mounts: &[MountEntry]) -> Vec<Hierarchy> {
    let mut v1: Vec<Hierarchy> = Vec::new();
    let mut unified: Option<Hierarchy> = None;
    let ordered = mounts
        .iter()
        .filter(|m| m.root == "/")
        .chain(mounts.iter().filter(|m| m.root != "/"));
    for m in ordered {
        match m.fstype.as_str() {
            "cgroup" => {
                let mut controllers: Vec<String> = m
                    .super_options
                    .split(',')
                    .filter(|o| V1_CONTROLLERS.contains(o) || o.starts_with("name="))
                    .map(String::from)
                    .collect();
                controllers.sort();
                if controllers.is_empty() || v1.iter().any(|h| h.controllers == controllers) {
                    continue;
                }
                v1.push(Hierarchy {
                    mount_point: m.mount_point.clone(),
                    controllers,
                    unified: false,
                });
            }
            "cgroup2" if unified.is_none() => {
                unified = Some(Hierarchy {
                    controllers: read_words(&m.mount_point, "cgroup.controllers"),
                    mount_point: m.mount_point.clone(),
                    unified: true,
                });
            }
            _ => {}
        }
    }
    v1.extend(unified);
    v1
}

// ---- files ----

fn write_file(path: &Path, value: &str) -> io::Result<()> {
    // No O_CREAT: cgroup files exist or the feature is missing.
    let mut f = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)?;
    f.write_all(value.as_bytes())
}

fn write_error(path: &Path, value: &str, e: &io::Error) -> Error {
    Error::internal(format!("cannot write {value:?} to {}: {e}", path.display()))
}

fn write(dir: &Path, file: &str, value: impl Display) -> Result<()> {
    let path = dir.join(file);
    let value = value.to_string();
    write_file(&path, &value).map_err(|e| write_error(&path, &value, &e))
}

fn read_trim(dir: &Path, file: &str) -> Option<String> {
    fs::read_to_string(dir.join(file))
        .ok()
        .map(|s| s.trim().to_string())
}

fn read_u64(dir: &Path, file: &str) -> Option<u64> {
    read_trim(dir, file)?.parse().ok()
}

fn read_limit(dir: &Path, file: &str) -> Option<u64> {
    parse_limit(&read_trim(dir, file)?)
}

/// Words of a file such as `cgroup.controllers` (a leading `+` dropped).
fn read_words(dir: &Path, file: &str) -> Vec<String> {
    read_trim(dir, file)
        .unwrap_or_default()
        .split_whitespace()
        .map(|w| w.trim_start_matches('+').to_string())
        .collect()
}

/// CPUs this process may run on, as Docker counts them.
fn online_cpus() -> usize {
    use nix::sched::{CpuSet, sched_getaffinity};
    use nix::unistd::Pid;
    sched_getaffinity(Pid::from_raw(0))
        .map(|set| {
            (0..CpuSet::count())
                .filter(|&i| set.is_set(i).unwrap_or(false))
                .count()
        })
        .ok()
        .filter(|&n| n > 0)
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Child, Command, Stdio};

    // ---- pure functions ----

    #[test]
    fn nano_cpus_become_a_quota_over_100ms() {
        assert_eq!(nano_cpus_to_quota(1_500_000_000), (150_000, 100_000));
        assert_eq!(nano_cpus_to_quota(10_000_000), (1_000, 100_000));
        assert_eq!(nano_cpus_to_quota(2_000_000_000), (200_000, 100_000));
    }

    #[test]
    fn shares_map_to_weight_like_runc() {
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(1), 1);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(3), 2);
        assert_eq!(shares_to_weight(512), 59);
        assert_eq!(shares_to_weight(1024), 100);
        assert_eq!(shares_to_weight(2048), 174);
        assert_eq!(shares_to_weight(262_143), 10_000);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1 << 30), 10_000);
    }

    #[test]
    fn swap_converts_to_v2_swap_alone() {
        let mib = 1 << 20;
        assert_eq!(swap_to_v2(-1, 32 * mib).unwrap(), -1);
        assert_eq!(swap_to_v2(-1, -1).unwrap(), -1);
        assert_eq!(swap_to_v2(64 * mib, 32 * mib).unwrap(), 32 * mib);
        assert_eq!(swap_to_v2(32 * mib, 32 * mib).unwrap(), 0);
        assert!(swap_to_v2(16 * mib, 32 * mib).is_err());
        assert!(swap_to_v2(64 * mib, -1).is_err());
    }

    #[test]
    fn cpu_lists_parse() {
        assert_eq!(parse_cpu_list("0"), Some(vec![0]));
        assert_eq!(parse_cpu_list("0-2,4"), Some(vec![0, 1, 2, 4]));
        assert_eq!(parse_cpu_list(" 3,1-2,1 "), Some(vec![1, 2, 3]));
        assert_eq!(parse_cpu_list("2-1"), None);
        assert_eq!(parse_cpu_list("a"), None);
        assert_eq!(parse_cpu_list(""), None);
    }

    #[test]
    fn validate_uses_dockers_rules_and_messages() {
        let mib = 1 << 20;
        let ok = Resources {
            memory: Some(64 * mib),
            memory_swap: Some(-1),
            nano_cpus: Some(500_000_000),
            pids_limit: Some(-1),
            ..Default::default()
        };
        ok.validate().unwrap();
        let bad = |r: Resources, msg: &str| {
            let e = r.validate().unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidArgument);
            assert!(e.message().contains(msg), "{e}");
        };
        bad(
            Resources {
                memory: Some(mib),
                ..Default::default()
            },
            "Minimum memory limit allowed is 6MB",
        );
        bad(
            Resources {
                memory: Some(64 * mib),
                memory_swap: Some(32 * mib),
                ..Default::default()
            },
            "Minimum memoryswap limit",
        );
        bad(
            Resources {
                memory_swap: Some(32 * mib),
                ..Default::default()
            },
            "always set the Memory limit",
        );
        bad(
            Resources {
                nano_cpus: Some(1_000_000_000),
                cpu_quota: Some(50_000),
                ..Default::default()
            },
            "Nano CPUs and CPU Quota",
        );
        bad(
            Resources {
                nano_cpus: Some(1_000_000_000),
                cpu_period: Some(50_000),
                ..Default::default()
            },
            "Nano CPUs and CPU Period",
        );
        bad(
            Resources {
                nano_cpus: Some(1_000_000_000_000),
                ..Default::default()
            },
            "Range of CPUs is from 0.01",
        );
        bad(
            Resources {
                cpu_period: Some(10),
                ..Default::default()
            },
            "CPU cfs period",
        );
        bad(
            Resources {
                cpu_quota: Some(10),
                ..Default::default()
            },
            "CPU cfs quota",
        );
        bad(
            Resources {
                cpuset_cpus: Some("1-x".into()),
                ..Default::default()
            },
            "Invalid value 1-x for cpuset cpus",
        );
        // An update may set swap alone.
        Resources {
            memory_swap: Some(32 * mib),
            ..Default::default()
        }
        .check(false)
        .unwrap();
    }

    #[test]
    fn limits_follow_dockers_zero_values() {
        let r = Resources {
            memory: Some(0),
            memory_swap: Some(-5),
            cpu_shares: Some(0),
            nano_cpus: Some(250_000_000),
            cpu_quota: Some(0),
            pids_limit: Some(0),
            cpuset_cpus: Some(" ".into()),
            ..Default::default()
        };
        assert_eq!(
            r.limits(),
            Limits {
                swap: Some(-1),
                quota: Some(25_000),
                period: Some(100_000),
                pids: Some(-1),
                ..Default::default()
            }
        );
        assert_eq!(Resources::default().limits(), Limits::default());
    }

    #[test]
    fn keyed_files_parse() {
        let m = parse_keyed("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n");
        assert_eq!(m["oom_kill"], 3);
        let m = parse_keyed("populated 1\nfrozen 0\nbogus\nx y\n");
        assert_eq!(m.len(), 2);
        assert_eq!(m["populated"], 1);
        assert_eq!(parse_limit("max"), None);
        assert_eq!(parse_limit("9223372036854771712"), None);
        assert_eq!(parse_limit("33554432\n"), Some(33_554_432));
        assert_eq!(parse_u64_list("10 20 0 \n"), vec![10, 20, 0]);
    }

    #[test]
    fn io_counters_parse_on_both_versions() {
        let v2 = parse_io_stat(
            "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n\
             253:1 rbytes=0 wbytes=512 rios=0 wios=1 dbytes=0 dios=0\n",
        );
        assert_eq!(v2.len(), 4);
        assert_eq!(
            v2[1],
            IoEntry {
                major: 8,
                minor: 0,
                op: "write".into(),
                value: 8192
            }
        );
        let v1 = parse_blkio_v1(
            "8:0 Read 4096\n8:0 Write 512\n8:0 Sync 0\n8:0 Async 4608\n8:0 Total 4608\nTotal 4608\n",
        );
        assert_eq!(v1.len(), 2);
        assert_eq!(v1[0].op, "read");
        assert_eq!(v1[1].value, 512);
    }

    const HYBRID_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /nonexistent/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn mountinfo_hybrid_layout() {
        let m = CgroupManager::from_mountinfo(HYBRID_MOUNTINFO).unwrap();
        assert_eq!(m.version(), 1);
        assert_eq!(m.hierarchies().len(), 10);
        let last = m.hierarchies().last().unwrap();
        assert!(last.unified);
        assert_eq!(last.mount_point, Path::new("/nonexistent/unified"));
        let cg = m.cgroup("c");
        assert_eq!(
            cg.place("memory"),
            Some(Place::V1("/sys/fs/cgroup/memory/berth/c".into()))
        );
        assert_eq!(
            cg.place("name=systemd"),
            Some(Place::V1("/sys/fs/cgroup/systemd/berth/c".into()))
        );
        assert_eq!(cg.place("io"), None);
        assert_eq!(
            cg.unified_dir(),
            Some(PathBuf::from("/nonexistent/unified/berth/c"))
        );
        assert_eq!(cg.rel_path(), "/berth/c");
    }

    #[test]
    fn mountinfo_pure_v2_and_comounted_v1() {
        let v2 = "29 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";
        let m = CgroupManager::from_mountinfo(v2).unwrap();
        assert_eq!(m.version(), 2);
        assert_eq!(m.hierarchies().len(), 1);

        // A bind mount of a sub-cgroup listed first, a co-mounted cpu,cpuacct,
        // a second mount of the same hierarchy, and an escaped mount point.
        let v1 = "\
50 40 0:29 /docker/abc /mnt/cpu rw - cgroup cgroup rw,cpuacct,cpu
51 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
52 31 0:29 / /other/cpu rw - cgroup cgroup rw,cpu,cpuacct
53 31 0:32 / /sys/fs/cgroup/my\\040memory rw - cgroup cgroup rw,memory,clone_children
54 31 0:33 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
";
        let m = CgroupManager::from_mountinfo(v1).unwrap();
        assert_eq!(m.version(), 1);
        let h = m.hierarchies();
        assert_eq!(h.len(), 3);
        assert_eq!(h[0].mount_point, Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(h[0].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(h[1].mount_point, Path::new("/sys/fs/cgroup/my memory"));
        assert_eq!(h[1].controllers, vec!["memory"]);
        assert_eq!(h[2].controllers, vec!["name=systemd"]);
        assert!(m.hierarchies().iter().all(|h| !h.unified));

        // Only a named v1 hierarchy next to cgroup2 is still v2.
        let m = CgroupManager::from_mountinfo(&format!(
            "{v2}54 31 0:33 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n"
        ))
        .unwrap();
        assert_eq!(m.version(), 2);

        assert!(CgroupManager::from_mountinfo("1 0 8:1 / / rw - ext4 /dev/sda1 rw\n").is_err());
    }

    #[test]
    fn names_are_single_components() {
        let m = CgroupManager::from_mountinfo(HYBRID_MOUNTINFO).unwrap();
        assert!(m.clone().with_parent("..").is_err());
        assert!(m.clone().with_parent("a/../b").is_err());
        assert_eq!(
            m.clone().with_parent("/ci/berth/").unwrap().parent(),
            "ci/berth"
        );
        let r = Resources::default();
        for id in ["", ".", "..", "a/b", "a\0"] {
            assert!(m.create(id, &r).is_err(), "{id:?}");
            assert!(m.open(id).is_none());
        }
    }

    // ---- a fake v2 tree in a temporary directory ----

    fn put(dir: &Path, name: &str, content: &str) {
        fs::create_dir_all(dir).unwrap();
        fs::write(dir.join(name), content).unwrap();
    }

    fn get(dir: &Path, name: &str) -> String {
        fs::read_to_string(dir.join(name)).unwrap()
    }

    /// A cgroup2 root as the kernel shows it on a systemd-less host.
    fn fake_v2() -> (tempfile::TempDir, CgroupManager) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        put(
            root,
            "cgroup.controllers",
            "cpuset cpu io memory hugetlb pids rdma misc\n",
        );
        put(root, "cgroup.subtree_control", "");
        put(root, "cpuset.cpus.effective", "0-3\n");
        let mountinfo = format!(
            "24 1 0:22 / /sys rw - sysfs sysfs rw\n\
             29 24 0:26 / {} rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n",
            root.display()
        );
        let m = CgroupManager::from_mountinfo(&mountinfo).unwrap();
        (tmp, m)
    }

    /// The files the kernel gives a new v2 cgroup (those berth uses).
    fn fake_v2_cgroup(dir: &Path) {
        for (name, content) in [
            ("cgroup.controllers", "cpuset cpu io memory pids\n"),
            ("cgroup.subtree_control", ""),
            ("cgroup.procs", ""),
            ("cgroup.freeze", "0\n"),
            ("cgroup.events", "populated 0\nfrozen 0\n"),
            ("cgroup.kill", ""),
            ("cpu.max", "max 100000\n"),
            ("cpu.weight", "100\n"),
            ("cpu.stat", "usage_usec 0\nuser_usec 0\nsystem_usec 0\n"),
            ("cpuset.cpus", "\n"),
            ("memory.max", "max\n"),
            ("memory.swap.max", "max\n"),
            ("memory.current", "0\n"),
            ("memory.stat", ""),
            ("memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n"),
            ("pids.max", "max\n"),
            ("pids.current", "0\n"),
            ("io.stat", ""),
        ] {
            put(dir, name, content);
        }
    }

    fn fake_v2_container() -> (tempfile::TempDir, CgroupManager, Cgroup, PathBuf) {
        let (tmp, m) = fake_v2();
        let parent = tmp.path().join("berth");
        fake_v2_cgroup(&parent);
        let dir = parent.join("c1");
        fake_v2_cgroup(&dir);
        let r = Resources {
            memory: Some(32 << 20),
            cpu_shares: Some(1024),
            nano_cpus: Some(1_500_000_000),
            pids_limit: Some(100),
            cpuset_cpus: Some("1-2".into()),
            ..Default::default()
        };
        let cg = m.create("c1", &r).unwrap();
        (tmp, m, cg, dir)
    }

    #[test]
    fn v2_create_enables_controllers_and_writes_v2_files() {
        let (tmp, m, cg, dir) = fake_v2_container();
        assert_eq!(m.version(), 2);
        let want = "+cpuset +cpu +io +memory +pids";
        assert_eq!(get(tmp.path(), "cgroup.subtree_control"), want);
        assert_eq!(
            get(&tmp.path().join("berth"), "cgroup.subtree_control"),
            want
        );
        assert_eq!(
            get(&dir, "cgroup.subtree_control"),
            "",
            "the leaf's own stays off"
        );
        assert_eq!(get(&dir, "memory.max"), "33554432");
        // Docker's default swap (twice the memory) is the memory again as
        // swap alone.
        assert_eq!(get(&dir, "memory.swap.max"), "33554432");
        assert_eq!(get(&dir, "cpu.max"), "150000 100000");
        assert_eq!(get(&dir, "cpu.weight"), "100");
        assert_eq!(get(&dir, "pids.max"), "100");
        assert_eq!(get(&dir, "cpuset.cpus"), "1-2");
        assert_eq!(cg.rel_path(), "/berth/c1");
        let paths = cg.paths();
        assert_eq!(paths.len(), 1);
        assert!(paths[0].unified);
        assert_eq!(paths[0].path, dir);
        assert_eq!(m.open("c1"), Some(cg.clone()));
        assert_eq!(m.open("c2"), None);

        cg.add_pid(4242).unwrap();
        assert_eq!(get(&dir, "cgroup.procs"), "4242");

        let f = m.features();
        assert!(f.memory && f.cpu_cfs && f.cpu_shares && f.cpuset && f.pids && f.freezer);
        assert!(f.swap, "berth/memory.swap.max shows swap accounting");
    }

    #[test]
    fn v2_create_failure_removes_the_new_cgroup() {
        let (tmp, m) = fake_v2();
        fake_v2_cgroup(&tmp.path().join("berth"));
        // No kernel here to fill the new directory, so memory.max is missing.
        let r = Resources {
            memory: Some(32 << 20),
            ..Default::default()
        };
        let e = m.create("c2", &r).unwrap_err();
        assert!(e.message().contains("memory.max"), "{e}");
        assert!(!tmp.path().join("berth/c2").exists());
        assert!(m.open("c2").is_none());
    }

    #[test]
    fn v2_update_keeps_what_is_not_given() {
        let (_tmp, _m, cg, dir) = fake_v2_container();
        let mib = 1 << 20;
        cg.set(&Resources {
            memory_swap: Some(96 * mib),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(get(&dir, "memory.swap.max"), (64 * mib).to_string());
        assert_eq!(get(&dir, "memory.max"), (32 * mib).to_string());

        cg.set(&Resources {
            cpu_period: Some(50_000),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(get(&dir, "cpu.max"), "150000 50000");
        cg.set(&Resources {
            cpu_quota: Some(-1),
            cpu_shares: Some(2),
            pids_limit: Some(0),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(get(&dir, "cpu.max"), "max 50000");
        assert_eq!(get(&dir, "cpu.weight"), "1");
        assert_eq!(get(&dir, "pids.max"), "max");

        // No memory limit lifts the swap limit too.
        cg.set(&Resources {
            memory: Some(-1),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(get(&dir, "memory.max"), "max");
        assert_eq!(get(&dir, "memory.swap.max"), "max");
        // Swap without a memory limit makes no sense on v2.
        let e = cg
            .set(&Resources {
                memory_swap: Some(64 * mib),
                ..Default::default()
            })
            .unwrap_err();
        assert!(e.message().contains("without memory limit"), "{e}");
    }

    #[test]
    fn v2_stats_and_oom_from_counter_files() {
        let (_tmp, _m, cg, dir) = fake_v2_container();
        put(
            &dir,
            "cpu.stat",
            "usage_usec 2500\nuser_usec 1500\nsystem_usec 1000\nnr_periods 10\n\
             nr_throttled 2\nthrottled_usec 300\nnr_bursts 0\nburst_usec 0\n",
        );
        put(&dir, "memory.current", "1048576\n");
        put(&dir, "memory.peak", "2097152\n");
        put(
            &dir,
            "memory.stat",
            "anon 4096\nfile 8192\ninactive_file 4096\n",
        );
        put(
            &dir,
            "memory.events",
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\n",
        );
        put(&dir, "pids.current", "3\n");
        put(&dir, "pids.max", "max\n");
        put(
            &dir,
            "io.stat",
            "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n",
        );
        let s = cg.stats().unwrap();
        assert_eq!(
            s.cpu,
            CpuStats {
                total_ns: 2_500_000,
                per_cpu_ns: vec![],
                user_ns: 1_500_000,
                system_ns: 1_000_000,
                periods: 10,
                throttled_periods: 2,
                throttled_ns: 300_000,
            }
        );
        assert_eq!(s.memory.usage, 1 << 20);
        assert_eq!(s.memory.max_usage, Some(2 << 20));
        assert_eq!(s.memory.limit, Some(32 << 20));
        assert_eq!(s.memory.failcnt, Some(3));
        assert_eq!(s.memory.stats["inactive_file"], 4096);
        assert_eq!(
            s.pids,
            PidsStats {
                current: 3,
                limit: None
            }
        );
        assert_eq!(s.io.len(), 2);
        assert!(!cg.oom_killed());
        put(
            &dir,
            "memory.events",
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
        );
        assert!(cg.oom_killed());
    }

    #[test]
    fn v2_freeze_kill_and_pids() {
        let (_tmp, _m, cg, dir) = fake_v2_container();
        put(&dir, "cgroup.procs", "123\n456\n");
        put(&dir.join("sub"), "cgroup.procs", "789\n123\n");
        assert_eq!(cg.pids().unwrap(), vec![123, 456, 789]);

        assert!(!cg.frozen());
        // The fake kernel reports frozen at once.
        put(&dir, "cgroup.events", "populated 1\nfrozen 1\n");
        cg.freeze().unwrap();
        assert_eq!(get(&dir, "cgroup.freeze"), "1");
        assert!(cg.frozen());
        put(&dir, "cgroup.events", "populated 1\nfrozen 0\n");
        cg.thaw().unwrap();
        assert_eq!(get(&dir, "cgroup.freeze"), "0");

        // SIGKILL goes through cgroup.kill, never to the (fake) pids.
        cg.kill_all(libc::SIGKILL).unwrap();
        assert_eq!(get(&dir, "cgroup.kill"), "1");
    }

    #[test]
    fn destroy_of_a_missing_cgroup_is_ok() {
        let (_tmp, m) = fake_v2();
        m.cgroup("gone").destroy().unwrap();
    }

    // ---- the real cgroups of this host (root) ----

    /// Root and mounted cgroups, or (outside CI) a skip with the reason.
    fn real_manager() -> Option<CgroupManager> {
        let why = if !nix::unistd::geteuid().is_root() {
            "needs root"
        } else {
            match CgroupManager::detect() {
                Ok(m) => {
                    let mut b = [0u8; 6];
                    getrandom::fill(&mut b).unwrap();
                    let parent = format!("berth-test-{}", hex::encode(b));
                    return Some(m.with_parent(&parent).unwrap());
                }
                Err(_) => "needs mounted cgroups",
            }
        };
        crate::util::testing::skip(why);
        None
    }

    /// A cgroup under a parent of its own, and its processes; all removed on
    /// drop, also when the test fails.
    struct Fixture {
        m: CgroupManager,
        cg: Cgroup,
        children: Vec<Child>,
    }

    impl Fixture {
        fn new(r: &Resources) -> Option<Fixture> {
            let m = real_manager()?;
            let cg = match m.create("c1", r) {
                Ok(cg) => cg,
                Err(e) => {
                    remove_parent(&m);
                    panic!("create: {e}");
                }
            };
            Some(Fixture {
                m,
                cg,
                children: Vec::new(),
            })
        }

        /// Runs `script` in `sh`, in the cgroup from its first instruction
        /// (it waits on stdin until it has been moved).
        fn spawn(&mut self, script: &str) -> usize {
            let mut child = Command::new("sh")
                .arg("-c")
                .arg(format!("read _go; {script}"))
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let pid = child.id() as i32;
            let mut stdin = child.stdin.take().unwrap();
            self.children.push(child);
            self.cg.add_pid(pid).unwrap();
            stdin.write_all(b"go\n").unwrap();
            self.children.len() - 1
        }

        fn pid(&self, i: usize) -> i32 {
            self.children[i].id() as i32
        }

        fn wait(&mut self, i: usize, timeout: Duration) -> std::process::ExitStatus {
            let deadline = Instant::now() + timeout;
            loop {
                if let Some(st) = self.children[i].try_wait().unwrap() {
                    return st;
                }
                assert!(Instant::now() < deadline, "child still running");
                sleep(Duration::from_millis(20));
            }
        }

        fn stderr(&mut self, i: usize) -> String {
            let mut s = String::new();
            if let Some(mut e) = self.children[i].stderr.take() {
                e.read_to_string(&mut s).unwrap();
            }
            s
        }
    }

    fn remove_parent(m: &CgroupManager) {
        for h in m.hierarchies() {
            let _ = fs::remove_dir(h.mount_point.join(m.parent()));
        }
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            // Thaw first: waiting on a frozen child would hang.
            let _ = self.cg.thaw();
            for c in &mut self.children {
                let _ = c.kill();
            }
            let _ = self.cg.kill_all(libc::SIGKILL);
            for c in &mut self.children {
                let _ = c.wait();
            }
            if let Err(e) = self.cg.destroy() {
                eprintln!("cleanup: {e}");
            }
            remove_parent(&self.m);
            for h in self.m.hierarchies() {
                let p = h.mount_point.join(self.m.parent());
                assert!(!p.exists(), "left behind: {}", p.display());
            }
        }
    }

    fn file(p: Option<Place>, name: &str) -> String {
        match p.expect("controller present") {
            Place::V1(d) | Place::V2(d) => read_trim(&d, name).unwrap_or_default(),
        }
    }

    #[test]
    fn detect_reports_this_hosts_layout() {
        let Some(m) = real_manager() else { return };
        for h in m.hierarchies() {
            eprintln!("{:?} {}", h.controllers, h.mount_point.display());
        }
        let v1_memory = Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists();
        let pure_v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
        let probe = m.cgroup_at(PathBuf::new());
        if v1_memory {
            assert_eq!(m.version(), 1);
            assert_eq!(
                probe.place("memory"),
                Some(Place::V1("/sys/fs/cgroup/memory".into()))
            );
            assert!(matches!(probe.place("pids"), Some(Place::V1(_))));
            assert!(matches!(probe.place("cpu"), Some(Place::V1(_))));
        }
        if pure_v2 {
            assert_eq!(m.version(), 2);
            assert_eq!(
                probe.place("memory"),
                Some(Place::V2("/sys/fs/cgroup".into()))
            );
        }
        let f = m.features();
        eprintln!("version {} {f:?}", m.version());
        assert!(f.memory && f.pids && f.freezer);
    }

    #[test]
    fn limits_processes_stats_freeze_kill_destroy() {
        let mib: i64 = 1 << 20;
        let r = Resources {
            memory: Some(64 * mib),
            cpu_shares: Some(512),
            nano_cpus: Some(500_000_000),
            pids_limit: Some(64),
            cpuset_cpus: Some("0".into()),
            ..Default::default()
        };
        let Some(mut t) = Fixture::new(&r) else {
            return;
        };
        let cg = t.cg.clone();
        // create is idempotent
        assert_eq!(t.m.create("c1", &r).unwrap(), cg);

        match cg.place("memory").unwrap() {
            Place::V1(d) => {
                assert_eq!(read_trim(&d, "memory.limit_in_bytes").unwrap(), "67108864");
                if d.join("memory.memsw.limit_in_bytes").exists() {
                    assert_eq!(
                        read_trim(&d, "memory.memsw.limit_in_bytes").unwrap(),
                        "134217728"
                    );
                }
            }
            Place::V2(d) => {
                assert_eq!(read_trim(&d, "memory.max").unwrap(), "67108864");
            }
        }
        match cg.place("cpu").unwrap() {
            Place::V1(d) => {
                assert_eq!(read_trim(&d, "cpu.shares").unwrap(), "512");
                assert_eq!(read_trim(&d, "cpu.cfs_quota_us").unwrap(), "50000");
                assert_eq!(read_trim(&d, "cpu.cfs_period_us").unwrap(), "100000");
            }
            Place::V2(d) => {
                assert_eq!(read_trim(&d, "cpu.weight").unwrap(), "59");
                assert_eq!(read_trim(&d, "cpu.max").unwrap(), "50000 100000");
            }
        }
        assert_eq!(file(cg.place("pids"), "pids.max"), "64");
        assert_eq!(file(cg.place("cpuset"), "cpuset.cpus"), "0");
        if let Some(Place::V1(d)) = cg.place("cpuset") {
            assert!(!read_trim(&d, "cpuset.mems").unwrap().is_empty());
        }

        // The string makes the shell allocate (and charge) memory in the
        // cgroup: pages it touched before joining stay charged elsewhere.
        let i = t.spawn(
            "x=$(seq 1 50000); i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; exec sleep 30",
        );
        let pid = t.pid(i);
        assert!(cg.pids().unwrap().contains(&pid));
        let own = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        assert!(own.contains(&cg.rel_path()), "{own}");

        let deadline = Instant::now() + Duration::from_secs(10);
        let s = loop {
            let s = cg.stats().unwrap();
            if s.cpu.total_ns > 0 && s.cpu.user_ns > 0 && s.memory.usage > 0
                || Instant::now() > deadline
            {
                break s;
            }
            sleep(Duration::from_millis(50));
        };
        eprintln!("{s:#?}");
        assert!(s.cpu.total_ns > 0);
        assert!(s.memory.usage > 0);
        assert_eq!(s.memory.limit, Some(64 << 20));
        assert!(!s.memory.stats.is_empty());
        assert!(s.pids.current >= 1);
        assert_eq!(s.pids.limit, Some(64));
        assert!(!cg.oom_killed());

        cg.freeze().unwrap();
        assert!(cg.frozen());
        let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let state = status.lines().find(|l| l.starts_with("State:")).unwrap();
        eprintln!("frozen: {state}");
        assert!(!state.contains("R (running)"), "{state}");
        cg.freeze().unwrap(); // again: no-op
        cg.thaw().unwrap();
        assert!(!cg.frozen());

        cg.kill_all(libc::SIGTERM).unwrap();
        let st = t.wait(i, Duration::from_secs(10));
        assert_eq!(st.signal(), Some(libc::SIGTERM));
        assert!(cg.pids().unwrap().is_empty());

        cg.destroy().unwrap();
        for p in cg.paths() {
            assert!(!p.path.exists(), "{}", p.path.display());
        }
        assert!(t.m.open("c1").is_none());
        cg.destroy().unwrap();
        assert!(cg.stats().is_err());
    }

    #[test]
    fn update_orders_memory_and_swap_writes() {
        let mib: i64 = 1 << 20;
        let Some(t) = Fixture::new(&Resources {
            memory: Some(64 * mib),
            cpu_quota: Some(20_000),
            cpu_period: Some(100_000),
            ..Default::default()
        }) else {
            return;
        };
        let cg = &t.cg;
        let mem = |r: &Resources| {
            cg.set(r).unwrap();
            match cg.place("memory").unwrap() {
                Place::V1(d) => (
                    read_trim(&d, "memory.limit_in_bytes").unwrap(),
                    read_trim(&d, "memory.memsw.limit_in_bytes"),
                ),
                Place::V2(d) => (
                    read_trim(&d, "memory.max").unwrap(),
                    read_trim(&d, "memory.swap.max"),
                ),
            }
        };
        let v1 = matches!(cg.place("memory"), Some(Place::V1(_)));
        let swap = cg.swap_accounted();
        // Raise both past the old memory+swap, then lower both under it.
        let (m, s) = mem(&Resources {
            memory: Some(256 * mib),
            memory_swap: Some(512 * mib),
            ..Default::default()
        });
        assert_eq!(m, (256 * mib).to_string());
        if swap {
            let want = if v1 { 512 * mib } else { 256 * mib };
            assert_eq!(s.unwrap(), want.to_string());
        }
        let (m, s) = mem(&Resources {
            memory: Some(32 * mib),
            memory_swap: Some(48 * mib),
            ..Default::default()
        });
        assert_eq!(m, (32 * mib).to_string());
        if swap {
            let want = if v1 { 48 * mib } else { 16 * mib };
            assert_eq!(s.unwrap(), want.to_string());
        }
        if v1 && swap {
            // Memory alone past memory+swap is refused, as Docker does.
            let e = cg
                .set(&Resources {
                    memory: Some(100 * mib),
                    ..Default::default()
                })
                .unwrap_err();
            assert!(e.message().contains("memoryswap"), "{e}");
        }
        let (m, _) = mem(&Resources {
            memory: Some(-1),
            ..Default::default()
        });
        assert!(m == "max" || parse_limit(&m).is_none(), "{m}");

        // A shorter period alone keeps the quota.
        cg.set(&Resources {
            cpu_period: Some(50_000),
            ..Default::default()
        })
        .unwrap();
        match cg.place("cpu").unwrap() {
            Place::V1(d) => {
                assert_eq!(read_trim(&d, "cpu.cfs_quota_us").unwrap(), "20000");
                assert_eq!(read_trim(&d, "cpu.cfs_period_us").unwrap(), "50000");
            }
            Place::V2(d) => assert_eq!(read_trim(&d, "cpu.max").unwrap(), "20000 50000"),
        }
        cg.set(&Resources {
            pids_limit: Some(10),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(file(cg.place("pids"), "pids.max"), "10");
        cg.set(&Resources {
            pids_limit: Some(-1),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(file(cg.place("pids"), "pids.max"), "max");
        let e = cg
            .set(&Resources {
                cpuset_cpus: Some("4000".into()),
                ..Default::default()
            })
            .unwrap_err();
        assert!(
            e.message().contains("Requested CPUs are not available"),
            "{e}"
        );
    }

    #[test]
    fn fork_loop_stops_at_the_pids_limit() {
        let Some(mut t) = Fixture::new(&Resources {
            pids_limit: Some(5),
            ..Default::default()
        }) else {
            return;
        };
        let i = t.spawn("for i in $(seq 20); do sleep 1 & done; wait");
        let mut peak = 0;
        let deadline = Instant::now() + Duration::from_secs(20);
        while t.children[i].try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "fork loop still running");
            peak = peak.max(t.cg.stats().unwrap().pids.current);
            sleep(Duration::from_millis(10));
        }
        let err = t.stderr(i);
        eprintln!("peak {peak}, stderr: {err}");
        assert!(peak <= 5, "{peak}");
        let events = file(t.cg.place("pids"), "pids.events");
        let refused = parse_keyed(&events).get("max").copied().unwrap_or(0);
        assert!(refused > 0, "pids.events: {events}");
        assert!(err.to_lowercase().contains("fork"), "{err}");
        // The host still forks.
        assert!(Command::new("true").status().unwrap().success());
    }

    #[test]
    fn memory_hog_is_oom_killed_and_reported() {
        let Some(mut t) = Fixture::new(&Resources {
            memory: Some(32 << 20),
            ..Default::default()
        }) else {
            return;
        };
        // tail keeps all of /dev/zero as one endless line. The address space
        // cap keeps the host safe should the cgroup limit not hold.
        let i = t.spawn("ulimit -v 1048576; exec tail /dev/zero");
        let st = t.wait(i, Duration::from_secs(60));
        assert_eq!(st.signal(), Some(libc::SIGKILL), "{st:?}");
        assert!(t.cg.oom_killed());
        let s = t.cg.stats().unwrap();
        eprintln!("memory after OOM: {:?}", s.memory);
        assert!(s.memory.failcnt.unwrap_or(1) > 0);
    }

    #[test]
    fn sigkill_reaches_every_process_also_when_paused() {
        let Some(mut t) = Fixture::new(&Resources::default()) else {
            return;
        };
        let a = t.spawn("sleep 60 & sleep 60 & wait");
        let b = t.spawn("sleep 60");
        let deadline = Instant::now() + Duration::from_secs(5);
        while t.cg.pids().unwrap().len() < 4 {
            assert!(Instant::now() < deadline, "{:?}", t.cg.pids());
            sleep(Duration::from_millis(10));
        }
        t.cg.freeze().unwrap();
        t.cg.kill_all(libc::SIGKILL).unwrap();
        assert_eq!(
            t.wait(a, Duration::from_secs(10)).signal(),
            Some(libc::SIGKILL)
        );
        assert_eq!(
            t.wait(b, Duration::from_secs(10)).signal(),
            Some(libc::SIGKILL)
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while !t.cg.pids().unwrap().is_empty() {
            assert!(Instant::now() < deadline, "{:?}", t.cg.pids());
            sleep(Duration::from_millis(10));
        }
        t.cg.destroy().unwrap();
    }

    #[test]
    fn device_rules_are_enforced() {
        let rules = devices::docker_default_rules();
        let Some(mut t) = Fixture::new(&Resources {
            devices: rules.clone(),
            ..Default::default()
        }) else {
            return;
        };
        let (major, minor) = fs::read_dir("/sys/dev/block")
            .unwrap()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let (a, b) = name.split_once(':')?;
                Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?))
            })
            .min_by_key(|&(a, b)| (a == 7, a, b))
            .expect("a block device in /sys/dev/block");
        let v1 = matches!(t.cg.place("devices"), Some(Place::V1(_)));
        if v1 {
            let list = file(t.cg.place("devices"), "devices.list");
            assert!(
                list.contains("c 1:3 rwm") && list.contains("b *:* m"),
                "{list}"
            );
            assert!(!list.contains("a *:*"), "{list}");
        }
        let tmp = tempfile::tempdir().unwrap();
        let node = tmp.path().join("disk");
        let i = t.spawn(&format!(
            "head -c 1 /dev/null && echo null-ok >&2; \
             mknod {n} b {major} {minor} && echo mknod-ok >&2; \
             head -c 1 {n} >/dev/null || echo open-denied >&2",
            n = node.display()
        ));
        assert!(t.wait(i, Duration::from_secs(10)).success());
        let err = t.stderr(i);
        assert!(err.contains("null-ok\n"), "{err}");
        assert!(err.contains("mknod-ok\n"), "{err}");
        assert!(err.contains("Operation not permitted"), "{err}");
        assert!(err.ends_with("open-denied\n"), "{err}");
        // The host itself still opens it.
        assert!(fs::File::open(&node).is_ok());

        // Creating again with the same rules finds them in place; with
        // allow-all (`--privileged`) resets them.
        t.m.create(
            "c1",
            &Resources {
                devices: rules,
                ..Default::default()
            },
        )
        .unwrap();
        let all = vec![DeviceRule::new(
            true,
            devices::DeviceKind::All,
            None,
            None,
            "rwm",
        )];
        t.m.create(
            "c1",
            &Resources {
                devices: all,
                ..Default::default()
            },
        )
        .unwrap();
        if v1 {
            assert_eq!(file(t.cg.place("devices"), "devices.list"), "a *:* rwm");
        }
        let i = t.spawn(&format!(
            "head -c 1 {} >/dev/null && echo open-ok >&2",
            node.display()
        ));
        assert!(t.wait(i, Duration::from_secs(10)).success());
        assert_eq!(t.stderr(i), "open-ok\n");
    }
}
