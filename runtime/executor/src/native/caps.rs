//! Linux capabilities for native containers, the Docker way.
//!
//! Owns: Docker's default capability set, the `--cap-add`/`--cap-drop`/
//! `--privileged` arithmetic (moby's `oci/caps.TweakCapabilities`, followed
//! to the letter), the five OCI capability sets Docker puts in a spec, and
//! applying those sets to the calling thread with raw `capset`/`prctl`.
//! Must not touch: users and groups, namespaces, seccomp, the OCI spec
//! itself (the caller converts), or any other process.
//!
//! # What Docker (and runc) do
//!
//! Docker resolves one list of capabilities per container and writes it to
//! the spec as `process.capabilities.{bounding,effective,permitted}`;
//! `inheritable` stays empty (since CVE-2022-24769, Docker 20.10.14) and so
//! does `ambient`. It does this for root and non-root users alike (moby
//! #45511 undid the earlier "drop E/P for non-root" rule). The kernel then
//! does the rest at `execve`: a process with uid 0 ends up with the bounding
//! set as its effective and permitted sets, while a non-root process (and no
//! file capabilities) ends up with empty effective and permitted sets, the
//! capabilities surviving only in the bounding set. [`CapSets::docker`]
//! builds exactly those five sets.
//!
//! # Call order in the container's init (the child, after `clone`)
//!
//! In the parent, before cloning: `let keep = resolve(&add, &drop, privileged)?;`
//! and `let sets = CapSets::docker(&keep);` (allocation happens here).
//! In the child, after namespaces, mounts and `pivot_root`:
//!
//! 1. `prctl(PR_SET_KEEPCAPS, 1)`: only needed when switching to a non-zero
//!    uid; without it `setuid` empties the permitted set and step 4 fails.
//! 2. `setgroups`, `setresgid`, `setresuid` (the container's user).
//! 3. `prctl(PR_SET_KEEPCAPS, 0)`.
//! 4. [`apply`]`(&sets)`: raises effective to the current permitted set (so
//!    `CAP_SETPCAP` is usable again after a uid change), drops everything
//!    outside `sets.bounding` from the bounding set, sets effective,
//!    permitted and inheritable, then the ambient set.
//! 5. `prctl(PR_SET_NO_NEW_PRIVS, 1)` and `seccomp::install` (see that
//!    module; with no-new-privileges off, install the filter *before* step 4
//!    instead, while `CAP_SYS_ADMIN` is still effective, as runc does).
//! 6. `execve`.
//!
//! [`apply`] allocates nothing and only makes raw system calls, so it is safe
//! in a child cloned from a multi-threaded parent. Capabilities are per
//! thread: it changes the calling thread only.

use std::io;

pub use caps::Capability;

use crate::error::{Error, Result};

/// Docker's 14 default capabilities, in moby's order
/// (`oci/caps/defaults.go`, `DefaultCapabilities`).
pub const DOCKER_DEFAULT: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// The magic `--cap-add`/`--cap-drop` value meaning every capability.
const ALL: &str = "ALL";

/// [`DOCKER_DEFAULT`] as capabilities.
pub fn docker_default() -> Vec<Capability> {
    DOCKER_DEFAULT
        .iter()
        .map(|name| {
            name.parse()
                .expect("DOCKER_DEFAULT names are known capabilities")
        })
        .collect()
}

/// Every capability that both the `caps` crate and the running kernel know,
/// ordered by number: what `--privileged` and `--cap-add ALL` grant.
pub fn all_supported() -> Vec<Capability> {
    let last = last_cap();
    // Only what this process can grant: a daemon in a restricted sandbox
    // (a bounding set without, say, CAP_SYS_RESOURCE) cannot give more.
    let in_bounding = |c: &Capability| {
        // SAFETY: prctl with integer arguments.
        let rc = unsafe { libc::prctl(libc::PR_CAPBSET_READ, c.index() as libc::c_ulong, 0, 0, 0) };
        rc != 0
    };
    let mut all: Vec<Capability> = caps::all()
        .into_iter()
        .filter(|c| last.is_none_or(|last| c.index() <= last))
        .filter(in_bounding)
        .collect();
    all.sort_by_key(|c| c.index());
    all
}

/// The kernel's highest capability number (`/proc/sys/kernel/cap_last_cap`).
fn last_cap() -> Option<u8> {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// A normalized `--cap-add`/`--cap-drop` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Name {
    All,
    Cap(Capability),
}

/// moby's `NormalizeLegacyCapabilities`: upper-case, add a `CAP_` prefix when
/// missing, accept `ALL`, refuse names the kernel does not support.
fn normalize(names: &[String], supported: &[Capability]) -> Result<Vec<Name>> {
    names
        .iter()
        .map(|raw| {
            let upper = raw.to_uppercase();
            if upper == ALL {
                return Ok(Name::All);
            }
            let name = if upper.starts_with("CAP_") {
                upper
            } else {
                format!("CAP_{upper}")
            };
            supported
                .iter()
                .find(|c| c.to_string() == name)
                .map(|c| Name::Cap(*c))
                .ok_or_else(|| Error::invalid(format!("unknown capability: {name:?}")))
        })
        .collect()
}

/// The container's capability list from its create options, with Docker's
/// semantics (moby `caps.TweakCapabilities` over `DefaultCapabilities`):
///
/// - `privileged`: every supported capability; add/drop are ignored (not
///   even validated).
/// - no add and no drop: the 14 defaults.
/// - `ALL` in add: every supported capability except the dropped ones (a
///   `ALL` in drop then removes nothing, as in moby).
/// - `ALL` in drop: exactly the added ones.
/// - otherwise: the defaults minus the dropped, plus the added. A capability
///   both added and dropped is therefore *kept*: moby applies drops to the
///   defaults first and appends adds after.
///
/// Names are case-insensitive, with or without `CAP_`; an unknown one is an
/// `InvalidArgument` error `unknown capability: "CAP_FOO"` (drops are
/// checked before adds, as in moby). The result has no duplicates; its order
/// is moby's (defaults order, then adds; numeric order for `ALL`).
pub fn resolve(
    cap_add: &[String],
    cap_drop: &[String],
    privileged: bool,
) -> Result<Vec<Capability>> {
    let supported = all_supported();
    if privileged {
        return Ok(supported);
    }
    let basics = docker_default();
    if cap_add.is_empty() && cap_drop.is_empty() {
        return Ok(basics);
    }
    let drops = normalize(cap_drop, &supported)?;
    let adds = normalize(cap_add, &supported)?;
    let dropped = |c: &Capability| drops.contains(&Name::Cap(*c));

    let caps: Vec<Capability> = if adds.contains(&Name::All) {
        supported.iter().copied().filter(|c| !dropped(c)).collect()
    } else if drops.contains(&Name::All) {
        adds.iter()
            .filter_map(|n| match n {
                Name::Cap(c) => Some(*c),
                Name::All => None,
            })
            .collect()
    } else {
        basics
            .iter()
            .copied()
            .filter(|c| !dropped(c))
            .chain(adds.iter().filter_map(|n| match n {
                Name::Cap(c) => Some(*c),
                Name::All => None,
            }))
            .collect()
    };

    let mut unique = Vec::with_capacity(caps.len());
    for c in caps {
        if !unique.contains(&c) {
            unique.push(c);
        }
    }
    Ok(unique)
}

/// The bit mask of a capability list (bit n = capability number n).
pub fn mask(caps: &[Capability]) -> u64 {
    caps.iter().fold(0, |m, c| m | c.bitmask())
}

/// The five capability sets of an OCI `process.capabilities`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapSets {
    pub bounding: Vec<Capability>,
    pub effective: Vec<Capability>,
    pub permitted: Vec<Capability>,
    pub inheritable: Vec<Capability>,
    pub ambient: Vec<Capability>,
}

impl CapSets {
    /// What Docker writes into the spec for a container whose resolved
    /// capability list is `keep` (moby `oci.SetCapabilities`): bounding,
    /// effective and permitted are `keep`; inheritable and ambient are empty.
    /// The same for every user: the kernel clears effective and permitted at
    /// `execve` for a non-root user.
    pub fn docker(keep: &[Capability]) -> CapSets {
        CapSets {
            bounding: keep.to_vec(),
            effective: keep.to_vec(),
            permitted: keep.to_vec(),
            inheritable: Vec::new(),
            ambient: Vec::new(),
        }
    }

    /// The sets of an OCI spec's `process.capabilities` (absent sets are
    /// empty), e.g. to run a spec written for an external runtime.
    pub fn from_oci(oci: &oci_spec::runtime::LinuxCapabilities) -> Result<CapSets> {
        fn set(caps: &Option<oci_spec::runtime::Capabilities>) -> Result<Vec<Capability>> {
            let mut out: Vec<Capability> = Vec::new();
            for c in caps.iter().flatten() {
                // The serde name is the kernel's ("CAP_CHOWN"); Display is not.
                let name = serde_json::to_value(c)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                let cap: Capability = name
                    .parse()
                    .map_err(|_| Error::invalid(format!("unknown capability: {name:?}")))?;
                out.push(cap);
            }
            out.sort_by_key(|c| c.index());
            Ok(out)
        }
        Ok(CapSets {
            bounding: set(oci.bounding())?,
            effective: set(oci.effective())?,
            permitted: set(oci.permitted())?,
            inheritable: set(oci.inheritable())?,
            ambient: set(oci.ambient())?,
        })
    }
}

/// `struct __user_cap_header_struct`.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

/// `struct __user_cap_data_struct`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

fn check(rc: libc::c_long) -> io::Result<libc::c_long> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// The calling thread's (effective, permitted, inheritable) masks.
fn capget() -> io::Result<(u64, u64, u64)> {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: header and data are valid for the kernel to read and write;
    // version 3 takes two data structs.
    check(unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) })?;
    let join = |lo: u32, hi: u32| u64::from(lo) | (u64::from(hi) << 32);
    Ok((
        join(data[0].effective, data[1].effective),
        join(data[0].permitted, data[1].permitted),
        join(data[0].inheritable, data[1].inheritable),
    ))
}

/// Sets the calling thread's effective, permitted and inheritable masks.
fn capset(effective: u64, permitted: u64, inheritable: u64) -> io::Result<()> {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [
        CapData {
            effective: effective as u32,
            permitted: permitted as u32,
            inheritable: inheritable as u32,
        },
        CapData {
            effective: (effective >> 32) as u32,
            permitted: (permitted >> 32) as u32,
            inheritable: (inheritable >> 32) as u32,
        },
    ];
    // SAFETY: header and data are valid for the kernel to read.
    check(unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) })?;
    Ok(())
}

fn prctl(option: libc::c_int, arg2: libc::c_ulong) -> io::Result<libc::c_int> {
    // SAFETY: these prctl options take integer arguments only.
    let rc = unsafe {
        libc::prctl(
            option,
            arg2,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// Applies `sets` to the calling thread (see the module docs for when):
/// bounding set first (needs `CAP_SETPCAP` in the permitted set, which is
/// raised to effective for the purpose), then effective/permitted/
/// inheritable, then ambient. Capabilities the kernel does not know are
/// ignored. Allocates nothing.
pub fn apply(sets: &CapSets) -> io::Result<()> {
    let bounding = mask(&sets.bounding);

    // Make every permitted capability effective: after a uid change with
    // PR_SET_KEEPCAPS the effective set is empty but CAP_SETPCAP may still
    // be permitted, and dropping from the bounding set needs it effective.
    let (_, permitted, inheritable) = capget()?;
    capset(permitted, permitted, inheritable)?;

    for cap in 0..64u32 {
        let present = match prctl(libc::PR_CAPBSET_READ, cap.into()) {
            Ok(present) => present,
            // Past the kernel's last capability.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => break,
            Err(e) => return Err(e),
        };
        if present == 1 && bounding & (1 << cap) == 0 {
            prctl(libc::PR_CAPBSET_DROP, cap.into())?;
        }
    }

    capset(
        mask(&sets.effective),
        mask(&sets.permitted),
        mask(&sets.inheritable),
    )?;

    match prctl(
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
    ) {
        Ok(_) => {}
        // A kernel before 4.3 has no ambient set; fine while none is asked.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) && sets.ambient.is_empty() => {
            return Ok(());
        }
        Err(e) => return Err(e),
    }
    for cap in &sets.ambient {
        // SAFETY: integer arguments only.
        let rc = unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                libc::c_ulong::from(cap.index()),
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use std::collections::BTreeSet;
    use std::process::Command;

    fn strings(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn set(caps: &[Capability]) -> BTreeSet<u8> {
        caps.iter().map(|c| c.index()).collect()
    }

    fn resolved(add: &[&str], drop: &[&str]) -> BTreeSet<u8> {
        set(&resolve(&strings(add), &strings(drop), false).unwrap())
    }

    #[test]
    fn docker_default_is_the_fourteen() {
        let caps = docker_default();
        assert_eq!(caps.len(), 14);
        assert_eq!(set(&caps).len(), 14);
        assert_eq!(caps[0], Capability::CAP_CHOWN);
        assert!(caps.contains(&Capability::CAP_AUDIT_WRITE));
        assert!(!caps.contains(&Capability::CAP_SYS_ADMIN));
        assert!(!caps.contains(&Capability::CAP_NET_ADMIN));
        assert_eq!(resolve(&[], &[], false).unwrap(), caps);
    }

    #[test]
    fn add_and_drop_accept_any_case_with_or_without_prefix() {
        let defaults = set(&docker_default());
        let mut with_admin = defaults.clone();
        with_admin.insert(Capability::CAP_SYS_ADMIN.index());
        assert_eq!(resolved(&["sys_admin"], &[]), with_admin);
        assert_eq!(resolved(&["CAP_SYS_ADMIN"], &[]), with_admin);
        assert_eq!(resolved(&["Cap_Sys_Admin"], &[]), with_admin);

        let mut without_chown = defaults.clone();
        without_chown.remove(&Capability::CAP_CHOWN.index());
        assert_eq!(resolved(&[], &["chown"]), without_chown);
        assert_eq!(resolved(&[], &["cap_chown"]), without_chown);
        assert_eq!(resolved(&[], &["CHOWN", "CAP_CHOWN"]), without_chown);
    }

    #[test]
    fn all_in_add_or_drop() {
        let all = set(&all_supported());
        assert!(all.contains(&Capability::CAP_SYS_ADMIN.index()));

        let mut all_but_mknod = all.clone();
        all_but_mknod.remove(&Capability::CAP_MKNOD.index());
        assert_eq!(resolved(&["all"], &["mknod"]), all_but_mknod);

        assert_eq!(
            resolved(&["NET_BIND_SERVICE"], &["ALL"]),
            BTreeSet::from([Capability::CAP_NET_BIND_SERVICE.index()])
        );
        assert_eq!(resolved(&[], &["ALL"]), BTreeSet::new());
        // moby checks "ALL" in add first, so add ALL + drop ALL keeps all.
        assert_eq!(resolved(&["ALL"], &["ALL"]), all);
    }

    #[test]
    fn add_of_a_dropped_capability_keeps_it_as_moby_does() {
        // Drops apply to the defaults, adds are appended afterwards.
        assert!(resolved(&["CHOWN"], &["CHOWN"]).contains(&Capability::CAP_CHOWN.index()));
        assert!(
            resolved(&["NET_ADMIN"], &["NET_ADMIN"]).contains(&Capability::CAP_NET_ADMIN.index())
        );
        // An add that is already a default does not duplicate it.
        let caps = resolve(&strings(&["chown"]), &[], false).unwrap();
        assert_eq!(caps.len(), 14);
    }

    #[test]
    fn unknown_capability_is_invalid_argument() {
        let err = resolve(&strings(&["foo"]), &[], false).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert_eq!(err.message(), "unknown capability: \"CAP_FOO\"");

        let err = resolve(&[], &strings(&["CAP_BOGUS"]), false).unwrap_err();
        assert_eq!(err.message(), "unknown capability: \"CAP_BOGUS\"");

        // Drops are validated before adds, as in moby.
        let err = resolve(&strings(&["nope1"]), &strings(&["nope2"]), false).unwrap_err();
        assert_eq!(err.message(), "unknown capability: \"CAP_NOPE2\"");
    }

    #[test]
    fn privileged_gets_everything_and_ignores_add_drop() {
        let all = all_supported();
        assert_eq!(resolve(&[], &[], true).unwrap(), all);
        assert_eq!(
            resolve(&strings(&["bogus"]), &strings(&["ALL"]), true).unwrap(),
            all
        );
        // Sorted by number, no gaps past the kernel's last capability.
        assert!(all.windows(2).all(|w| w[0].index() < w[1].index()));
    }

    #[test]
    fn docker_sets() {
        let keep = docker_default();
        let sets = CapSets::docker(&keep);
        assert_eq!(sets.bounding, keep);
        assert_eq!(sets.effective, keep);
        assert_eq!(sets.permitted, keep);
        assert!(sets.inheritable.is_empty());
        assert!(sets.ambient.is_empty());
        assert_eq!(mask(&keep), 0xa804_25fb);
    }

    #[test]
    fn sets_from_an_oci_spec() {
        use oci_spec::runtime::{Capability as Oci, LinuxCapabilitiesBuilder};
        let oci = LinuxCapabilitiesBuilder::default()
            .bounding(
                [Oci::Chown, Oci::SysAdmin]
                    .into_iter()
                    .collect::<oci_spec::runtime::Capabilities>(),
            )
            .effective(
                [Oci::Chown]
                    .into_iter()
                    .collect::<oci_spec::runtime::Capabilities>(),
            )
            .inheritable(oci_spec::runtime::Capabilities::new())
            .build()
            .unwrap();
        let sets = CapSets::from_oci(&oci).unwrap();
        assert_eq!(
            sets.bounding,
            vec![Capability::CAP_CHOWN, Capability::CAP_SYS_ADMIN]
        );
        assert_eq!(sets.effective, vec![Capability::CAP_CHOWN]);
        assert!(sets.inheritable.is_empty());
        // Sets the builder was not given keep oci-spec's defaults.
        assert_eq!(
            sets.permitted,
            vec![
                Capability::CAP_KILL,
                Capability::CAP_NET_BIND_SERVICE,
                Capability::CAP_AUDIT_WRITE
            ]
        );
    }

    // ---- real behaviour, in a child process ------------------------------

    const CHILD_ENV: &str = "BERTH_CAPS_TEST_CHILD";

    /// Runs this test binary again, only `test`, with `CHILD_ENV=mode`, and
    /// returns its stdout; `None` when not root (skipped; a failure on CI).
    fn run_child(test: &str, mode: &str) -> Option<String> {
        crate::util::testing::rerun_as_child(module_path!(), test, (CHILD_ENV, mode))
    }

    /// The `Cap*:` masks of `/proc/.../status` lines that start with `prefix`.
    fn status_masks(stdout: &str, prefix: &str) -> std::collections::BTreeMap<String, u64> {
        stdout
            .lines()
            .filter_map(|l| l.strip_prefix(prefix))
            .filter_map(|l| {
                let (k, v) = l.split_once(':')?;
                let k = k.trim();
                k.starts_with("Cap")
                    .then(|| (k.to_string(), u64::from_str_radix(v.trim(), 16).unwrap()))
            })
            .collect()
    }

    fn print_thread_status(prefix: &str) {
        let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
        // libtest has printed "test name ... " without a newline.
        println!();
        for line in status.lines().filter(|l| l.starts_with("Cap")) {
            println!("{prefix}{line}");
        }
    }

    #[test]
    fn apply_docker_sets_as_root() {
        if std::env::var(CHILD_ENV).as_deref() == Ok("root") {
            apply(&CapSets::docker(&docker_default())).unwrap();
            print_thread_status("STATUS ");
            return;
        }
        let Some(out) = run_child("apply_docker_sets_as_root", "root") else {
            return;
        };
        let m = status_masks(&out, "STATUS ");
        let want = mask(&docker_default());
        assert_eq!(m["CapEff"], want, "{out}");
        assert_eq!(m["CapPrm"], want, "{out}");
        assert_eq!(m["CapBnd"], want, "{out}");
        assert_eq!(m["CapInh"], 0, "{out}");
        assert_eq!(m["CapAmb"], 0, "{out}");
    }

    #[test]
    fn apply_after_switching_to_a_non_root_user() {
        if std::env::var(CHILD_ENV).as_deref() == Ok("user") {
            use std::os::unix::process::CommandExt;
            // The documented order, on this thread only (raw syscalls: glibc
            // would change every thread of the test binary).
            prctl(libc::PR_SET_KEEPCAPS, 1).unwrap();
            // SAFETY: integer arguments only.
            unsafe {
                check(libc::syscall(
                    libc::SYS_setgroups,
                    0,
                    std::ptr::null::<libc::gid_t>(),
                ))
                .unwrap();
                check(libc::syscall(libc::SYS_setresgid, 1000, 1000, 1000)).unwrap();
                check(libc::syscall(libc::SYS_setresuid, 1000, 1000, 1000)).unwrap();
            }
            prctl(libc::PR_SET_KEEPCAPS, 0).unwrap();
            apply(&CapSets::docker(&docker_default())).unwrap();
            print_thread_status("BEFORE-EXEC ");
            // What the container's process sees after execve.
            let err = Command::new("/bin/cat").arg("/proc/self/status").exec();
            panic!("exec /bin/cat: {err}");
        }
        let Some(out) = run_child("apply_after_switching_to_a_non_root_user", "user") else {
            return;
        };
        let want = mask(&docker_default());
        let before = status_masks(&out, "BEFORE-EXEC ");
        assert_eq!(before["CapEff"], want, "{out}");
        assert_eq!(before["CapPrm"], want, "{out}");
        assert_eq!(before["CapBnd"], want, "{out}");
        // After execve as uid 1000: Docker's non-root container.
        let after = status_masks(&out, "");
        assert_eq!(after["CapEff"], 0, "{out}");
        assert_eq!(after["CapPrm"], 0, "{out}");
        assert_eq!(after["CapInh"], 0, "{out}");
        assert_eq!(after["CapBnd"], want, "{out}");
        assert!(
            out.lines()
                .any(|l| l.starts_with("Uid:") && l.contains("1000")),
            "{out}"
        );
    }
}
