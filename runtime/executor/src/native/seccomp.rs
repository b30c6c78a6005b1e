//! Seccomp for native containers: Docker's default profile, Docker's profile
//! format (what `--security-opt seccomp=FILE` supplies), its translation to
//! the OCI spec's `linux.seccomp` section ([`to_oci`], which the container
//! layer does once per container), and a compiler from such a section to
//! the classic-BPF filter that the built-in runtime's container init
//! installs right before `execve` ([`compile_oci`]). An external runtime
//! (runc, crun) compiles the same section itself.
//!
//! Owns: the embedded default profile, profile parsing and validation, the
//! include/exclude evaluation Docker does when it writes a spec, the
//! translation to the OCI `linux.seccomp` section, syscall name → number
//! tables, BPF code generation from a section, and loading a filter into
//! the calling thread. Must not touch: capabilities (see `caps`), the rest
//! of the OCI spec, namespaces, or any process but the caller. `unconfined`
//! is the caller's business: the spec then has no section, and nothing is
//! installed.
//!
//! # Where the default profile comes from
//!
//! `seccomp-default.json` is moby's `profiles/seccomp/default.json` as
//! shipped from Docker 28.2 on: after moby#50077 (kernel 6.8–6.13 syscalls:
//! listmount, statmount, mseal, uretprobe, riscv_hwprobe, *xattrat) and
//! moby#50097 (lsm_* behind CAP_SYS_ADMIN), before the profile moved to
//! github.com/moby/profiles and allowed the keyring syscalls there
//! (moby/profiles#2). Byte for byte it is moby/profiles
//! `seccomp/default.json` at 190fa92cb275 without `add_key`, `keyctl` and
//! `request_key`, formatted as `go generate` formats it. Highlights: default
//! action `SCMP_ACT_ERRNO` with errno 1 (EPERM); io_uring blocked (Docker
//! 25+); `socket(AF_VSOCK)` blocked; namespace flags of `clone` and all of
//! `unshare`, `mount`, `setns` need CAP_SYS_ADMIN; `clone3` returns ENOSYS
//! without CAP_SYS_ADMIN so that libc falls back to `clone`; `ptrace` is
//! allowed on kernels ≥ 4.8.
//!
//! # From profile to filter (what moby, runc and libseccomp do)
//!
//! 1. moby (`setupSeccomp`, at spec time; here [`to_oci`]): an entry is
//!    dropped when an `excludes` matches or an `includes` does not, against
//!    the container's *bounding* capabilities, the native architecture in Go's spelling
//!    (`amd64`, `arm64`) and the running kernel's version (`minKernel`). The
//!    filter's architectures are the native one plus, from `archMap`, the
//!    sub-architectures listed for it (or the legacy `architectures` list).
//! 2. runc + libseccomp (here [`compile_oci`], from the section alone): a
//!    rule whose action equals the default action is skipped; a name unknown on an architecture is skipped silently; an
//!    unconditional rule for a syscall wins over conditional ones; the
//!    conditions of a rule are ANDed, except that when two of them test the
//!    same argument each becomes its own rule (ORed), as runc does; rules of
//!    one syscall are tried in profile order. Argument comparisons are 64-bit
//!    on 64-bit architectures and 32-bit on i386; `SCMP_CMP_MASKED_EQ` takes
//!    the mask in `value` and the datum in `valueTwo`. With a non-allow
//!    default action, syscall numbers above the largest one the profile
//!    names return ENOSYS (runc's `patchbpf`), so that libc falls back from
//!    syscalls newer than the profile.
//! 3. Code generation (here): an architecture check (x86_64, i386 and
//!    aarch64 sections are supported; x32 calls and other architectures hit
//!    `SECCOMP_RET_KILL_PROCESS`, where libseccomp would kill the thread),
//!    then per architecture a binary search over syscall-number ranges that
//!    share one outcome, with argument checks at the leaves.
//!
//! seccompiler is not used: its filters have one match action and one
//! default action, while Docker's profile needs several (ALLOW, ERRNO(EPERM),
//! ERRNO(ENOSYS) for `clone3`) in one filter.
//!
//! # Call order
//!
//! In the container layer, when it renders the spec: [`to_oci`] (reads the
//! kernel version). In berthd, before starting the container's shim or an
//! exec: [`compile_oci`] (allocates; cached per section). In the child,
//! after `caps::apply` and right before `execve`: [`set_no_new_privs`] (or
//! `prctl(PR_SET_NO_NEW_PRIVS, 1)`) then [`install`], which allocates
//! nothing. Without no-new-privileges the
//! kernel only accepts a filter from a thread with CAP_SYS_ADMIN in its
//! effective set: install before dropping capabilities in that case, as
//! runc does. The filter covers the calling thread and everything it execs.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::sync::OnceLock;

use caps::Capability;
use oci_spec::runtime::{
    Arch as OciArch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder,
    LinuxSeccompFilterFlag, LinuxSeccompOperator, LinuxSyscall,
};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// Docker's default profile, as JSON (see the module docs for its source).
pub const DEFAULT_PROFILE_JSON: &str = include_str!("seccomp-default.json");

/// Docker's default profile, parsed once.
pub fn default_profile() -> &'static Profile {
    static PROFILE: OnceLock<Profile> = OnceLock::new();
    PROFILE.get_or_init(|| {
        parse(DEFAULT_PROFILE_JSON.as_bytes())
            .expect("the embedded default seccomp profile is valid")
    })
}

// ---- the profile format ---------------------------------------------------

/// A seccomp profile in Docker's format (moby `profiles/seccomp.Seccomp`).
/// Unknown fields are ignored, as Docker does; `null` reads as empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub default_action: Action,
    /// The errno of an `SCMP_ACT_ERRNO` default action (EPERM when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_errno_ret: Option<u32>,
    /// Legacy list of `SCMP_ARCH_*` names; exclusive with `arch_map`.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub architectures: Vec<String>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub arch_map: Vec<ArchMap>,
    #[serde(default, deserialize_with = "null_default")]
    pub syscalls: Vec<Syscall>,
    /// `SECCOMP_FILTER_FLAG_*` names.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub flags: Vec<String>,
    /// A seccomp agent's socket: not supported.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub listener_path: String,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub listener_metadata: String,
}

/// One `archMap` entry: a native architecture and the ones it also runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchMap {
    #[serde(rename = "architecture")]
    pub arch: String,
    #[serde(
        rename = "subArchitectures",
        default,
        deserialize_with = "null_default"
    )]
    pub sub_arches: Vec<String>,
}

/// One syscall rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Syscall {
    /// Deprecated single name; exclusive with `names`.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub name: String,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub names: Vec<String>,
    pub action: Action,
    /// The errno of `SCMP_ACT_ERRNO` (or the data of `SCMP_ACT_TRACE`);
    /// EPERM when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub args: Vec<Arg>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub comment: String,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Filter::is_empty"
    )]
    pub includes: Filter,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Filter::is_empty"
    )]
    pub excludes: Filter,
}

/// Conditions under which a rule applies (`includes`) or does not
/// (`excludes`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    /// Capability names (`CAP_SYS_ADMIN`), matched against the bounding set.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub caps: Vec<String>,
    /// Go architecture names (`amd64`, `arm64`, `x86`, `s390x`, ...).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub arches: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_kernel: Option<KernelVersion>,
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        self.caps.is_empty() && self.arches.is_empty() && self.min_kernel.is_none()
    }
}

/// One argument comparison.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Arg {
    /// Argument number, 0 to 5.
    pub index: u32,
    /// The value compared with; the mask for `SCMP_CMP_MASKED_EQ`.
    pub value: u64,
    /// The datum for `SCMP_CMP_MASKED_EQ`; unused otherwise.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub value_two: u64,
    pub op: Op,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// What the filter does with a matching syscall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Kills the thread (libseccomp's `SCMP_ACT_KILL`).
    #[serde(rename = "SCMP_ACT_KILL")]
    Kill,
    #[serde(rename = "SCMP_ACT_KILL_PROCESS")]
    KillProcess,
    #[serde(rename = "SCMP_ACT_KILL_THREAD")]
    KillThread,
    /// Sends SIGSYS.
    #[serde(rename = "SCMP_ACT_TRAP")]
    Trap,
    #[serde(rename = "SCMP_ACT_ERRNO")]
    Errno,
    #[serde(rename = "SCMP_ACT_TRACE")]
    Trace,
    #[serde(rename = "SCMP_ACT_ALLOW")]
    Allow,
    #[serde(rename = "SCMP_ACT_LOG")]
    Log,
    /// Hands the call to a seccomp agent: not supported.
    #[serde(rename = "SCMP_ACT_NOTIFY")]
    Notify,
}

/// An argument comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    #[serde(rename = "SCMP_CMP_NE")]
    NotEqual,
    #[serde(rename = "SCMP_CMP_LT")]
    LessThan,
    #[serde(rename = "SCMP_CMP_LE")]
    LessOrEqual,
    #[serde(rename = "SCMP_CMP_EQ")]
    EqualTo,
    #[serde(rename = "SCMP_CMP_GE")]
    GreaterOrEqual,
    #[serde(rename = "SCMP_CMP_GT")]
    GreaterThan,
    #[serde(rename = "SCMP_CMP_MASKED_EQ")]
    MaskedEqual,
}

/// A kernel version as profiles write it: `"4.8"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KernelVersion {
    pub major: u32,
    pub minor: u32,
}

impl KernelVersion {
    /// Reads `"MAJOR.MINOR"`, ignoring anything after the minor number
    /// (`"6.18.44-fc"` is 6.18).
    pub fn parse(s: &str) -> Option<KernelVersion> {
        let mut parts = s.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor: String = parts
            .next()?
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        Some(KernelVersion {
            major,
            minor: minor.parse().ok()?,
        })
    }

    /// The running kernel's version (`uname -r`).
    pub fn host() -> Result<KernelVersion> {
        let uts = nix::sys::utsname::uname().map_err(|e| Error::internal(format!("uname: {e}")))?;
        let release = uts.release().to_string_lossy();
        KernelVersion::parse(&release)
            .ok_or_else(|| Error::internal(format!("cannot read the kernel version {release:?}")))
    }
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl Serialize for KernelVersion {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for KernelVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        KernelVersion::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "invalid kernel version {s:?}, expected \"<major>.<minor>\""
            ))
        })
    }
}

/// `null` (or a missing field) as the type's default.
fn null_default<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Parses and validates a profile in Docker's JSON format. Errors are
/// `InvalidArgument` and say where (serde's line and column, or the rule's
/// index); an agent (`SCMP_ACT_NOTIFY`, `listenerPath`) is `NotImplemented`.
pub fn parse(json: &[u8]) -> Result<Profile> {
    let profile: Profile = serde_json::from_slice(json)
        .map_err(|e| Error::invalid(format!("seccomp profile: {e}")))?;
    profile.validate()?;
    Ok(profile)
}

impl Profile {
    /// Checks what serde cannot: exclusive fields, argument indexes, known
    /// architectures and flags, no seccomp agent.
    pub fn validate(&self) -> Result<()> {
        let invalid = |msg: String| Err(Error::invalid(format!("seccomp profile: {msg}")));
        if !self.architectures.is_empty() && !self.arch_map.is_empty() {
            return invalid(
                "both 'architectures' and 'archMap' are specified, use either 'architectures' or 'archMap'".into(),
            );
        }
        let arch_names = self.architectures.iter().chain(
            self.arch_map
                .iter()
                .flat_map(|m| std::iter::once(&m.arch).chain(&m.sub_arches)),
        );
        for name in arch_names {
            if scmp_arch(name).is_none() {
                return invalid(format!("unknown architecture {name:?}"));
            }
        }
        for flag in &self.flags {
            if filter_flag(flag).is_none() {
                return invalid(format!("seccomp flag {flag:?} is not known"));
            }
        }
        if !self.listener_path.is_empty() || self.default_action == Action::Notify {
            return Err(notify_unsupported());
        }
        for (i, rule) in self.syscalls.iter().enumerate() {
            if !rule.name.is_empty() && !rule.names.is_empty() {
                return invalid(format!(
                    "syscalls[{i}]: 'name' and 'names' were specified, use either 'name' or 'names'"
                ));
            }
            if rule.name.is_empty() && rule.names.is_empty()
                || rule.names.iter().any(String::is_empty)
            {
                return invalid(format!("syscalls[{i}]: a rule needs a syscall name"));
            }
            if rule.action == Action::Notify {
                return Err(notify_unsupported());
            }
            if let Some(arg) = rule.args.iter().find(|a| a.index > 5) {
                return invalid(format!(
                    "syscalls[{i}]: argument index {} is out of range (0 to 5)",
                    arg.index
                ));
            }
        }
        Ok(())
    }
}

fn notify_unsupported() -> Error {
    Error::not_implemented(
        "seccomp profile: SCMP_ACT_NOTIFY and listenerPath (a seccomp agent) are not supported by berth's built-in runtime",
    )
}

/// `SECCOMP_FILTER_FLAG_*` by name; TSYNC is accepted and unused, as in runc
/// (the init process is single-threaded).
fn filter_flag(name: &str) -> Option<u32> {
    match name {
        "SECCOMP_FILTER_FLAG_TSYNC" => Some(0),
        "SECCOMP_FILTER_FLAG_LOG" => Some(libc::SECCOMP_FILTER_FLAG_LOG as u32),
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => Some(libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW as u32),
        _ => None,
    }
}

// ---- architectures --------------------------------------------------------

/// An architecture a filter section can be built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    /// i386, the 32-bit ABI of x86_64 hosts.
    X86,
    Aarch64,
}

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
/// Set in the syscall number of x32 calls (which share x86_64's audit arch).
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

impl Arch {
    /// The architecture this program runs on, if filters can be built for it.
    pub fn native() -> Option<Arch> {
        if cfg!(target_arch = "x86_64") {
            Some(Arch::X86_64)
        } else if cfg!(target_arch = "aarch64") {
            Some(Arch::Aarch64)
        } else {
            None
        }
    }

    fn audit(self) -> u32 {
        match self {
            Arch::X86_64 => AUDIT_ARCH_X86_64,
            Arch::X86 => AUDIT_ARCH_I386,
            Arch::Aarch64 => AUDIT_ARCH_AARCH64,
        }
    }

    /// libseccomp's name, as `archMap` and `architectures` spell it.
    fn scmp_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "SCMP_ARCH_X86_64",
            Arch::X86 => "SCMP_ARCH_X86",
            Arch::Aarch64 => "SCMP_ARCH_AARCH64",
        }
    }

    /// Go's name, as `includes.arches` and `excludes.arches` spell it.
    fn go_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::X86 => "386",
            Arch::Aarch64 => "arm64",
        }
    }

    fn is_64bit(self) -> bool {
        self != Arch::X86
    }

    fn table(self) -> &'static [(&'static str, u32)] {
        match self {
            Arch::X86_64 => X86_64,
            Arch::X86 => X86,
            Arch::Aarch64 => AARCH64,
        }
    }

    /// The syscall number of `name` on this architecture.
    pub fn syscall_number(self, name: &str) -> Option<u32> {
        self.table()
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, nr)| nr)
    }
}

/// An `SCMP_ARCH_*` name: `None` when unknown, `Some(None)` when known but
/// not built by berth (its calls then hit the bad-architecture action).
fn scmp_arch(name: &str) -> Option<Option<Arch>> {
    match name {
        "SCMP_ARCH_X86_64" => Some(Some(Arch::X86_64)),
        "SCMP_ARCH_X86" => Some(Some(Arch::X86)),
        "SCMP_ARCH_AARCH64" => Some(Some(Arch::Aarch64)),
        "SCMP_ARCH_X32"
        | "SCMP_ARCH_ARM"
        | "SCMP_ARCH_MIPS"
        | "SCMP_ARCH_MIPS64"
        | "SCMP_ARCH_MIPS64N32"
        | "SCMP_ARCH_MIPSEL"
        | "SCMP_ARCH_MIPSEL64"
        | "SCMP_ARCH_MIPSEL64N32"
        | "SCMP_ARCH_PPC"
        | "SCMP_ARCH_PPC64"
        | "SCMP_ARCH_PPC64LE"
        | "SCMP_ARCH_S390"
        | "SCMP_ARCH_S390X"
        | "SCMP_ARCH_PARISC"
        | "SCMP_ARCH_PARISC64"
        | "SCMP_ARCH_RISCV64"
        | "SCMP_ARCH_LOONGARCH64"
        | "SCMP_ARCH_M68K"
        | "SCMP_ARCH_SH"
        | "SCMP_ARCH_SHEB" => Some(None),
        _ => None,
    }
}

/// What a filter is compiled for: the native architecture (its Go name
/// drives `includes.arches`; its `archMap` entry adds sections) and the
/// kernel version `minKernel` is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub arch: Arch,
    pub kernel: KernelVersion,
}

impl Target {
    /// This host.
    pub fn host() -> Result<Target> {
        let arch = Arch::native().ok_or_else(|| {
            Error::not_implemented("seccomp filters are built for x86_64 and aarch64 hosts only")
        })?;
        Ok(Target {
            arch,
            kernel: KernelVersion::host()?,
        })
    }
}

// ---- compiling --------------------------------------------------------------

/// A compiled filter, ready for [`install`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    insns: Vec<Insn>,
    flags: u32,
}

impl Program {
    /// Number of BPF instructions.
    pub fn len(&self) -> usize {
        self.insns.len()
    }

    /// The program as bytes: the flags (u32, native endian), then each
    /// `sock_filter`. berthd compiles once and hands the bytes to the shim.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + self.insns.len() * 8);
        out.extend_from_slice(&self.flags.to_ne_bytes());
        for i in &self.insns {
            out.extend_from_slice(&i.code.to_ne_bytes());
            out.push(i.jt);
            out.push(i.jf);
            out.extend_from_slice(&i.k.to_ne_bytes());
        }
        out
    }

    /// Reads [`Program::to_bytes`] back.
    pub fn from_bytes(b: &[u8]) -> Result<Program> {
        if b.len() < 4 || !(b.len() - 4).is_multiple_of(8) || b.len() > 4 + 8 * 4096 {
            return Err(Error::invalid("malformed compiled seccomp program"));
        }
        let flags = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
        let insns = b[4..]
            .chunks_exact(8)
            .map(|c| Insn {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect();
        Ok(Program { insns, flags })
    }

    pub fn is_empty(&self) -> bool {
        self.insns.is_empty()
    }
}

/// One classic-BPF instruction, laid out as the kernel's `struct sock_filter`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Insn {
    code: u16,
    jt: u8,
    jf: u8,
    k: u32,
}

const _: () = assert!(std::mem::size_of::<Insn>() == std::mem::size_of::<libc::sock_filter>());
const _: () = assert!(std::mem::align_of::<Insn>() == std::mem::align_of::<libc::sock_filter>());

// BPF opcodes (linux/bpf_common.h).
const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const ALU_AND_K: u16 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const JMP_JA: u16 = 0x05; // BPF_JMP | BPF_JA
const JMP_JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JMP_JGT_K: u16 = 0x25; // BPF_JMP | BPF_JGT | BPF_K
const JMP_JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
const RET_K: u16 = 0x06; // BPF_RET | BPF_K

/// The kernel's limit on a filter's length (BPF_MAXINSNS).
const MAX_INSNS: usize = 4096;

// struct seccomp_data offsets (little-endian architectures only).
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;
const fn data_arg_lo(index: u8) -> u32 {
    16 + 8 * index as u32
}
const fn data_arg_hi(index: u8) -> u32 {
    16 + 8 * index as u32 + 4
}

const RET_KILL_PROCESS: u32 = libc::SECCOMP_RET_KILL_PROCESS;

fn ret_errno(errno: i32) -> u32 {
    libc::SECCOMP_RET_ERRNO | (errno as u32 & libc::SECCOMP_RET_DATA)
}

fn stmt(code: u16, k: u32) -> Insn {
    Insn {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: usize, jf: usize) -> Result<Insn> {
    let fit = |n: usize| {
        u8::try_from(n)
            .map_err(|_| Error::invalid("seccomp profile: a rule is too long to compile"))
    };
    Ok(Insn {
        code,
        jt: fit(jt)?,
        jf: fit(jf)?,
        k,
    })
}

impl Action {
    /// The filter's return value for this action.
    fn ret(self, errno: Option<u32>) -> Result<u32> {
        let data = |v: Option<u32>| v.unwrap_or(libc::EPERM as u32) & libc::SECCOMP_RET_DATA;
        Ok(match self {
            Action::Kill | Action::KillThread => libc::SECCOMP_RET_KILL_THREAD,
            Action::KillProcess => libc::SECCOMP_RET_KILL_PROCESS,
            Action::Trap => libc::SECCOMP_RET_TRAP,
            Action::Errno => libc::SECCOMP_RET_ERRNO | data(errno),
            Action::Trace => libc::SECCOMP_RET_TRACE | data(errno),
            Action::Allow => libc::SECCOMP_RET_ALLOW,
            Action::Log => libc::SECCOMP_RET_LOG,
            Action::Notify => return Err(notify_unsupported()),
        })
    }

    /// runc's "allow" actions: no ENOSYS stub when the default is one.
    fn allows(self) -> bool {
        matches!(self, Action::Allow | Action::Log | Action::Trace)
    }
}

/// One argument test of a compiled rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cond {
    index: u8,
    op: Op,
    value: u64,
    value_two: u64,
}

/// One rule of the section being compiled.
struct Rule<'a> {
    names: Vec<&'a str>,
    ret: u32,
    conds: Vec<Cond>,
}

/// What one syscall number does on one architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Ret(u32),
    /// Conditional rules tried in order, then the default action.
    Rules(Vec<(Vec<Cond>, u32)>),
}

/// Compiles `profile` for this host, for a container whose bounding
/// capability set is `caps`: [`to_oci`], then [`compile_oci`].
pub fn compile(profile: &Profile, caps: &[Capability]) -> Result<Program> {
    compile_for(profile, caps, &Target::host()?)
}

/// [`compile`] for `target` (another architecture or kernel version than
/// this host's).
pub fn compile_for(profile: &Profile, caps: &[Capability], target: &Target) -> Result<Program> {
    compile_oci_for(&to_oci_for(profile, caps, target)?, target.arch)
}

/// Compiles an OCI `linux.seccomp` section for this host's architecture,
/// as runc loads it through libseccomp (see the module docs, steps 2 and
/// 3): what berth's own runtime installs for a container whose spec has
/// the section.
pub fn compile_oci(section: &LinuxSeccomp) -> Result<Program> {
    let native = Arch::native().ok_or_else(|| {
        Error::not_implemented("seccomp filters are built for x86_64 and aarch64 hosts only")
    })?;
    compile_oci_for(section, native)
}

/// [`compile_oci`] for a host whose native architecture is `native`.
pub fn compile_oci_for(section: &LinuxSeccomp, native: Arch) -> Result<Program> {
    let invalid = |msg: String| Error::invalid(format!("seccomp section: {msg}"));
    if section.listener_path().is_some() {
        return Err(notify_unsupported());
    }
    let default_action = Action::from_oci(section.default_action())?;
    let default_ret = default_action.ret(section.default_errno_ret())?;
    let mut flags = 0;
    for flag in section.flags().iter().flatten() {
        let name = oci_name(flag);
        flags |=
            filter_flag(&name).ok_or_else(|| invalid(format!("flag {name:?} is not known")))?;
    }
    let mut rules = Vec::new();
    for (i, call) in section.syscalls().iter().flatten().enumerate() {
        if call.names().is_empty() || call.names().iter().any(String::is_empty) {
            return Err(invalid(format!(
                "syscalls[{i}]: a rule needs a syscall name"
            )));
        }
        let conds = call
            .args()
            .iter()
            .flatten()
            .map(|a| match u8::try_from(a.index()) {
                Ok(index @ 0..=5) => Ok(Cond {
                    index,
                    op: Op::from_oci(a.op()),
                    value: a.value(),
                    value_two: a.value_two().unwrap_or(0),
                }),
                _ => Err(invalid(format!(
                    "syscalls[{i}]: argument index {} is out of range (0 to 5)",
                    a.index()
                ))),
            })
            .collect::<Result<Vec<_>>>()?;
        rules.push(Rule {
            names: call.names().iter().map(String::as_str).collect(),
            ret: Action::from_oci(call.action())?.ret(call.errno_ret())?,
            conds,
        });
    }

    // The native architecture always (libseccomp), then the section's.
    let mut arches = vec![native];
    for arch in section.architectures().iter().flatten() {
        let name = oci_name(arch);
        match scmp_arch(&name) {
            Some(Some(arch)) if !arches.contains(&arch) => arches.push(arch),
            // Known but not built: its calls hit the bad-architecture action.
            Some(_) => {}
            None if name == "SCMP_ARCH_NATIVE" => {}
            None => return Err(invalid(format!("unknown architecture {name:?}"))),
        }
    }

    let enosys_stub = !default_action.allows();
    let mut sections = Vec::with_capacity(arches.len());
    for &arch in &arches {
        sections.push((
            arch.audit(),
            section_code(arch, &rules, default_ret, enosys_stub)?,
        ));
    }
    let mut insns = vec![stmt(LD_W_ABS, DATA_ARCH)];
    insns.extend(dispatch_arch(&sections)?);
    if insns.len() > MAX_INSNS {
        return Err(Error::invalid(format!(
            "seccomp profile compiles to {} BPF instructions, more than the kernel's limit of {MAX_INSNS}",
            insns.len()
        )));
    }
    tracing::debug!(
        instructions = insns.len(),
        ?arches,
        "compiled seccomp filter"
    );
    Ok(Program { insns, flags })
}

/// The `SCMP_*`/`SECCOMP_*` name of an oci-spec enum (its serde name).
fn oci_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// Capability names as profiles spell them (`CAP_SYS_ADMIN`).
fn cap_names(caps: &[Capability]) -> Vec<String> {
    caps.iter().map(|c| c.to_string()).collect()
}

impl Syscall {
    /// Whether the rule survives moby's include/exclude step for a container
    /// with bounding capabilities `caps` on `target`.
    fn applies(&self, caps: &[String], target: &Target) -> bool {
        let has_cap = |name: &String| caps.contains(name);
        let arch = target.arch.go_name();
        let (inc, exc) = (&self.includes, &self.excludes);
        let excluded = exc.arches.iter().any(|a| a == arch)
            || exc.caps.iter().any(has_cap)
            || exc.min_kernel.is_some_and(|min| target.kernel >= min);
        let included = (inc.arches.is_empty() || inc.arches.iter().any(|a| a == arch))
            && inc.caps.iter().all(has_cap)
            && inc.min_kernel.is_none_or(|min| target.kernel >= min);
        included && !excluded
    }

    /// `names`, or the deprecated single `name`.
    fn all_names(&self) -> Vec<&str> {
        if self.name.is_empty() {
            self.names.iter().map(String::as_str).collect()
        } else {
            vec![self.name.as_str()]
        }
    }
}

/// The filter section of one architecture (starts by loading the syscall
/// number; every path ends in a return).
fn section_code(
    arch: Arch,
    rules: &[Rule],
    default_ret: u32,
    enosys_stub: bool,
) -> Result<Vec<Insn>> {
    let mut by_nr: BTreeMap<u32, Outcome> = BTreeMap::new();
    let mut largest: Option<u32> = None;
    for rule in rules {
        for name in &rule.names {
            let Some(nr) = arch.syscall_number(name) else {
                continue; // unknown on this architecture: skipped, as libseccomp does
            };
            largest = largest.max(Some(nr));
            if rule.ret == default_ret {
                continue; // redundant, as runc skips it
            }
            let outcome = by_nr
                .entry(nr)
                .or_insert_with(|| Outcome::Rules(Vec::new()));
            match outcome {
                Outcome::Ret(_) => {} // an unconditional rule already decides
                Outcome::Rules(_) if rule.conds.is_empty() => *outcome = Outcome::Ret(rule.ret),
                Outcome::Rules(rules) => {
                    rules.extend(conditions(&rule.conds).into_iter().map(|c| (c, rule.ret)))
                }
            }
        }
    }

    // Ranges of syscall numbers with one outcome, covering 0..=u32::MAX.
    let mut ranges: Vec<(u32, Outcome)> = Vec::new();
    let mut push = |start: u32, outcome: Outcome| {
        if let Some((_, last @ Outcome::Ret(_))) = ranges.last()
            && *last == outcome
        {
            return;
        }
        ranges.push((start, outcome));
    };
    let stub_above = if enosys_stub { largest } else { None };
    let end = stub_above
        .or(by_nr.keys().next_back().copied())
        .unwrap_or(0);
    for nr in 0..=end {
        let outcome = by_nr.get(&nr).cloned().unwrap_or(Outcome::Ret(default_ret));
        push(nr, outcome);
    }
    if end < X32_SYSCALL_BIT - 1 {
        let beyond = if stub_above.is_some() {
            ret_errno(libc::ENOSYS)
        } else {
            default_ret
        };
        push(end + 1, Outcome::Ret(beyond));
    }
    if arch == Arch::X86_64 {
        // x32 calls: not built, so treated like an unknown architecture.
        push(X32_SYSCALL_BIT, Outcome::Ret(RET_KILL_PROCESS));
    }

    let mut code = vec![stmt(LD_W_ABS, DATA_NR)];
    code.extend(search(&ranges, default_ret, arch.is_64bit())?);
    Ok(code)
}

/// runc's rule splitting: all conditions ANDed in one rule, unless two test
/// the same argument; then each condition is a rule of its own.
fn conditions(conds: &[Cond]) -> Vec<Vec<Cond>> {
    let repeated = conds
        .iter()
        .enumerate()
        .any(|(i, c)| conds[..i].iter().any(|d| d.index == c.index));
    if repeated {
        conds.iter().map(|c| vec![*c]).collect()
    } else {
        vec![conds.to_vec()]
    }
}

/// Binary search over `ranges` (sorted by start; the accumulator holds the
/// syscall number).
fn search(ranges: &[(u32, Outcome)], default_ret: u32, is64: bool) -> Result<Vec<Insn>> {
    match ranges {
        [] => Ok(vec![stmt(RET_K, default_ret)]),
        [(_, outcome)] => leaf(outcome, default_ret, is64),
        _ => {
            let mid = ranges.len() / 2;
            let low = search(&ranges[..mid], default_ret, is64)?;
            let high = search(&ranges[mid..], default_ret, is64)?;
            branch(JMP_JGE_K, ranges[mid].0, high, low)
        }
    }
}

/// `if (A <op> k) then_ else else_`, both self-contained (ending in returns),
/// with a long jump where a conditional one cannot reach.
fn branch(op: u16, k: u32, then_: Vec<Insn>, else_: Vec<Insn>) -> Result<Vec<Insn>> {
    let mut code = Vec::with_capacity(then_.len() + else_.len() + 2);
    if then_.len() <= u8::MAX as usize {
        code.push(jump(op, k, 0, then_.len())?);
        code.extend(then_);
        code.extend(else_);
    } else if else_.len() <= u8::MAX as usize {
        code.push(jump(op, k, else_.len(), 0)?);
        code.extend(else_);
        code.extend(then_);
    } else {
        code.push(jump(op, k, 1, 0)?);
        code.push(stmt(JMP_JA, then_.len() as u32));
        code.extend(then_);
        code.extend(else_);
    }
    Ok(code)
}

/// The architecture check: one section per audit arch, else kill.
fn dispatch_arch(sections: &[(u32, Vec<Insn>)]) -> Result<Vec<Insn>> {
    match sections {
        [] => Ok(vec![stmt(RET_K, RET_KILL_PROCESS)]),
        [(audit, code), rest @ ..] => branch(JMP_JEQ_K, *audit, code.clone(), dispatch_arch(rest)?),
    }
}

fn leaf(outcome: &Outcome, default_ret: u32, is64: bool) -> Result<Vec<Insn>> {
    let rules = match outcome {
        Outcome::Ret(ret) => return Ok(vec![stmt(RET_K, *ret)]),
        Outcome::Rules(rules) => rules,
    };
    // Built back to front: each rule falls through to the next on a miss.
    let mut code = vec![stmt(RET_K, default_ret)];
    for (conds, ret) in rules.iter().rev() {
        let mut block = vec![stmt(RET_K, *ret)];
        for cond in conds.iter().rev() {
            // On a miss, skip the rest of this rule.
            let mut test = condition(cond, block.len(), is64)?;
            test.extend(block);
            block = test;
        }
        block.extend(code);
        code = block;
    }
    Ok(code)
}

/// The test of one condition: falls through when it holds, jumps `miss`
/// instructions past its own end when it does not.
fn condition(c: &Cond, miss: usize, is64: bool) -> Result<Vec<Insn>> {
    let (lo, hi) = (data_arg_lo(c.index), data_arg_hi(c.index));
    let (v_lo, v_hi) = (c.value as u32, (c.value >> 32) as u32);
    let ld = |offset| stmt(LD_W_ABS, offset);
    if !is64 {
        // 32-bit architecture: the low word only (libseccomp truncates too).
        return Ok(match c.op {
            Op::EqualTo => vec![ld(lo), jump(JMP_JEQ_K, v_lo, 0, miss)?],
            Op::NotEqual => vec![ld(lo), jump(JMP_JEQ_K, v_lo, miss, 0)?],
            Op::GreaterThan => vec![ld(lo), jump(JMP_JGT_K, v_lo, 0, miss)?],
            Op::GreaterOrEqual => vec![ld(lo), jump(JMP_JGE_K, v_lo, 0, miss)?],
            Op::LessThan => vec![ld(lo), jump(JMP_JGE_K, v_lo, miss, 0)?],
            Op::LessOrEqual => vec![ld(lo), jump(JMP_JGT_K, v_lo, miss, 0)?],
            Op::MaskedEqual => vec![
                ld(lo),
                stmt(ALU_AND_K, v_lo),
                jump(JMP_JEQ_K, c.value_two as u32, 0, miss)?,
            ],
        });
    }
    // 64-bit: high word first, then the low word.
    Ok(match c.op {
        Op::EqualTo => vec![
            ld(hi),
            jump(JMP_JEQ_K, v_hi, 0, miss + 2)?,
            ld(lo),
            jump(JMP_JEQ_K, v_lo, 0, miss)?,
        ],
        Op::NotEqual => vec![
            ld(hi),
            jump(JMP_JEQ_K, v_hi, 0, 2)?,
            ld(lo),
            jump(JMP_JEQ_K, v_lo, miss, 0)?,
        ],
        Op::GreaterThan | Op::GreaterOrEqual => vec![
            ld(hi),
            jump(JMP_JGT_K, v_hi, 3, 0)?,
            jump(JMP_JEQ_K, v_hi, 0, miss + 2)?,
            ld(lo),
            jump(
                if c.op == Op::GreaterThan {
                    JMP_JGT_K
                } else {
                    JMP_JGE_K
                },
                v_lo,
                0,
                miss,
            )?,
        ],
        // a < v is !(a >= v); a <= v is !(a > v).
        Op::LessThan | Op::LessOrEqual => vec![
            ld(hi),
            jump(JMP_JGT_K, v_hi, miss + 3, 0)?,
            jump(JMP_JEQ_K, v_hi, 0, 2)?,
            ld(lo),
            jump(
                if c.op == Op::LessThan {
                    JMP_JGE_K
                } else {
                    JMP_JGT_K
                },
                v_lo,
                miss,
                0,
            )?,
        ],
        Op::MaskedEqual => {
            let (d_lo, d_hi) = (c.value_two as u32, (c.value_two >> 32) as u32);
            vec![
                ld(hi),
                stmt(ALU_AND_K, v_hi),
                jump(JMP_JEQ_K, d_hi, 0, miss + 3)?,
                ld(lo),
                stmt(ALU_AND_K, v_lo),
                jump(JMP_JEQ_K, d_lo, 0, miss)?,
            ]
        }
    })
}

// ---- the OCI spec's linux.seccomp ------------------------------------------

/// The OCI runtime spec's `linux.seccomp` for `profile`, as moby's
/// `setupSeccomp` writes it for runc or crun: for a container whose bounding
/// capability set is `caps`, on this host's architecture and kernel.
pub fn to_oci(profile: &Profile, caps: &[Capability]) -> Result<LinuxSeccomp> {
    to_oci_for(profile, caps, &Target::host()?)
}

/// [`to_oci`] for `target` (another architecture or kernel version than
/// this host's).
///
/// Rules are evaluated as for [`compile`] (module docs, step 1) and copied
/// with their names (the deprecated `name` becomes `names`), action,
/// `errnoRet` and arguments; the default action, `defaultErrnoRet` and
/// `flags` are kept. The architectures are the legacy `architectures` list,
/// or the `archMap` entry of the native architecture with its
/// sub-architectures (none when the map has no entry for it: the runtime
/// then filters the native architecture only). What the runtime does with
/// it (redundant rules, unknown names, ENOSYS above the newest syscall) is
/// the runtime's business.
pub fn to_oci_for(profile: &Profile, caps: &[Capability], target: &Target) -> Result<LinuxSeccomp> {
    profile.validate()?;
    let native = target.arch.scmp_name();
    let arch_names: Vec<&str> = if profile.arch_map.is_empty() {
        profile.architectures.iter().map(String::as_str).collect()
    } else {
        profile
            .arch_map
            .iter()
            .filter(|m| m.arch == native)
            .flat_map(|m| std::iter::once(&m.arch).chain(&m.sub_arches))
            .map(String::as_str)
            .collect()
    };
    let architectures = arch_names
        .into_iter()
        .map(|name| oci_enum::<OciArch>("architecture", name))
        .collect::<Result<Vec<_>>>()?;
    let flags = profile
        .flags
        .iter()
        .map(|flag| oci_enum::<LinuxSeccompFilterFlag>("flag", flag))
        .collect::<Result<Vec<_>>>()?;

    let cap_names = cap_names(caps);
    let mut syscalls = Vec::new();
    for rule in &profile.syscalls {
        if !rule.applies(&cap_names, target) {
            continue;
        }
        let args = rule
            .args
            .iter()
            .map(|a| {
                let arg = LinuxSeccompArgBuilder::default()
                    .index(a.index as usize)
                    .value(a.value)
                    .op(a.op.to_oci());
                // Go's `omitempty`, as moby writes it.
                let arg = if a.value_two != 0 {
                    arg.value_two(a.value_two)
                } else {
                    arg
                };
                arg.build()
                    .map_err(|e| Error::internal(format!("seccomp argument: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut call = LinuxSyscall::default();
        call.set_names(rule.all_names().into_iter().map(str::to_owned).collect());
        call.set_action(rule.action.to_oci()?);
        call.set_errno_ret(rule.errno_ret);
        call.set_args((!args.is_empty()).then_some(args));
        syscalls.push(call);
    }

    let mut oci = LinuxSeccomp::default();
    oci.set_default_action(profile.default_action.to_oci()?);
    oci.set_default_errno_ret(profile.default_errno_ret);
    oci.set_architectures((!architectures.is_empty()).then_some(architectures));
    oci.set_flags((!flags.is_empty()).then_some(flags));
    oci.set_syscalls((!syscalls.is_empty()).then_some(syscalls));
    Ok(oci)
}

/// An oci-spec enum from the `SCMP_*`/`SECCOMP_*` name both formats use.
fn oci_enum<T: serde::de::DeserializeOwned>(what: &str, name: &str) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(name.to_owned()))
        .map_err(|_| Error::invalid(format!("seccomp profile: {what} {name:?} is not known")))
}

impl Action {
    fn to_oci(self) -> Result<LinuxSeccompAction> {
        Ok(match self {
            Action::Kill => LinuxSeccompAction::ScmpActKill,
            Action::KillProcess => LinuxSeccompAction::ScmpActKillProcess,
            Action::KillThread => LinuxSeccompAction::ScmpActKillThread,
            Action::Trap => LinuxSeccompAction::ScmpActTrap,
            Action::Errno => LinuxSeccompAction::ScmpActErrno,
            Action::Trace => LinuxSeccompAction::ScmpActTrace,
            Action::Allow => LinuxSeccompAction::ScmpActAllow,
            Action::Log => LinuxSeccompAction::ScmpActLog,
            Action::Notify => return Err(notify_unsupported()),
        })
    }
}

impl Action {
    fn from_oci(action: LinuxSeccompAction) -> Result<Action> {
        Ok(match action {
            LinuxSeccompAction::ScmpActKill => Action::Kill,
            LinuxSeccompAction::ScmpActKillProcess => Action::KillProcess,
            LinuxSeccompAction::ScmpActKillThread => Action::KillThread,
            LinuxSeccompAction::ScmpActTrap => Action::Trap,
            LinuxSeccompAction::ScmpActErrno => Action::Errno,
            LinuxSeccompAction::ScmpActTrace => Action::Trace,
            LinuxSeccompAction::ScmpActAllow => Action::Allow,
            LinuxSeccompAction::ScmpActLog => Action::Log,
            LinuxSeccompAction::ScmpActNotify => return Err(notify_unsupported()),
        })
    }
}

impl Op {
    fn from_oci(op: LinuxSeccompOperator) -> Op {
        match op {
            LinuxSeccompOperator::ScmpCmpNe => Op::NotEqual,
            LinuxSeccompOperator::ScmpCmpLt => Op::LessThan,
            LinuxSeccompOperator::ScmpCmpLe => Op::LessOrEqual,
            LinuxSeccompOperator::ScmpCmpEq => Op::EqualTo,
            LinuxSeccompOperator::ScmpCmpGe => Op::GreaterOrEqual,
            LinuxSeccompOperator::ScmpCmpGt => Op::GreaterThan,
            LinuxSeccompOperator::ScmpCmpMaskedEq => Op::MaskedEqual,
        }
    }

    fn to_oci(self) -> LinuxSeccompOperator {
        match self {
            Op::NotEqual => LinuxSeccompOperator::ScmpCmpNe,
            Op::LessThan => LinuxSeccompOperator::ScmpCmpLt,
            Op::LessOrEqual => LinuxSeccompOperator::ScmpCmpLe,
            Op::EqualTo => LinuxSeccompOperator::ScmpCmpEq,
            Op::GreaterOrEqual => LinuxSeccompOperator::ScmpCmpGe,
            Op::GreaterThan => LinuxSeccompOperator::ScmpCmpGt,
            Op::MaskedEqual => LinuxSeccompOperator::ScmpCmpMaskedEq,
        }
    }
}

// ---- installing -------------------------------------------------------------

/// Sets no-new-privileges on the calling thread (`prctl(PR_SET_NO_NEW_PRIVS)`),
/// which lets [`install`] work without CAP_SYS_ADMIN. Allocates nothing.
pub fn set_no_new_privs() -> io::Result<()> {
    // SAFETY: integer arguments only.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_NO_NEW_PRIVS,
            1 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Loads `program` into the calling thread with
/// `seccomp(SECCOMP_SET_MODE_FILTER)` (falling back to
/// `prctl(PR_SET_SECCOMP)` on kernels without `seccomp(2)`). Needs
/// no-new-privileges or CAP_SYS_ADMIN (else EACCES). Allocates nothing, so
/// it is safe right after `clone`/`fork` from a multi-threaded parent.
pub fn install(program: &Program) -> io::Result<()> {
    let fprog = libc::sock_fprog {
        len: program.insns.len() as libc::c_ushort,
        // Insn has sock_filter's layout (checked above); the kernel only reads.
        filter: program.insns.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: fprog points at program.insns, which outlives the call; the
    // kernel copies the filter.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER as libc::c_ulong,
            libc::c_ulong::from(program.flags),
            &fprog as *const libc::sock_fprog,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::ENOSYS) || program.flags != 0 {
        return Err(err);
    }
    // SAFETY: as above.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER as libc::c_ulong,
            &fprog as *const libc::sock_fprog,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

// ---- syscall tables ---------------------------------------------------------
//
// Name → number for each architecture this module builds sections for.
// x86_64 and i386: generated from Linux 6.1's asm/unistd_64.h and
// asm/unistd_32.h (linux-libc-dev 6.1), extended from
// arch/x86/entry/syscalls/syscall_{64,32}.tbl up to Linux 6.18 (uretprobe
// 335 and uprobe 336 on x86_64; 451 cachestat to 470 listns, numbered alike
// on every architecture since 424). The x86_64 table agrees with
// seccompiler 0.5's (Linux 6.12) for every name both have. aarch64: from
// seccompiler 0.5's table (Linux 6.12), extended with 463–470.

#[rustfmt::skip]
static X86_64: &[(&str, u32)] = &[
    ("read", 0), ("write", 1), ("open", 2), ("close", 3), ("stat", 4), ("fstat", 5), ("lstat", 6),
    ("poll", 7), ("lseek", 8), ("mmap", 9), ("mprotect", 10), ("munmap", 11), ("brk", 12),
    ("rt_sigaction", 13), ("rt_sigprocmask", 14), ("rt_sigreturn", 15), ("ioctl", 16),
    ("pread64", 17), ("pwrite64", 18), ("readv", 19), ("writev", 20), ("access", 21), ("pipe", 22),
    ("select", 23), ("sched_yield", 24), ("mremap", 25), ("msync", 26), ("mincore", 27),
    ("madvise", 28), ("shmget", 29), ("shmat", 30), ("shmctl", 31), ("dup", 32), ("dup2", 33),
    ("pause", 34), ("nanosleep", 35), ("getitimer", 36), ("alarm", 37), ("setitimer", 38),
    ("getpid", 39), ("sendfile", 40), ("socket", 41), ("connect", 42), ("accept", 43),
    ("sendto", 44), ("recvfrom", 45), ("sendmsg", 46), ("recvmsg", 47), ("shutdown", 48),
    ("bind", 49), ("listen", 50), ("getsockname", 51), ("getpeername", 52), ("socketpair", 53),
    ("setsockopt", 54), ("getsockopt", 55), ("clone", 56), ("fork", 57), ("vfork", 58),
    ("execve", 59), ("exit", 60), ("wait4", 61), ("kill", 62), ("uname", 63), ("semget", 64),
    ("semop", 65), ("semctl", 66), ("shmdt", 67), ("msgget", 68), ("msgsnd", 69), ("msgrcv", 70),
    ("msgctl", 71), ("fcntl", 72), ("flock", 73), ("fsync", 74), ("fdatasync", 75),
    ("truncate", 76), ("ftruncate", 77), ("getdents", 78), ("getcwd", 79), ("chdir", 80),
    ("fchdir", 81), ("rename", 82), ("mkdir", 83), ("rmdir", 84), ("creat", 85), ("link", 86),
    ("unlink", 87), ("symlink", 88), ("readlink", 89), ("chmod", 90), ("fchmod", 91),
    ("chown", 92), ("fchown", 93), ("lchown", 94), ("umask", 95), ("gettimeofday", 96),
    ("getrlimit", 97), ("getrusage", 98), ("sysinfo", 99), ("times", 100), ("ptrace", 101),
    ("getuid", 102), ("syslog", 103), ("getgid", 104), ("setuid", 105), ("setgid", 106),
    ("geteuid", 107), ("getegid", 108), ("setpgid", 109), ("getppid", 110), ("getpgrp", 111),
    ("setsid", 112), ("setreuid", 113), ("setregid", 114), ("getgroups", 115), ("setgroups", 116),
    ("setresuid", 117), ("getresuid", 118), ("setresgid", 119), ("getresgid", 120),
    ("getpgid", 121), ("setfsuid", 122), ("setfsgid", 123), ("getsid", 124), ("capget", 125),
    ("capset", 126), ("rt_sigpending", 127), ("rt_sigtimedwait", 128), ("rt_sigqueueinfo", 129),
    ("rt_sigsuspend", 130), ("sigaltstack", 131), ("utime", 132), ("mknod", 133), ("uselib", 134),
    ("personality", 135), ("ustat", 136), ("statfs", 137), ("fstatfs", 138), ("sysfs", 139),
    ("getpriority", 140), ("setpriority", 141), ("sched_setparam", 142), ("sched_getparam", 143),
    ("sched_setscheduler", 144), ("sched_getscheduler", 145), ("sched_get_priority_max", 146),
    ("sched_get_priority_min", 147), ("sched_rr_get_interval", 148), ("mlock", 149),
    ("munlock", 150), ("mlockall", 151), ("munlockall", 152), ("vhangup", 153),
    ("modify_ldt", 154), ("pivot_root", 155), ("_sysctl", 156), ("prctl", 157),
    ("arch_prctl", 158), ("adjtimex", 159), ("setrlimit", 160), ("chroot", 161), ("sync", 162),
    ("acct", 163), ("settimeofday", 164), ("mount", 165), ("umount2", 166), ("swapon", 167),
    ("swapoff", 168), ("reboot", 169), ("sethostname", 170), ("setdomainname", 171), ("iopl", 172),
    ("ioperm", 173), ("create_module", 174), ("init_module", 175), ("delete_module", 176),
    ("get_kernel_syms", 177), ("query_module", 178), ("quotactl", 179), ("nfsservctl", 180),
    ("getpmsg", 181), ("putpmsg", 182), ("afs_syscall", 183), ("tuxcall", 184), ("security", 185),
    ("gettid", 186), ("readahead", 187), ("setxattr", 188), ("lsetxattr", 189), ("fsetxattr", 190),
    ("getxattr", 191), ("lgetxattr", 192), ("fgetxattr", 193), ("listxattr", 194),
    ("llistxattr", 195), ("flistxattr", 196), ("removexattr", 197), ("lremovexattr", 198),
    ("fremovexattr", 199), ("tkill", 200), ("time", 201), ("futex", 202),
    ("sched_setaffinity", 203), ("sched_getaffinity", 204), ("set_thread_area", 205),
    ("io_setup", 206), ("io_destroy", 207), ("io_getevents", 208), ("io_submit", 209),
    ("io_cancel", 210), ("get_thread_area", 211), ("lookup_dcookie", 212), ("epoll_create", 213),
    ("epoll_ctl_old", 214), ("epoll_wait_old", 215), ("remap_file_pages", 216),
    ("getdents64", 217), ("set_tid_address", 218), ("restart_syscall", 219), ("semtimedop", 220),
    ("fadvise64", 221), ("timer_create", 222), ("timer_settime", 223), ("timer_gettime", 224),
    ("timer_getoverrun", 225), ("timer_delete", 226), ("clock_settime", 227),
    ("clock_gettime", 228), ("clock_getres", 229), ("clock_nanosleep", 230), ("exit_group", 231),
    ("epoll_wait", 232), ("epoll_ctl", 233), ("tgkill", 234), ("utimes", 235), ("vserver", 236),
    ("mbind", 237), ("set_mempolicy", 238), ("get_mempolicy", 239), ("mq_open", 240),
    ("mq_unlink", 241), ("mq_timedsend", 242), ("mq_timedreceive", 243), ("mq_notify", 244),
    ("mq_getsetattr", 245), ("kexec_load", 246), ("waitid", 247), ("add_key", 248),
    ("request_key", 249), ("keyctl", 250), ("ioprio_set", 251), ("ioprio_get", 252),
    ("inotify_init", 253), ("inotify_add_watch", 254), ("inotify_rm_watch", 255),
    ("migrate_pages", 256), ("openat", 257), ("mkdirat", 258), ("mknodat", 259), ("fchownat", 260),
    ("futimesat", 261), ("newfstatat", 262), ("unlinkat", 263), ("renameat", 264), ("linkat", 265),
    ("symlinkat", 266), ("readlinkat", 267), ("fchmodat", 268), ("faccessat", 269),
    ("pselect6", 270), ("ppoll", 271), ("unshare", 272), ("set_robust_list", 273),
    ("get_robust_list", 274), ("splice", 275), ("tee", 276), ("sync_file_range", 277),
    ("vmsplice", 278), ("move_pages", 279), ("utimensat", 280), ("epoll_pwait", 281),
    ("signalfd", 282), ("timerfd_create", 283), ("eventfd", 284), ("fallocate", 285),
    ("timerfd_settime", 286), ("timerfd_gettime", 287), ("accept4", 288), ("signalfd4", 289),
    ("eventfd2", 290), ("epoll_create1", 291), ("dup3", 292), ("pipe2", 293),
    ("inotify_init1", 294), ("preadv", 295), ("pwritev", 296), ("rt_tgsigqueueinfo", 297),
    ("perf_event_open", 298), ("recvmmsg", 299), ("fanotify_init", 300), ("fanotify_mark", 301),
    ("prlimit64", 302), ("name_to_handle_at", 303), ("open_by_handle_at", 304),
    ("clock_adjtime", 305), ("syncfs", 306), ("sendmmsg", 307), ("setns", 308), ("getcpu", 309),
    ("process_vm_readv", 310), ("process_vm_writev", 311), ("kcmp", 312), ("finit_module", 313),
    ("sched_setattr", 314), ("sched_getattr", 315), ("renameat2", 316), ("seccomp", 317),
    ("getrandom", 318), ("memfd_create", 319), ("kexec_file_load", 320), ("bpf", 321),
    ("execveat", 322), ("userfaultfd", 323), ("membarrier", 324), ("mlock2", 325),
    ("copy_file_range", 326), ("preadv2", 327), ("pwritev2", 328), ("pkey_mprotect", 329),
    ("pkey_alloc", 330), ("pkey_free", 331), ("statx", 332), ("io_pgetevents", 333), ("rseq", 334),
    ("uretprobe", 335), ("uprobe", 336), ("pidfd_send_signal", 424), ("io_uring_setup", 425),
    ("io_uring_enter", 426), ("io_uring_register", 427), ("open_tree", 428), ("move_mount", 429),
    ("fsopen", 430), ("fsconfig", 431), ("fsmount", 432), ("fspick", 433), ("pidfd_open", 434),
    ("clone3", 435), ("close_range", 436), ("openat2", 437), ("pidfd_getfd", 438),
    ("faccessat2", 439), ("process_madvise", 440), ("epoll_pwait2", 441), ("mount_setattr", 442),
    ("quotactl_fd", 443), ("landlock_create_ruleset", 444), ("landlock_add_rule", 445),
    ("landlock_restrict_self", 446), ("memfd_secret", 447), ("process_mrelease", 448),
    ("futex_waitv", 449), ("set_mempolicy_home_node", 450), ("cachestat", 451), ("fchmodat2", 452),
    ("map_shadow_stack", 453), ("futex_wake", 454), ("futex_wait", 455), ("futex_requeue", 456),
    ("statmount", 457), ("listmount", 458), ("lsm_get_self_attr", 459), ("lsm_set_self_attr", 460),
    ("lsm_list_modules", 461), ("mseal", 462), ("setxattrat", 463), ("getxattrat", 464),
    ("listxattrat", 465), ("removexattrat", 466), ("open_tree_attr", 467), ("file_getattr", 468),
    ("file_setattr", 469), ("listns", 470),
];

#[rustfmt::skip]
static X86: &[(&str, u32)] = &[
    ("restart_syscall", 0), ("exit", 1), ("fork", 2), ("read", 3), ("write", 4), ("open", 5),
    ("close", 6), ("waitpid", 7), ("creat", 8), ("link", 9), ("unlink", 10), ("execve", 11),
    ("chdir", 12), ("time", 13), ("mknod", 14), ("chmod", 15), ("lchown", 16), ("break", 17),
    ("oldstat", 18), ("lseek", 19), ("getpid", 20), ("mount", 21), ("umount", 22), ("setuid", 23),
    ("getuid", 24), ("stime", 25), ("ptrace", 26), ("alarm", 27), ("oldfstat", 28), ("pause", 29),
    ("utime", 30), ("stty", 31), ("gtty", 32), ("access", 33), ("nice", 34), ("ftime", 35),
    ("sync", 36), ("kill", 37), ("rename", 38), ("mkdir", 39), ("rmdir", 40), ("dup", 41),
    ("pipe", 42), ("times", 43), ("prof", 44), ("brk", 45), ("setgid", 46), ("getgid", 47),
    ("signal", 48), ("geteuid", 49), ("getegid", 50), ("acct", 51), ("umount2", 52), ("lock", 53),
    ("ioctl", 54), ("fcntl", 55), ("mpx", 56), ("setpgid", 57), ("ulimit", 58),
    ("oldolduname", 59), ("umask", 60), ("chroot", 61), ("ustat", 62), ("dup2", 63),
    ("getppid", 64), ("getpgrp", 65), ("setsid", 66), ("sigaction", 67), ("sgetmask", 68),
    ("ssetmask", 69), ("setreuid", 70), ("setregid", 71), ("sigsuspend", 72), ("sigpending", 73),
    ("sethostname", 74), ("setrlimit", 75), ("getrlimit", 76), ("getrusage", 77),
    ("gettimeofday", 78), ("settimeofday", 79), ("getgroups", 80), ("setgroups", 81),
    ("select", 82), ("symlink", 83), ("oldlstat", 84), ("readlink", 85), ("uselib", 86),
    ("swapon", 87), ("reboot", 88), ("readdir", 89), ("mmap", 90), ("munmap", 91),
    ("truncate", 92), ("ftruncate", 93), ("fchmod", 94), ("fchown", 95), ("getpriority", 96),
    ("setpriority", 97), ("profil", 98), ("statfs", 99), ("fstatfs", 100), ("ioperm", 101),
    ("socketcall", 102), ("syslog", 103), ("setitimer", 104), ("getitimer", 105), ("stat", 106),
    ("lstat", 107), ("fstat", 108), ("olduname", 109), ("iopl", 110), ("vhangup", 111),
    ("idle", 112), ("vm86old", 113), ("wait4", 114), ("swapoff", 115), ("sysinfo", 116),
    ("ipc", 117), ("fsync", 118), ("sigreturn", 119), ("clone", 120), ("setdomainname", 121),
    ("uname", 122), ("modify_ldt", 123), ("adjtimex", 124), ("mprotect", 125),
    ("sigprocmask", 126), ("create_module", 127), ("init_module", 128), ("delete_module", 129),
    ("get_kernel_syms", 130), ("quotactl", 131), ("getpgid", 132), ("fchdir", 133),
    ("bdflush", 134), ("sysfs", 135), ("personality", 136), ("afs_syscall", 137),
    ("setfsuid", 138), ("setfsgid", 139), ("_llseek", 140), ("getdents", 141), ("_newselect", 142),
    ("flock", 143), ("msync", 144), ("readv", 145), ("writev", 146), ("getsid", 147),
    ("fdatasync", 148), ("_sysctl", 149), ("mlock", 150), ("munlock", 151), ("mlockall", 152),
    ("munlockall", 153), ("sched_setparam", 154), ("sched_getparam", 155),
    ("sched_setscheduler", 156), ("sched_getscheduler", 157), ("sched_yield", 158),
    ("sched_get_priority_max", 159), ("sched_get_priority_min", 160),
    ("sched_rr_get_interval", 161), ("nanosleep", 162), ("mremap", 163), ("setresuid", 164),
    ("getresuid", 165), ("vm86", 166), ("query_module", 167), ("poll", 168), ("nfsservctl", 169),
    ("setresgid", 170), ("getresgid", 171), ("prctl", 172), ("rt_sigreturn", 173),
    ("rt_sigaction", 174), ("rt_sigprocmask", 175), ("rt_sigpending", 176),
    ("rt_sigtimedwait", 177), ("rt_sigqueueinfo", 178), ("rt_sigsuspend", 179), ("pread64", 180),
    ("pwrite64", 181), ("chown", 182), ("getcwd", 183), ("capget", 184), ("capset", 185),
    ("sigaltstack", 186), ("sendfile", 187), ("getpmsg", 188), ("putpmsg", 189), ("vfork", 190),
    ("ugetrlimit", 191), ("mmap2", 192), ("truncate64", 193), ("ftruncate64", 194),
    ("stat64", 195), ("lstat64", 196), ("fstat64", 197), ("lchown32", 198), ("getuid32", 199),
    ("getgid32", 200), ("geteuid32", 201), ("getegid32", 202), ("setreuid32", 203),
    ("setregid32", 204), ("getgroups32", 205), ("setgroups32", 206), ("fchown32", 207),
    ("setresuid32", 208), ("getresuid32", 209), ("setresgid32", 210), ("getresgid32", 211),
    ("chown32", 212), ("setuid32", 213), ("setgid32", 214), ("setfsuid32", 215),
    ("setfsgid32", 216), ("pivot_root", 217), ("mincore", 218), ("madvise", 219),
    ("getdents64", 220), ("fcntl64", 221), ("gettid", 224), ("readahead", 225), ("setxattr", 226),
    ("lsetxattr", 227), ("fsetxattr", 228), ("getxattr", 229), ("lgetxattr", 230),
    ("fgetxattr", 231), ("listxattr", 232), ("llistxattr", 233), ("flistxattr", 234),
    ("removexattr", 235), ("lremovexattr", 236), ("fremovexattr", 237), ("tkill", 238),
    ("sendfile64", 239), ("futex", 240), ("sched_setaffinity", 241), ("sched_getaffinity", 242),
    ("set_thread_area", 243), ("get_thread_area", 244), ("io_setup", 245), ("io_destroy", 246),
    ("io_getevents", 247), ("io_submit", 248), ("io_cancel", 249), ("fadvise64", 250),
    ("exit_group", 252), ("lookup_dcookie", 253), ("epoll_create", 254), ("epoll_ctl", 255),
    ("epoll_wait", 256), ("remap_file_pages", 257), ("set_tid_address", 258),
    ("timer_create", 259), ("timer_settime", 260), ("timer_gettime", 261),
    ("timer_getoverrun", 262), ("timer_delete", 263), ("clock_settime", 264),
    ("clock_gettime", 265), ("clock_getres", 266), ("clock_nanosleep", 267), ("statfs64", 268),
    ("fstatfs64", 269), ("tgkill", 270), ("utimes", 271), ("fadvise64_64", 272), ("vserver", 273),
    ("mbind", 274), ("get_mempolicy", 275), ("set_mempolicy", 276), ("mq_open", 277),
    ("mq_unlink", 278), ("mq_timedsend", 279), ("mq_timedreceive", 280), ("mq_notify", 281),
    ("mq_getsetattr", 282), ("kexec_load", 283), ("waitid", 284), ("add_key", 286),
    ("request_key", 287), ("keyctl", 288), ("ioprio_set", 289), ("ioprio_get", 290),
    ("inotify_init", 291), ("inotify_add_watch", 292), ("inotify_rm_watch", 293),
    ("migrate_pages", 294), ("openat", 295), ("mkdirat", 296), ("mknodat", 297), ("fchownat", 298),
    ("futimesat", 299), ("fstatat64", 300), ("unlinkat", 301), ("renameat", 302), ("linkat", 303),
    ("symlinkat", 304), ("readlinkat", 305), ("fchmodat", 306), ("faccessat", 307),
    ("pselect6", 308), ("ppoll", 309), ("unshare", 310), ("set_robust_list", 311),
    ("get_robust_list", 312), ("splice", 313), ("sync_file_range", 314), ("tee", 315),
    ("vmsplice", 316), ("move_pages", 317), ("getcpu", 318), ("epoll_pwait", 319),
    ("utimensat", 320), ("signalfd", 321), ("timerfd_create", 322), ("eventfd", 323),
    ("fallocate", 324), ("timerfd_settime", 325), ("timerfd_gettime", 326), ("signalfd4", 327),
    ("eventfd2", 328), ("epoll_create1", 329), ("dup3", 330), ("pipe2", 331),
    ("inotify_init1", 332), ("preadv", 333), ("pwritev", 334), ("rt_tgsigqueueinfo", 335),
    ("perf_event_open", 336), ("recvmmsg", 337), ("fanotify_init", 338), ("fanotify_mark", 339),
    ("prlimit64", 340), ("name_to_handle_at", 341), ("open_by_handle_at", 342),
    ("clock_adjtime", 343), ("syncfs", 344), ("sendmmsg", 345), ("setns", 346),
    ("process_vm_readv", 347), ("process_vm_writev", 348), ("kcmp", 349), ("finit_module", 350),
    ("sched_setattr", 351), ("sched_getattr", 352), ("renameat2", 353), ("seccomp", 354),
    ("getrandom", 355), ("memfd_create", 356), ("bpf", 357), ("execveat", 358), ("socket", 359),
    ("socketpair", 360), ("bind", 361), ("connect", 362), ("listen", 363), ("accept4", 364),
    ("getsockopt", 365), ("setsockopt", 366), ("getsockname", 367), ("getpeername", 368),
    ("sendto", 369), ("sendmsg", 370), ("recvfrom", 371), ("recvmsg", 372), ("shutdown", 373),
    ("userfaultfd", 374), ("membarrier", 375), ("mlock2", 376), ("copy_file_range", 377),
    ("preadv2", 378), ("pwritev2", 379), ("pkey_mprotect", 380), ("pkey_alloc", 381),
    ("pkey_free", 382), ("statx", 383), ("arch_prctl", 384), ("io_pgetevents", 385), ("rseq", 386),
    ("semget", 393), ("semctl", 394), ("shmget", 395), ("shmctl", 396), ("shmat", 397),
    ("shmdt", 398), ("msgget", 399), ("msgsnd", 400), ("msgrcv", 401), ("msgctl", 402),
    ("clock_gettime64", 403), ("clock_settime64", 404), ("clock_adjtime64", 405),
    ("clock_getres_time64", 406), ("clock_nanosleep_time64", 407), ("timer_gettime64", 408),
    ("timer_settime64", 409), ("timerfd_gettime64", 410), ("timerfd_settime64", 411),
    ("utimensat_time64", 412), ("pselect6_time64", 413), ("ppoll_time64", 414),
    ("io_pgetevents_time64", 416), ("recvmmsg_time64", 417), ("mq_timedsend_time64", 418),
    ("mq_timedreceive_time64", 419), ("semtimedop_time64", 420), ("rt_sigtimedwait_time64", 421),
    ("futex_time64", 422), ("sched_rr_get_interval_time64", 423), ("pidfd_send_signal", 424),
    ("io_uring_setup", 425), ("io_uring_enter", 426), ("io_uring_register", 427),
    ("open_tree", 428), ("move_mount", 429), ("fsopen", 430), ("fsconfig", 431), ("fsmount", 432),
    ("fspick", 433), ("pidfd_open", 434), ("clone3", 435), ("close_range", 436), ("openat2", 437),
    ("pidfd_getfd", 438), ("faccessat2", 439), ("process_madvise", 440), ("epoll_pwait2", 441),
    ("mount_setattr", 442), ("quotactl_fd", 443), ("landlock_create_ruleset", 444),
    ("landlock_add_rule", 445), ("landlock_restrict_self", 446), ("memfd_secret", 447),
    ("process_mrelease", 448), ("futex_waitv", 449), ("set_mempolicy_home_node", 450),
    ("cachestat", 451), ("fchmodat2", 452), ("map_shadow_stack", 453), ("futex_wake", 454),
    ("futex_wait", 455), ("futex_requeue", 456), ("statmount", 457), ("listmount", 458),
    ("lsm_get_self_attr", 459), ("lsm_set_self_attr", 460), ("lsm_list_modules", 461),
    ("mseal", 462), ("setxattrat", 463), ("getxattrat", 464), ("listxattrat", 465),
    ("removexattrat", 466), ("open_tree_attr", 467), ("file_getattr", 468), ("file_setattr", 469),
    ("listns", 470),
];

#[rustfmt::skip]
static AARCH64: &[(&str, u32)] = &[
    ("io_setup", 0), ("io_destroy", 1), ("io_submit", 2), ("io_cancel", 3), ("io_getevents", 4),
    ("setxattr", 5), ("lsetxattr", 6), ("fsetxattr", 7), ("getxattr", 8), ("lgetxattr", 9),
    ("fgetxattr", 10), ("listxattr", 11), ("llistxattr", 12), ("flistxattr", 13),
    ("removexattr", 14), ("lremovexattr", 15), ("fremovexattr", 16), ("getcwd", 17),
    ("lookup_dcookie", 18), ("eventfd2", 19), ("epoll_create1", 20), ("epoll_ctl", 21),
    ("epoll_pwait", 22), ("dup", 23), ("dup3", 24), ("fcntl", 25), ("inotify_init1", 26),
    ("inotify_add_watch", 27), ("inotify_rm_watch", 28), ("ioctl", 29), ("ioprio_set", 30),
    ("ioprio_get", 31), ("flock", 32), ("mknodat", 33), ("mkdirat", 34), ("unlinkat", 35),
    ("symlinkat", 36), ("linkat", 37), ("renameat", 38), ("umount2", 39), ("mount", 40),
    ("pivot_root", 41), ("nfsservctl", 42), ("statfs", 43), ("fstatfs", 44), ("truncate", 45),
    ("ftruncate", 46), ("fallocate", 47), ("faccessat", 48), ("chdir", 49), ("fchdir", 50),
    ("chroot", 51), ("fchmod", 52), ("fchmodat", 53), ("fchownat", 54), ("fchown", 55),
    ("openat", 56), ("close", 57), ("vhangup", 58), ("pipe2", 59), ("quotactl", 60),
    ("getdents64", 61), ("lseek", 62), ("read", 63), ("write", 64), ("readv", 65), ("writev", 66),
    ("pread64", 67), ("pwrite64", 68), ("preadv", 69), ("pwritev", 70), ("sendfile", 71),
    ("pselect6", 72), ("ppoll", 73), ("signalfd4", 74), ("vmsplice", 75), ("splice", 76),
    ("tee", 77), ("readlinkat", 78), ("newfstatat", 79), ("fstat", 80), ("sync", 81),
    ("fsync", 82), ("fdatasync", 83), ("sync_file_range", 84), ("timerfd_create", 85),
    ("timerfd_settime", 86), ("timerfd_gettime", 87), ("utimensat", 88), ("acct", 89),
    ("capget", 90), ("capset", 91), ("personality", 92), ("exit", 93), ("exit_group", 94),
    ("waitid", 95), ("set_tid_address", 96), ("unshare", 97), ("futex", 98),
    ("set_robust_list", 99), ("get_robust_list", 100), ("nanosleep", 101), ("getitimer", 102),
    ("setitimer", 103), ("kexec_load", 104), ("init_module", 105), ("delete_module", 106),
    ("timer_create", 107), ("timer_gettime", 108), ("timer_getoverrun", 109),
    ("timer_settime", 110), ("timer_delete", 111), ("clock_settime", 112), ("clock_gettime", 113),
    ("clock_getres", 114), ("clock_nanosleep", 115), ("syslog", 116), ("ptrace", 117),
    ("sched_setparam", 118), ("sched_setscheduler", 119), ("sched_getscheduler", 120),
    ("sched_getparam", 121), ("sched_setaffinity", 122), ("sched_getaffinity", 123),
    ("sched_yield", 124), ("sched_get_priority_max", 125), ("sched_get_priority_min", 126),
    ("sched_rr_get_interval", 127), ("restart_syscall", 128), ("kill", 129), ("tkill", 130),
    ("tgkill", 131), ("sigaltstack", 132), ("rt_sigsuspend", 133), ("rt_sigaction", 134),
    ("rt_sigprocmask", 135), ("rt_sigpending", 136), ("rt_sigtimedwait", 137),
    ("rt_sigqueueinfo", 138), ("rt_sigreturn", 139), ("setpriority", 140), ("getpriority", 141),
    ("reboot", 142), ("setregid", 143), ("setgid", 144), ("setreuid", 145), ("setuid", 146),
    ("setresuid", 147), ("getresuid", 148), ("setresgid", 149), ("getresgid", 150),
    ("setfsuid", 151), ("setfsgid", 152), ("times", 153), ("setpgid", 154), ("getpgid", 155),
    ("getsid", 156), ("setsid", 157), ("getgroups", 158), ("setgroups", 159), ("uname", 160),
    ("sethostname", 161), ("setdomainname", 162), ("getrlimit", 163), ("setrlimit", 164),
    ("getrusage", 165), ("umask", 166), ("prctl", 167), ("getcpu", 168), ("gettimeofday", 169),
    ("settimeofday", 170), ("adjtimex", 171), ("getpid", 172), ("getppid", 173), ("getuid", 174),
    ("geteuid", 175), ("getgid", 176), ("getegid", 177), ("gettid", 178), ("sysinfo", 179),
    ("mq_open", 180), ("mq_unlink", 181), ("mq_timedsend", 182), ("mq_timedreceive", 183),
    ("mq_notify", 184), ("mq_getsetattr", 185), ("msgget", 186), ("msgctl", 187), ("msgrcv", 188),
    ("msgsnd", 189), ("semget", 190), ("semctl", 191), ("semtimedop", 192), ("semop", 193),
    ("shmget", 194), ("shmctl", 195), ("shmat", 196), ("shmdt", 197), ("socket", 198),
    ("socketpair", 199), ("bind", 200), ("listen", 201), ("accept", 202), ("connect", 203),
    ("getsockname", 204), ("getpeername", 205), ("sendto", 206), ("recvfrom", 207),
    ("setsockopt", 208), ("getsockopt", 209), ("shutdown", 210), ("sendmsg", 211),
    ("recvmsg", 212), ("readahead", 213), ("brk", 214), ("munmap", 215), ("mremap", 216),
    ("add_key", 217), ("request_key", 218), ("keyctl", 219), ("clone", 220), ("execve", 221),
    ("mmap", 222), ("fadvise64", 223), ("swapon", 224), ("swapoff", 225), ("mprotect", 226),
    ("msync", 227), ("mlock", 228), ("munlock", 229), ("mlockall", 230), ("munlockall", 231),
    ("mincore", 232), ("madvise", 233), ("remap_file_pages", 234), ("mbind", 235),
    ("get_mempolicy", 236), ("set_mempolicy", 237), ("migrate_pages", 238), ("move_pages", 239),
    ("rt_tgsigqueueinfo", 240), ("perf_event_open", 241), ("accept4", 242), ("recvmmsg", 243),
    ("wait4", 260), ("prlimit64", 261), ("fanotify_init", 262), ("fanotify_mark", 263),
    ("name_to_handle_at", 264), ("open_by_handle_at", 265), ("clock_adjtime", 266),
    ("syncfs", 267), ("setns", 268), ("sendmmsg", 269), ("process_vm_readv", 270),
    ("process_vm_writev", 271), ("kcmp", 272), ("finit_module", 273), ("sched_setattr", 274),
    ("sched_getattr", 275), ("renameat2", 276), ("seccomp", 277), ("getrandom", 278),
    ("memfd_create", 279), ("bpf", 280), ("execveat", 281), ("userfaultfd", 282),
    ("membarrier", 283), ("mlock2", 284), ("copy_file_range", 285), ("preadv2", 286),
    ("pwritev2", 287), ("pkey_mprotect", 288), ("pkey_alloc", 289), ("pkey_free", 290),
    ("statx", 291), ("io_pgetevents", 292), ("rseq", 293), ("kexec_file_load", 294),
    ("pidfd_send_signal", 424), ("io_uring_setup", 425), ("io_uring_enter", 426),
    ("io_uring_register", 427), ("open_tree", 428), ("move_mount", 429), ("fsopen", 430),
    ("fsconfig", 431), ("fsmount", 432), ("fspick", 433), ("pidfd_open", 434), ("clone3", 435),
    ("close_range", 436), ("openat2", 437), ("pidfd_getfd", 438), ("faccessat2", 439),
    ("process_madvise", 440), ("epoll_pwait2", 441), ("mount_setattr", 442), ("quotactl_fd", 443),
    ("landlock_create_ruleset", 444), ("landlock_add_rule", 445), ("landlock_restrict_self", 446),
    ("memfd_secret", 447), ("process_mrelease", 448), ("futex_waitv", 449),
    ("set_mempolicy_home_node", 450), ("cachestat", 451), ("fchmodat2", 452),
    ("map_shadow_stack", 453), ("futex_wake", 454), ("futex_wait", 455), ("futex_requeue", 456),
    ("statmount", 457), ("listmount", 458), ("lsm_get_self_attr", 459), ("lsm_set_self_attr", 460),
    ("lsm_list_modules", 461), ("mseal", 462), ("setxattrat", 463), ("getxattrat", 464),
    ("listxattrat", 465), ("removexattrat", 466), ("open_tree_attr", 467), ("file_getattr", 468),
    ("file_setattr", 469), ("listns", 470),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::native::caps::docker_default;
    use std::process::Command;

    const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
    const KILL: u32 = libc::SECCOMP_RET_KILL_PROCESS;

    fn eperm() -> u32 {
        ret_errno(libc::EPERM)
    }

    fn enosys() -> u32 {
        ret_errno(libc::ENOSYS)
    }

    fn target(arch: Arch) -> Target {
        Target {
            arch,
            kernel: KernelVersion {
                major: 6,
                minor: 18,
            },
        }
    }

    fn with(extra: &[Capability]) -> Vec<Capability> {
        let mut caps = docker_default();
        caps.extend_from_slice(extra);
        caps
    }

    /// Runs `program` the way the kernel does (classic BPF over
    /// `struct seccomp_data`), checking every jump stays in bounds.
    fn run(program: &Program, arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_le_bytes());
        data[4..8].copy_from_slice(&arch.to_le_bytes());
        for (i, a) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
        }
        let insns = &program.insns;
        let (mut acc, mut pc) = (0u32, 0usize);
        loop {
            let i = insns[pc];
            pc += 1;
            match i.code {
                LD_W_ABS => {
                    let k = i.k as usize;
                    acc = u32::from_le_bytes(data[k..k + 4].try_into().unwrap());
                }
                ALU_AND_K => acc &= i.k,
                JMP_JA => pc += i.k as usize,
                JMP_JEQ_K | JMP_JGT_K | JMP_JGE_K => {
                    let taken = match i.code {
                        JMP_JEQ_K => acc == i.k,
                        JMP_JGT_K => acc > i.k,
                        _ => acc >= i.k,
                    };
                    pc += usize::from(if taken { i.jt } else { i.jf });
                }
                RET_K => return i.k,
                other => panic!("unexpected opcode {other:#x} at {}", pc - 1),
            }
            assert!(pc < insns.len(), "jump past the end");
        }
    }

    fn call(program: &Program, arch: Arch, name: &str, args: &[u64]) -> u32 {
        let nr = arch
            .syscall_number(name)
            .unwrap_or_else(|| panic!("{name} on {arch:?}"));
        let mut a = [0u64; 6];
        a[..args.len()].copy_from_slice(args);
        run(program, arch.audit(), nr, a)
    }

    // ---- parsing ------------------------------------------------------------

    #[test]
    fn default_profile_parses_and_is_dockers() {
        let p = default_profile();
        assert_eq!(p.default_action, Action::Errno);
        assert_eq!(p.default_errno_ret, Some(1));
        assert_eq!(p.arch_map[0].arch, "SCMP_ARCH_X86_64");
        assert_eq!(p.arch_map[0].sub_arches, ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
        assert!(
            p.arch_map
                .iter()
                .any(|m| m.arch == "SCMP_ARCH_RISCV64" && m.sub_arches.is_empty())
        );
        let allowed = &p.syscalls[0];
        assert_eq!(allowed.action, Action::Allow);
        assert!(allowed.includes.is_empty() && allowed.args.is_empty());
        for name in [
            "read",
            "write",
            "execve",
            "mseal",
            "listmount",
            "getxattrat",
            "socketcall",
        ] {
            assert!(allowed.names.iter().any(|n| n == name), "{name} allowed");
        }
        for name in [
            "keyctl",
            "add_key",
            "request_key",
            "unshare",
            "mount",
            "io_uring_setup",
            "clone",
        ] {
            assert!(
                !allowed.names.iter().any(|n| n == name),
                "{name} not allowed by default"
            );
        }
        let clone3 = p.syscalls.iter().find(|s| s.names == ["clone3"]).unwrap();
        assert_eq!((clone3.action, clone3.errno_ret), (Action::Errno, Some(38)));
        assert_eq!(clone3.excludes.caps, ["CAP_SYS_ADMIN"]);
        let ptrace = &p.syscalls[1];
        assert_eq!(
            ptrace.includes.min_kernel,
            Some(KernelVersion { major: 4, minor: 8 })
        );
        let clone = p.syscalls.iter().find(|s| s.names == ["clone"]).unwrap();
        assert_eq!(clone.args[0].op, Op::MaskedEqual);
        assert_eq!(clone.args[0].value, 0x7e02_0000);

        // Serializing gives a profile that parses back to the same thing.
        let again = parse(&serde_json::to_vec(p).unwrap()).unwrap();
        assert_eq!(&again, p);
    }

    #[test]
    fn custom_profile_in_the_legacy_format() {
        let json = br#"{
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [
                {"name": "mkdir", "action": "SCMP_ACT_ERRNO", "args": null, "comment": "", "includes": {}, "excludes": null},
                {"names": ["chmod", "fchmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
                 "args": [{"index": 1, "value": 7, "valueTwo": 5, "op": "SCMP_CMP_MASKED_EQ"}],
                 "includes": {"minKernel": "5.10", "caps": null}},
                {"names": ["kill"], "action": "SCMP_ACT_KILL_PROCESS", "unknownField": true}
            ],
            "flags": ["SECCOMP_FILTER_FLAG_LOG"]
        }"#;
        let p = parse(json).unwrap();
        assert_eq!(p.default_action, Action::Allow);
        assert_eq!(p.default_errno_ret, None);
        assert_eq!(p.architectures.len(), 3);
        assert_eq!(p.syscalls[0].name, "mkdir");
        assert!(p.syscalls[0].args.is_empty());
        let chmod = &p.syscalls[1];
        assert_eq!(chmod.errno_ret, Some(13));
        assert_eq!(
            chmod.args[0],
            Arg {
                index: 1,
                value: 7,
                value_two: 5,
                op: Op::MaskedEqual
            }
        );
        assert_eq!(
            chmod.includes.min_kernel,
            Some(KernelVersion {
                major: 5,
                minor: 10
            })
        );
        assert_eq!(p.syscalls[2].action, Action::KillProcess);

        let prog = compile_for(&p, &[], &target(Arch::X86_64)).unwrap();
        assert_eq!(prog.flags, libc::SECCOMP_FILTER_FLAG_LOG as u32);
        let x = Arch::X86_64;
        assert_eq!(call(&prog, x, "mkdir", &[]), eperm());
        assert_eq!(
            call(&prog, x, "chmod", &[0, 0o755]),
            ret_errno(libc::EACCES)
        );
        assert_eq!(call(&prog, x, "chmod", &[0, 0o644]), ALLOW);
        assert_eq!(call(&prog, x, "kill", &[]), KILL);
        assert_eq!(call(&prog, x, "read", &[]), ALLOW);
        // A default-allow profile gets no ENOSYS stub.
        assert_eq!(run(&prog, AUDIT_ARCH_X86_64, 1000, [0; 6]), ALLOW);
        // The i386 section from "architectures".
        assert_eq!(call(&prog, Arch::X86, "mkdir", &[]), eperm());
        assert_eq!(call(&prog, Arch::X86, "getpid", &[]), ALLOW);
    }

    #[test]
    fn parse_errors_say_what_is_wrong() {
        let err = |json: &str| parse(json.as_bytes()).unwrap_err();

        let e = err("{\"defaultAction\": ");
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(
            e.message().starts_with("seccomp profile: ") && e.message().contains("line 1"),
            "{e}"
        );

        let e = err(r#"{"defaultAction": "SCMP_ACT_FOO"}"#);
        assert!(
            e.message().contains("unknown variant `SCMP_ACT_FOO`"),
            "{e}"
        );

        let e = err(r#"{"syscalls": []}"#);
        assert!(e.message().contains("missing field `defaultAction`"), "{e}");

        let e = err(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_XX"}]}]}"#,
        );
        assert!(e.message().contains("unknown variant `SCMP_CMP_XX`"), "{e}");

        let e = err(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"name": "read", "names": ["write"], "action": "SCMP_ACT_ALLOW"}]}"#,
        );
        assert_eq!(
            e.message(),
            "seccomp profile: syscalls[0]: 'name' and 'names' were specified, use either 'name' or 'names'"
        );

        let e = err(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}, {"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#,
        );
        assert_eq!(
            e.message(),
            "seccomp profile: syscalls[1]: argument index 6 is out of range (0 to 5)"
        );

        let e = err(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"action": "SCMP_ACT_ALLOW"}]}"#,
        );
        assert_eq!(
            e.message(),
            "seccomp profile: syscalls[0]: a rule needs a syscall name"
        );

        let e = err(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"], "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}"#,
        );
        assert!(
            e.message()
                .contains("use either 'architectures' or 'archMap'"),
            "{e}"
        );

        let e = err(r#"{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_Z80"]}"#);
        assert_eq!(
            e.message(),
            "seccomp profile: unknown architecture \"SCMP_ARCH_Z80\""
        );

        let e =
            err(r#"{"defaultAction": "SCMP_ACT_ERRNO", "flags": ["SECCOMP_FILTER_FLAG_NOPE"]}"#);
        assert!(e.message().contains("SECCOMP_FILTER_FLAG_NOPE"), "{e}");

        let e = err(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "four"}}]}"#,
        );
        assert!(
            e.message().contains("invalid kernel version \"four\""),
            "{e}"
        );

        let e = err(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]}"#,
        );
        assert_eq!(e.kind(), ErrorKind::NotImplemented);
        let e = err(r#"{"defaultAction": "SCMP_ACT_ERRNO", "listenerPath": "/run/agent.sock"}"#);
        assert_eq!(e.kind(), ErrorKind::NotImplemented);
    }

    #[test]
    fn kernel_versions() {
        let v = |s| KernelVersion::parse(s);
        assert_eq!(
            v("6.18.44-fc-v595"),
            Some(KernelVersion {
                major: 6,
                minor: 18
            })
        );
        assert_eq!(v("4.8"), Some(KernelVersion { major: 4, minor: 8 }));
        assert_eq!(
            v("5.10-rc1"),
            Some(KernelVersion {
                major: 5,
                minor: 10
            })
        );
        assert_eq!(v("5"), None);
        assert_eq!(v("x.1"), None);
        assert!(v("4.8") < v("4.10") && v("4.10") < v("5.0"));
        assert!(
            KernelVersion::host().unwrap()
                >= KernelVersion {
                    major: 3,
                    minor: 17
                }
        );
    }

    #[test]
    fn syscall_tables() {
        for arch in [Arch::X86_64, Arch::X86, Arch::Aarch64] {
            let table = arch.table();
            let mut names: Vec<_> = table.iter().map(|(n, _)| *n).collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), table.len(), "{arch:?}: duplicate names");
            assert!(
                table.windows(2).all(|w| w[0].1 < w[1].1),
                "{arch:?}: sorted, unique numbers"
            );
            assert_eq!(arch.syscall_number("clone3"), Some(435));
            assert_eq!(arch.syscall_number("listns"), Some(470));
            assert_eq!(arch.syscall_number("no_such_call"), None);
        }
        let x = Arch::X86_64;
        assert_eq!(x.syscall_number("read"), Some(libc::SYS_read as u32));
        assert_eq!(x.syscall_number("unshare"), Some(272));
        assert_eq!(x.syscall_number("uretprobe"), Some(335));
        assert_eq!(x.syscall_number("socketcall"), None);
        assert_eq!(Arch::X86.syscall_number("socketcall"), Some(102));
        assert_eq!(Arch::X86.syscall_number("getpid"), Some(20));
        assert_eq!(Arch::Aarch64.syscall_number("getpid"), Some(172));
        assert_eq!(Arch::Aarch64.syscall_number("open"), None);
        if let Some(native) = Arch::native() {
            assert_eq!(
                native.syscall_number("getpid"),
                Some(libc::SYS_getpid as u32)
            );
            assert_eq!(native.syscall_number("clone"), Some(libc::SYS_clone as u32));
            assert_eq!(
                native.syscall_number("keyctl"),
                Some(libc::SYS_keyctl as u32)
            );
        }
    }

    // ---- compiled semantics (checked with a BPF interpreter) ----------------

    #[test]
    fn default_profile_on_x86_64() {
        let prog =
            compile_for(default_profile(), &docker_default(), &target(Arch::X86_64)).unwrap();
        assert!(prog.len() < MAX_INSNS, "{} instructions", prog.len());
        let x = Arch::X86_64;
        for name in [
            "read",
            "write",
            "getpid",
            "execve",
            "exit_group",
            "futex",
            "chroot",
            "arch_prctl",
            "modify_ldt",
        ] {
            assert_eq!(call(&prog, x, name, &[]), ALLOW, "{name}");
        }
        for name in [
            "unshare",
            "mount",
            "umount2",
            "setns",
            "keyctl",
            "add_key",
            "request_key",
            "reboot",
            "clock_settime",
            "settimeofday",
            "bpf",
            "io_uring_setup",
            "open_by_handle_at",
            "kexec_load",
            "init_module",
            "swapon",
            "pivot_root",
            "perf_event_open",
            "lsm_get_self_attr",
        ] {
            assert_eq!(call(&prog, x, name, &[]), eperm(), "{name}");
        }
        // ptrace is allowed on kernels >= 4.8 (includes.minKernel).
        assert_eq!(call(&prog, x, "ptrace", &[]), ALLOW);
        let old = Target {
            arch: x,
            kernel: KernelVersion { major: 4, minor: 4 },
        };
        let old_prog = compile_for(default_profile(), &docker_default(), &old).unwrap();
        assert_eq!(call(&old_prog, x, "ptrace", &[]), eperm());

        // clone: namespace flags need CAP_SYS_ADMIN; clone3 says ENOSYS.
        let sigchld = libc::SIGCHLD as u64;
        assert_eq!(call(&prog, x, "clone", &[sigchld]), ALLOW);
        assert_eq!(call(&prog, x, "clone", &[0x003d_0f00]), ALLOW); // pthread_create's flags
        assert_eq!(
            call(&prog, x, "clone", &[sigchld | libc::CLONE_NEWNS as u64]),
            eperm()
        );
        assert_eq!(
            call(&prog, x, "clone", &[sigchld | libc::CLONE_NEWUSER as u64]),
            eperm()
        );
        assert_eq!(
            call(&prog, x, "clone", &[libc::CLONE_NEWCGROUP as u64]),
            eperm()
        );
        assert_eq!(call(&prog, x, "clone3", &[]), enosys());

        // socket: everything but AF_VSOCK (a 64-bit comparison).
        assert_eq!(call(&prog, x, "socket", &[libc::AF_INET as u64]), ALLOW);
        assert_eq!(call(&prog, x, "socket", &[libc::AF_UNIX as u64]), ALLOW);
        assert_eq!(call(&prog, x, "socket", &[libc::AF_VSOCK as u64]), eperm());
        assert_eq!(
            call(&prog, x, "socket", &[libc::AF_VSOCK as u64 | 1 << 32]),
            ALLOW
        );

        // personality: only the five values.
        for v in [0, 8, 0x20000, 0x20008, 0xffff_ffff] {
            assert_eq!(call(&prog, x, "personality", &[v]), ALLOW, "{v:#x}");
        }
        for v in [0x0040000, 1, 0x1_0000_0000, u64::MAX] {
            assert_eq!(call(&prog, x, "personality", &[v]), eperm(), "{v:#x}");
        }

        // Numbers: a gap below the largest named syscall gets the default;
        // above it ENOSYS (runc); x32 calls and other arches are killed.
        assert_eq!(run(&prog, AUDIT_ARCH_X86_64, 400, [0; 6]), eperm());
        let largest = x.syscall_number("removexattrat").unwrap();
        assert_eq!(run(&prog, AUDIT_ARCH_X86_64, largest, [0; 6]), ALLOW);
        for nr in [largest + 1, 470, 1000, X32_SYSCALL_BIT - 1] {
            assert_eq!(run(&prog, AUDIT_ARCH_X86_64, nr, [0; 6]), enosys(), "{nr}");
        }
        assert_eq!(
            run(&prog, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 39, [0; 6]),
            KILL
        );
        assert_eq!(run(&prog, AUDIT_ARCH_AARCH64, 172, [0; 6]), KILL);
        assert_eq!(run(&prog, 0x4000_0028, 20, [0; 6]), KILL); // arm

        // The i386 section (archMap: x86_64 runs x86 too).
        let i = Arch::X86;
        for name in [
            "getpid",
            "read",
            "socketcall",
            "mmap2",
            "_llseek",
            "modify_ldt",
        ] {
            assert_eq!(call(&prog, i, name, &[]), ALLOW, "i386 {name}");
        }
        for name in ["unshare", "mount", "keyctl", "reboot", "clock_settime"] {
            assert_eq!(call(&prog, i, name, &[]), eperm(), "i386 {name}");
        }
        assert_eq!(call(&prog, i, "clone3", &[]), enosys());
        assert_eq!(
            call(&prog, i, "clone", &[libc::CLONE_NEWNS as u64]),
            eperm()
        );
        assert_eq!(call(&prog, i, "clone", &[sigchld]), ALLOW);
        // 32-bit comparisons look at the low word only.
        assert_eq!(call(&prog, i, "personality", &[1 << 32 | 8]), ALLOW);
    }

    #[test]
    fn cap_sys_admin_and_other_caps_open_their_syscalls() {
        let x = Arch::X86_64;
        let caps = with(&[Capability::CAP_SYS_ADMIN]);
        let prog = compile_for(default_profile(), &caps, &target(x)).unwrap();
        for name in [
            "unshare",
            "mount",
            "setns",
            "clone3",
            "bpf",
            "lsm_list_modules",
            "umount2",
        ] {
            assert_eq!(call(&prog, x, name, &[]), ALLOW, "{name}");
        }
        assert_eq!(call(&prog, x, "clone", &[libc::CLONE_NEWNS as u64]), ALLOW);
        assert_eq!(call(&prog, x, "keyctl", &[]), eperm());
        assert_eq!(call(&prog, x, "reboot", &[]), eperm());

        let prog = compile_for(
            default_profile(),
            &with(&[Capability::CAP_SYS_TIME, Capability::CAP_SYS_BOOT]),
            &target(x),
        )
        .unwrap();
        assert_eq!(call(&prog, x, "clock_settime", &[]), ALLOW);
        assert_eq!(call(&prog, x, "reboot", &[]), ALLOW);
        assert_eq!(call(&prog, x, "unshare", &[]), eperm());

        // Without CAP_SYS_CHROOT (--cap-drop SYS_CHROOT), chroot is filtered.
        let no_chroot: Vec<_> = docker_default()
            .into_iter()
            .filter(|c| *c != Capability::CAP_SYS_CHROOT)
            .collect();
        let prog = compile_for(default_profile(), &no_chroot, &target(x)).unwrap();
        assert_eq!(call(&prog, x, "chroot", &[]), eperm());
    }

    #[test]
    fn default_profile_on_aarch64() {
        let a = Arch::Aarch64;
        let prog = compile_for(default_profile(), &docker_default(), &target(a)).unwrap();
        for name in ["read", "getpid", "execve", "openat", "set_tls"] {
            if a.syscall_number(name).is_some() {
                assert_eq!(call(&prog, a, name, &[]), ALLOW, "{name}");
            }
        }
        assert_eq!(call(&prog, a, "unshare", &[]), eperm());
        assert_eq!(call(&prog, a, "keyctl", &[]), eperm());
        assert_eq!(call(&prog, a, "clone", &[libc::SIGCHLD as u64]), ALLOW);
        assert_eq!(
            call(&prog, a, "clone", &[libc::CLONE_NEWNS as u64]),
            eperm()
        );
        assert_eq!(call(&prog, a, "clone3", &[]), enosys());
        // Only the aarch64 section (arm is not built): x86_64 calls die.
        assert_eq!(run(&prog, AUDIT_ARCH_X86_64, 39, [0; 6]), KILL);
    }

    /// What a condition means (libseccomp's semantics).
    fn holds(op: Op, arg: u64, value: u64, value_two: u64) -> bool {
        match op {
            Op::EqualTo => arg == value,
            Op::NotEqual => arg != value,
            Op::LessThan => arg < value,
            Op::LessOrEqual => arg <= value,
            Op::GreaterOrEqual => arg >= value,
            Op::GreaterThan => arg > value,
            Op::MaskedEqual => arg & value == value_two,
        }
    }

    fn profile(json: serde_json::Value) -> Profile {
        parse(&serde_json::to_vec(&json).unwrap()).unwrap()
    }

    #[test]
    fn every_operator_matches_libseccomp_on_64_and_32_bit() {
        let ops = [
            ("SCMP_CMP_EQ", Op::EqualTo),
            ("SCMP_CMP_NE", Op::NotEqual),
            ("SCMP_CMP_LT", Op::LessThan),
            ("SCMP_CMP_LE", Op::LessOrEqual),
            ("SCMP_CMP_GE", Op::GreaterOrEqual),
            ("SCMP_CMP_GT", Op::GreaterThan),
            ("SCMP_CMP_MASKED_EQ", Op::MaskedEqual),
        ];
        let values: [u64; 4] = [0, 5, 0x1_0000_0005, 0xffff_ffff_0000_0000];
        let probes = |v: u64| {
            [
                v,
                v.wrapping_add(1),
                v.wrapping_sub(1),
                v ^ 1 << 32,
                v ^ 0xffff_ffff,
                0,
                u64::MAX,
                0x1_0000_0000,
                v & 0xffff_ffff,
            ]
        };
        for (name, op) in ops {
            for value in values {
                let value_two = value & 0x0000_0001_0000_0004;
                let p = profile(serde_json::json!({
                    "defaultAction": "SCMP_ACT_ERRNO",
                    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
                    "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                        "args": [{"index": 2, "value": value, "valueTwo": value_two, "op": name}]}]
                }));
                let prog = compile_for(&p, &[], &target(Arch::X86_64)).unwrap();
                for arg in probes(value) {
                    let want = if holds(op, arg, value, value_two) {
                        ALLOW
                    } else {
                        eperm()
                    };
                    assert_eq!(
                        call(&prog, Arch::X86_64, "read", &[0, 0, arg]),
                        want,
                        "{name} value {value:#x} arg {arg:#x}"
                    );
                    // i386: the low words only.
                    let lo = |v: u64| v & 0xffff_ffff;
                    let want = if holds(op, lo(arg), lo(value), lo(value_two)) {
                        ALLOW
                    } else {
                        eperm()
                    };
                    assert_eq!(
                        call(&prog, Arch::X86, "read", &[0, 0, arg]),
                        want,
                        "i386 {name} value {value:#x} arg {arg:#x}"
                    );
                }
            }
        }
    }

    #[test]
    fn rule_combination_follows_runc_and_libseccomp() {
        let x = Arch::X86_64;
        let p = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                // Two arguments: ANDed.
                {"names": ["write"], "action": "SCMP_ACT_ALLOW", "args": [
                    {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                    {"index": 2, "value": 10, "op": "SCMP_CMP_LT"}]},
                // The same argument twice: ORed (runc splits the rule).
                {"names": ["close"], "action": "SCMP_ACT_ALLOW", "args": [
                    {"index": 0, "value": 3, "op": "SCMP_CMP_EQ"},
                    {"index": 0, "value": 4, "op": "SCMP_CMP_EQ"}]},
                // Rules of one syscall in order, each with its own action.
                {"names": ["dup"], "action": "SCMP_ACT_ERRNO", "errnoRet": 9, "args": [
                    {"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
                {"names": ["dup"], "action": "SCMP_ACT_ALLOW", "args": [
                    {"index": 0, "value": 10, "op": "SCMP_CMP_LT"}]},
                // An unconditional rule wins over conditional ones.
                {"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [
                    {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
                {"names": ["read"], "action": "SCMP_ACT_TRAP"},
                {"names": ["read"], "action": "SCMP_ACT_LOG"},
                // A rule with the default action is skipped (runc), so the
                // allow after it stands.
                {"names": ["pipe"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["pipe"], "action": "SCMP_ACT_ALLOW"},
                // Names unknown on an arch are skipped.
                {"names": ["no_such_call", "getpid"], "action": "SCMP_ACT_TRACE", "errnoRet": 7}
            ]
        }));
        let prog = compile_for(&p, &[], &target(x)).unwrap();
        assert_eq!(call(&prog, x, "write", &[1, 0, 9]), ALLOW);
        assert_eq!(call(&prog, x, "write", &[1, 0, 10]), eperm());
        assert_eq!(call(&prog, x, "write", &[2, 0, 9]), eperm());
        assert_eq!(call(&prog, x, "close", &[3]), ALLOW);
        assert_eq!(call(&prog, x, "close", &[4]), ALLOW);
        assert_eq!(call(&prog, x, "close", &[5]), eperm());
        assert_eq!(call(&prog, x, "dup", &[0]), ret_errno(9));
        assert_eq!(call(&prog, x, "dup", &[5]), ALLOW);
        assert_eq!(call(&prog, x, "dup", &[50]), eperm());
        assert_eq!(call(&prog, x, "read", &[1]), libc::SECCOMP_RET_TRAP);
        assert_eq!(call(&prog, x, "read", &[2]), libc::SECCOMP_RET_TRAP);
        assert_eq!(call(&prog, x, "pipe", &[]), ALLOW);
        assert_eq!(call(&prog, x, "getpid", &[]), libc::SECCOMP_RET_TRACE | 7);
        // Above the largest named syscall (pipe, 22 on x86_64): ENOSYS.
        assert_eq!(call(&prog, x, "socket", &[]), enosys());
        assert_eq!(call(&prog, x, "open", &[]), eperm());
    }

    #[test]
    fn long_programs_use_long_jumps() {
        // Many conditional rules on one syscall and on many syscalls make
        // blocks far longer than a conditional jump (255) can skip.
        let numbered: Vec<(&str, u32)> = Arch::X86_64
            .table()
            .iter()
            .copied()
            .filter(|&(name, nr)| nr < 150 && name != "read")
            .collect();
        let many: Vec<serde_json::Value> = (0..80u64)
            .map(|v| {
                serde_json::json!({"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 3,
                    "args": [{"index": 0, "value": v * 3, "op": "SCMP_CMP_EQ"}]})
            })
            .chain(numbered.iter().map(|&(name, nr)| {
                serde_json::json!({"names": [name], "action": "SCMP_ACT_ERRNO",
                    "errnoRet": nr % 100 + 4,
                    "args": [{"index": 1, "value": nr, "op": "SCMP_CMP_NE"}]})
            }))
            .collect();
        let p = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
            "syscalls": many
        }));
        let prog = compile_for(&p, &[], &target(Arch::X86_64)).unwrap();
        assert!(prog.len() > 4 * 255, "{} instructions", prog.len());
        assert!(
            prog.insns.iter().any(|i| i.code == JMP_JA),
            "uses a long jump"
        );
        for arch in [Arch::X86_64, Arch::X86] {
            for v in 0..260u64 {
                let want = if v % 3 == 0 && v < 240 {
                    ret_errno(3)
                } else {
                    ALLOW
                };
                assert_eq!(call(&prog, arch, "read", &[v]), want, "{arch:?} read({v})");
            }
            for &(name, nr) in &numbered {
                let Some(here) = arch.syscall_number(name) else {
                    continue;
                };
                let errno = ret_errno((nr % 100 + 4) as i32);
                let with_arg1 = |a: u64| run(&prog, arch.audit(), here, [0, a, 0, 0, 0, 0]);
                assert_eq!(with_arg1(u64::from(nr) + 1), errno, "{arch:?} {name}");
                assert_eq!(with_arg1(u64::from(nr)), ALLOW, "{arch:?} {name}");
            }
        }

        // A syscall with conditional rules long enough to need the long form.
        let p = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": (0..120u64).map(|v| serde_json::json!({"names": ["read"], "action": "SCMP_ACT_ALLOW",
                "args": [{"index": 0, "value": v * 2, "op": "SCMP_CMP_EQ"}]})).collect::<Vec<_>>()
        }));
        let prog = compile_for(&p, &[], &target(Arch::X86_64)).unwrap();
        for v in 0..260u64 {
            let want = if v % 2 == 0 && v < 240 {
                ALLOW
            } else {
                eperm()
            };
            assert_eq!(call(&prog, Arch::X86_64, "read", &[v]), want, "{v}");
        }
    }

    #[test]
    fn compile_uses_the_host() {
        let prog = compile(default_profile(), &docker_default()).unwrap();
        let native = Arch::native().unwrap();
        assert_eq!(call(&prog, native, "getpid", &[]), ALLOW);
        assert_eq!(call(&prog, native, "unshare", &[]), eperm());
    }

    // ---- the OCI section ------------------------------------------------------

    /// Every name of the section's rules with `action`, unconditional ones
    /// only.
    fn oci_unconditional(oci: &LinuxSeccomp, action: LinuxSeccompAction) -> Vec<&str> {
        oci.syscalls()
            .iter()
            .flatten()
            .filter(|r| r.action() == action && r.args().is_none())
            .flat_map(|r| r.names().iter().map(String::as_str))
            .collect()
    }

    /// The rules that name `name`.
    fn oci_rules<'a>(oci: &'a LinuxSeccomp, name: &str) -> Vec<&'a LinuxSyscall> {
        oci.syscalls()
            .iter()
            .flatten()
            .filter(|r| r.names().iter().any(|n| n == name))
            .collect()
    }

    #[test]
    fn oci_section_of_the_default_profile() {
        let oci = to_oci_for(default_profile(), &docker_default(), &target(Arch::X86_64)).unwrap();
        assert_eq!(oci.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(oci.default_errno_ret(), Some(1));
        assert_eq!(
            oci.architectures().as_deref(),
            Some(
                &[
                    OciArch::ScmpArchX86_64,
                    OciArch::ScmpArchX86,
                    OciArch::ScmpArchX32
                ][..]
            )
        );
        assert_eq!(oci.flags(), &None);
        assert_eq!(oci.listener_path(), &None);
        // The big allow list, ptrace & co (kernel >= 4.8), socket,
        // personality ×5, arch_prctl, modify_ldt, the masked clone, the
        // clone3 ENOSYS rule, chroot (CAP_SYS_CHROOT is a default cap).
        assert_eq!(oci.syscalls().as_ref().unwrap().len(), 13);

        let allowed = oci_unconditional(&oci, LinuxSeccompAction::ScmpActAllow);
        for name in [
            "read",
            "execve",
            "getpid",
            "ptrace",
            "arch_prctl",
            "modify_ldt",
            "chroot",
        ] {
            assert!(allowed.contains(&name), "{name} is allowed");
        }
        // Namespaces, mounts, keyrings, modules, clock, reboot, io_uring:
        // no allow rule at all, so the default action (EPERM) applies.
        for name in [
            "unshare",
            "setns",
            "mount",
            "umount2",
            "keyctl",
            "add_key",
            "bpf",
            "reboot",
            "init_module",
            "clock_settime",
            "io_uring_setup",
            "open_by_handle_at",
            "clone3",
            "s390_runtime_instr",
            "breakpoint",
            "riscv_flush_icache",
        ] {
            assert!(
                oci_rules(&oci, name)
                    .iter()
                    .all(|r| r.action() != LinuxSeccompAction::ScmpActAllow),
                "{name} has no allow rule: {:?}",
                oci_rules(&oci, name)
            );
        }
        // clone: only without namespace flags (the x86 form: flags in arg 0).
        let clone = oci_rules(&oci, "clone");
        assert_eq!(clone.len(), 1, "{clone:?}");
        assert_eq!(clone[0].action(), LinuxSeccompAction::ScmpActAllow);
        let args = clone[0].args().as_ref().unwrap();
        assert_eq!(args.len(), 1);
        assert_eq!(args[0].index(), 0);
        assert_eq!(args[0].op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
        assert_eq!(args[0].value_two(), None, "masked with 0");
        let namespaces = (libc::CLONE_NEWNS
            | libc::CLONE_NEWUTS
            | libc::CLONE_NEWIPC
            | libc::CLONE_NEWUSER
            | libc::CLONE_NEWPID
            | libc::CLONE_NEWNET
            | libc::CLONE_NEWCGROUP) as u64;
        assert_eq!(args[0].value(), namespaces);
        // clone3 cannot be checked by argument: ENOSYS, so libc uses clone.
        let clone3 = oci_rules(&oci, "clone3");
        assert_eq!(clone3.len(), 1, "{clone3:?}");
        assert_eq!(clone3[0].action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(clone3[0].errno_ret(), Some(libc::ENOSYS as u32));
        // socket: all but AF_VSOCK.
        let socket = oci_rules(&oci, "socket");
        assert_eq!(socket.len(), 1);
        let arg = socket[0].args().as_ref().unwrap()[0];
        assert_eq!(
            (arg.index(), arg.value(), arg.op()),
            (0, libc::AF_VSOCK as u64, LinuxSeccompOperator::ScmpCmpNe)
        );
        assert_eq!(oci_rules(&oci, "personality").len(), 5);

        // The JSON is the runtime spec's.
        let json = serde_json::to_value(&oci).unwrap();
        assert_eq!(json["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(json["defaultErrnoRet"], 1);
        assert_eq!(
            json["architectures"],
            serde_json::json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        );
        let rules = json["syscalls"].as_array().unwrap();
        assert!(rules.contains(&serde_json::json!({
            "names": ["clone"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": 2114060288u64, "op": "SCMP_CMP_MASKED_EQ"}]
        })));
        assert!(rules.contains(&serde_json::json!({
            "names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38
        })));
        // And it reads back as the same section.
        assert_eq!(serde_json::from_value::<LinuxSeccomp>(json).unwrap(), oci);
    }

    #[test]
    fn oci_section_follows_caps_arch_and_kernel() {
        // CAP_SYS_ADMIN opens namespaces: clone, clone3, unshare, mount,
        // setns unconditionally, and neither the masked clone nor the clone3
        // ENOSYS rule is left.
        let admin = with(&[Capability::CAP_SYS_ADMIN]);
        let oci = to_oci_for(default_profile(), &admin, &target(Arch::X86_64)).unwrap();
        let allowed = oci_unconditional(&oci, LinuxSeccompAction::ScmpActAllow);
        for name in [
            "clone", "clone3", "unshare", "mount", "setns", "umount2", "bpf",
        ] {
            assert!(allowed.contains(&name), "{name} with CAP_SYS_ADMIN");
        }
        assert_eq!(oci_rules(&oci, "clone").len(), 1);
        assert_eq!(oci_rules(&oci, "clone3").len(), 1);
        assert!(
            oci.syscalls()
                .iter()
                .flatten()
                .all(|r| r.action() == LinuxSeccompAction::ScmpActAllow)
        );

        // Other caps open their own syscalls.
        let oci = to_oci_for(
            default_profile(),
            &with(&[Capability::CAP_SYS_TIME, Capability::CAP_SYS_PTRACE]),
            &target(Arch::X86_64),
        )
        .unwrap();
        let allowed = oci_unconditional(&oci, LinuxSeccompAction::ScmpActAllow);
        for name in ["clock_settime", "settimeofday", "kcmp", "pidfd_getfd"] {
            assert!(allowed.contains(&name), "{name}");
        }
        // Without CAP_SYS_CHROOT, no chroot.
        let no_chroot: Vec<Capability> = docker_default()
            .into_iter()
            .filter(|c| *c != Capability::CAP_SYS_CHROOT)
            .collect();
        let oci = to_oci_for(default_profile(), &no_chroot, &target(Arch::X86_64)).unwrap();
        assert!(oci_rules(&oci, "chroot").is_empty());

        // ptrace needs kernel 4.8.
        let old = Target {
            arch: Arch::X86_64,
            kernel: KernelVersion { major: 4, minor: 4 },
        };
        let oci = to_oci_for(default_profile(), &docker_default(), &old).unwrap();
        assert!(oci_rules(&oci, "ptrace").is_empty());
        assert!(oci_rules(&oci, "process_vm_readv").is_empty());

        // aarch64: its archMap entry, the arm/arm64 rule, no x86 ones.
        let oci = to_oci_for(default_profile(), &docker_default(), &target(Arch::Aarch64)).unwrap();
        assert_eq!(
            oci.architectures().as_deref(),
            Some(&[OciArch::ScmpArchAarch64, OciArch::ScmpArchArm][..])
        );
        let allowed = oci_unconditional(&oci, LinuxSeccompAction::ScmpActAllow);
        assert!(allowed.contains(&"arm_sync_file_range"));
        assert!(!allowed.contains(&"arch_prctl"));
        assert!(!allowed.contains(&"modify_ldt"));
        assert_eq!(oci_rules(&oci, "clone").len(), 1);
    }

    #[test]
    fn oci_section_of_a_custom_profile() {
        let p = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
            "syscalls": [
                {"name": "mkdir", "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                {"names": ["write"], "action": "SCMP_ACT_TRAP",
                 "args": [{"index": 2, "value": 4095, "valueTwo": 4, "op": "SCMP_CMP_MASKED_EQ"},
                          {"index": 0, "value": 2, "op": "SCMP_CMP_GE"}]},
                {"names": ["getpid"], "action": "SCMP_ACT_KILL_PROCESS", "includes": {"arches": ["arm64"]}},
                {"names": ["getppid"], "action": "SCMP_ACT_LOG", "excludes": {"minKernel": "7.0"}},
                {"names": ["gettid"], "action": "SCMP_ACT_KILL", "excludes": {"caps": ["CAP_KILL"]}}
            ]
        }));
        let oci = to_oci_for(&p, &docker_default(), &target(Arch::X86_64)).unwrap();
        let json = serde_json::to_value(&oci).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
                "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
                "syscalls": [
                    {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                    {"names": ["write"], "action": "SCMP_ACT_TRAP",
                     "args": [{"index": 2, "value": 4095, "valueTwo": 4, "op": "SCMP_CMP_MASKED_EQ"},
                              {"index": 0, "value": 2, "op": "SCMP_CMP_GE"}]},
                    {"names": ["getppid"], "action": "SCMP_ACT_LOG"}
                ]
            })
        );
        // CAP_KILL dropped: the gettid rule stays; a newer kernel drops getppid's.
        let no_kill: Vec<Capability> = docker_default()
            .into_iter()
            .filter(|c| *c != Capability::CAP_KILL)
            .collect();
        let new = Target {
            arch: Arch::X86_64,
            kernel: KernelVersion { major: 7, minor: 1 },
        };
        let oci = to_oci_for(&p, &no_kill, &new).unwrap();
        let names: Vec<&str> = oci
            .syscalls()
            .iter()
            .flatten()
            .flat_map(|r| r.names().iter().map(String::as_str))
            .collect();
        assert_eq!(names, ["mkdir", "write", "gettid"]);
        assert_eq!(
            oci_rules(&oci, "gettid")[0].action(),
            LinuxSeccompAction::ScmpActKill
        );

        // An archMap without the native architecture: none listed (the
        // runtime then filters the native one only), as moby does.
        let p = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "archMap": [{"architecture": "SCMP_ARCH_S390X", "subArchitectures": ["SCMP_ARCH_S390"]}],
            "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]
        }));
        let oci = to_oci_for(&p, &[], &target(Arch::X86_64)).unwrap();
        assert_eq!(oci.architectures(), &None);
        assert_eq!(oci.default_errno_ret(), None);

        // Every architecture and flag a profile may name has an OCI spelling.
        let every = [
            "SCMP_ARCH_X86_64",
            "SCMP_ARCH_X86",
            "SCMP_ARCH_AARCH64",
            "SCMP_ARCH_X32",
            "SCMP_ARCH_ARM",
            "SCMP_ARCH_MIPS",
            "SCMP_ARCH_MIPS64",
            "SCMP_ARCH_MIPS64N32",
            "SCMP_ARCH_MIPSEL",
            "SCMP_ARCH_MIPSEL64",
            "SCMP_ARCH_MIPSEL64N32",
            "SCMP_ARCH_PPC",
            "SCMP_ARCH_PPC64",
            "SCMP_ARCH_PPC64LE",
            "SCMP_ARCH_S390",
            "SCMP_ARCH_S390X",
            "SCMP_ARCH_PARISC",
            "SCMP_ARCH_PARISC64",
            "SCMP_ARCH_RISCV64",
            "SCMP_ARCH_LOONGARCH64",
            "SCMP_ARCH_M68K",
            "SCMP_ARCH_SH",
            "SCMP_ARCH_SHEB",
        ];
        let p = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": every,
            "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
        }));
        let json =
            serde_json::to_value(to_oci_for(&p, &[], &target(Arch::X86_64)).unwrap()).unwrap();
        assert_eq!(json["architectures"], serde_json::json!(every));
        assert_eq!(json["flags"].as_array().unwrap().len(), 3);

        // A seccomp agent is refused, as for the built-in runtime.
        let p = Profile {
            listener_path: "/run/agent.sock".into(),
            ..profile(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW"}))
        };
        let err = to_oci_for(&p, &[], &target(Arch::X86_64)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotImplemented, "{err}");
    }

    // ---- real behaviour, in a child process ----------------------------------

    const CHILD_ENV: &str = "BERTH_SECCOMP_TEST_CHILD";

    /// Runs this test binary again, only `test`, with `CHILD_ENV=mode`, and
    /// returns `name -> result` from its `SYSCALL name result` lines; `None`
    /// when not root (skipped; a failure on CI).
    fn run_child(test: &str, mode: &str) -> Option<BTreeMap<String, String>> {
        let stdout = crate::util::testing::rerun_as_child(module_path!(), test, (CHILD_ENV, mode))?;
        let results: BTreeMap<String, String> = stdout
            .lines()
            // The first line may follow libtest's "test name ... ".
            .filter_map(|l| l.split_once("SYSCALL ").map(|(_, rest)| rest))
            .filter_map(|l| l.split_once(' '))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert!(!results.is_empty(), "no results from the child:\n{stdout}");
        Some(results)
    }

    /// The child side: installs the default filter for `caps`, makes the
    /// calls, prints `SYSCALL name ok|<errno>`.
    fn child_calls(caps: &[Capability]) {
        use std::os::fd::AsRawFd;
        let program = compile(default_profile(), caps).unwrap();
        let devnull = std::fs::File::open("/dev/null").unwrap();
        let mut fds = [0; 2];
        // SAFETY: fds is valid for two ints.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);

        set_no_new_privs().unwrap();
        install(&program).unwrap();

        let mut results = Vec::new();
        let mut record = |name: &str, rc: libc::c_long| {
            let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0);
            results.push(format!(
                "{name} {}",
                if rc < 0 {
                    errno.to_string()
                } else {
                    "ok".into()
                }
            ));
        };
        let mut byte = [0u8; 1];
        // SAFETY: raw system calls with valid or deliberately bogus (null,
        // out-of-range) arguments that the kernel rejects without side
        // effects; clones exit at once in the child.
        unsafe {
            use libc::{c_long, syscall};
            record("getpid", syscall(libc::SYS_getpid));
            record(
                "read",
                syscall(libc::SYS_read, devnull.as_raw_fd(), byte.as_mut_ptr(), 1),
            );
            record("write", syscall(libc::SYS_write, fds[1], b"x".as_ptr(), 1));
            let pid = syscall(libc::SYS_clone, libc::SIGCHLD as c_long, 0, 0, 0, 0);
            if pid == 0 {
                libc::_exit(0);
            }
            record("clone", pid);
            if pid > 0 {
                libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), 0);
            }
            let pid = syscall(
                libc::SYS_clone,
                (libc::SIGCHLD | libc::CLONE_NEWNS) as c_long,
                0,
                0,
                0,
                0,
            );
            if pid == 0 {
                libc::_exit(0);
            }
            record("clone_newns", pid);
            if pid > 0 {
                libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), 0);
            }
            record(
                "clone3",
                syscall(libc::SYS_clone3, std::ptr::null::<u8>(), 88),
            );
            record(
                "unshare",
                syscall(libc::SYS_unshare, libc::CLONE_NEWNS as c_long),
            );
            record(
                "mount",
                syscall(
                    libc::SYS_mount,
                    std::ptr::null::<u8>(),
                    c"/nonexistent-berth-seccomp-test".as_ptr(),
                    std::ptr::null::<u8>(),
                    libc::MS_BIND as c_long,
                    std::ptr::null::<u8>(),
                ),
            );
            record("setns", syscall(libc::SYS_setns, -1 as c_long, 0));
            // keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0)
            record("keyctl", syscall(libc::SYS_keyctl, 0, -3 as c_long, 0));
            record(
                "add_key",
                syscall(
                    libc::SYS_add_key,
                    std::ptr::null::<u8>(),
                    std::ptr::null::<u8>(),
                    0,
                    0,
                    0,
                ),
            );
            // Bad magic: EINVAL if it ever got through.
            record("reboot", syscall(libc::SYS_reboot, 0, 0, 0, 0));
            record(
                "clock_settime",
                syscall(
                    libc::SYS_clock_settime,
                    libc::CLOCK_REALTIME as c_long,
                    std::ptr::null::<u8>(),
                ),
            );
            // PTRACE_PEEKUSER on a pid that does not exist.
            record(
                "ptrace",
                syscall(libc::SYS_ptrace, 3 as c_long, 0x7fff_ffff as c_long, 0, 0),
            );
            record(
                "io_uring_setup",
                syscall(libc::SYS_io_uring_setup, 1, std::ptr::null::<u8>()),
            );
            record(
                "socket_vsock",
                syscall(
                    libc::SYS_socket,
                    libc::AF_VSOCK as c_long,
                    libc::SOCK_STREAM as c_long,
                    0,
                ),
            );
            let fd = syscall(
                libc::SYS_socket,
                libc::AF_UNIX as c_long,
                libc::SOCK_STREAM as c_long,
                0,
            );
            record("socket_unix", fd);
            if fd >= 0 {
                libc::close(fd as i32);
            }
            record(
                "personality_query",
                syscall(libc::SYS_personality, 0xffff_ffff as c_long),
            );
            record(
                "personality_no_aslr",
                syscall(libc::SYS_personality, 0x0040000 as c_long),
            );
            // open_tree_attr (467): newer than every syscall the profile names.
            record("open_tree_attr", syscall(467, -1 as c_long, 0, 0, 0, 0));
        }
        for line in results {
            println!("SYSCALL {line}");
        }
    }

    #[test]
    fn a_shell_runs_under_the_default_filter() {
        if std::env::var(CHILD_ENV).as_deref() == Ok("exec") {
            use std::os::unix::process::CommandExt;
            let program = compile(default_profile(), &docker_default()).unwrap();
            set_no_new_privs().unwrap();
            install(&program).unwrap();
            // A dynamically linked shell that forks a dynamically linked ls
            // (glibc tries clone3 first and falls back on ENOSYS).
            let err = Command::new("/bin/sh")
                .args([
                    "-c",
                    "echo; echo SYSCALL sh ok; /bin/ls / >/dev/null && echo SYSCALL ls ok",
                ])
                .exec();
            panic!("exec /bin/sh: {err}");
        }
        let Some(r) = run_child("a_shell_runs_under_the_default_filter", "exec") else {
            return;
        };
        assert_eq!(r.get("sh").map(String::as_str), Some("ok"), "{r:?}");
        assert_eq!(r.get("ls").map(String::as_str), Some("ok"), "{r:?}");
    }

    #[test]
    fn default_filter_in_a_real_process() {
        if let Ok(mode) = std::env::var(CHILD_ENV) {
            let extra = if mode == "sysadmin" {
                vec![Capability::CAP_SYS_ADMIN]
            } else {
                vec![]
            };
            child_calls(&with(&extra));
            return;
        }
        let Some(r) = run_child("default_filter_in_a_real_process", "default") else {
            return;
        };
        let eperm = libc::EPERM.to_string();
        let enosys = libc::ENOSYS.to_string();
        for name in [
            "getpid",
            "read",
            "write",
            "clone",
            "socket_unix",
            "personality_query",
        ] {
            assert_eq!(r[name], "ok", "{name}: {r:?}");
        }
        for name in [
            "unshare",
            "mount",
            "setns",
            "keyctl",
            "add_key",
            "reboot",
            "clock_settime",
            "clone_newns",
            "io_uring_setup",
            "socket_vsock",
            "personality_no_aslr",
        ] {
            assert_eq!(r[name], eperm, "{name}: {r:?}");
        }
        assert_eq!(r["clone3"], enosys, "{r:?}");
        assert_eq!(r["open_tree_attr"], enosys, "{r:?}");
        // Allowed by the filter on kernels >= 4.8: the kernel answers ESRCH.
        assert_eq!(r["ptrace"], libc::ESRCH.to_string(), "{r:?}");

        let Some(r) = run_child("default_filter_in_a_real_process", "sysadmin") else {
            return;
        };
        assert_eq!(r["unshare"], "ok", "{r:?}");
        assert_eq!(r["clone_newns"], "ok", "{r:?}");
        // Through the filter to the kernel, which rejects the null pointer.
        assert_eq!(r["clone3"], libc::EFAULT.to_string(), "{r:?}");
        assert_ne!(r["mount"], eperm, "{r:?}");
        assert_ne!(r["setns"], eperm, "{r:?}");
        assert_eq!(r["keyctl"], eperm, "{r:?}");
        assert_eq!(r["reboot"], eperm, "{r:?}");
    }

    // ---- the OCI section under runc -------------------------------------------

    /// Runs `sh -c script` under `runc run` in a bundle whose rootfs holds
    /// the host's static busybox, with `seccomp` as `linux.seccomp` and
    /// `caps` as every capability set; stdout, stderr and the exit code.
    /// `None` when not root, or runc or /bin/busybox is missing (skipped; a
    /// failure on CI).
    fn run_under_runc(
        seccomp: Option<&LinuxSeccomp>,
        caps: &[Capability],
        script: &str,
    ) -> Option<(String, String, i32)> {
        let runc = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join("runc"))
                .find(|p| p.is_file())
        });
        let busybox = std::path::Path::new("/bin/busybox");
        let missing = if !nix::unistd::geteuid().is_root() {
            Some("root")
        } else if runc.is_none() {
            Some("runc")
        } else if !busybox.is_file() {
            Some("/bin/busybox (busybox-static)")
        } else {
            None
        };
        if let Some(what) = missing {
            crate::util::testing::skip(format!("(the runc round trip) needs {what}"));
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bundle/rootfs/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::copy(busybox, bin.join("busybox")).unwrap();
        for applet in ["sh", "grep", "unshare", "true"] {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
        }
        let names: Vec<String> = caps.iter().map(|c| c.to_string()).collect();
        let config = serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {
                "terminal": false,
                "user": {"uid": 0, "gid": 0},
                "args": ["/bin/sh", "-c", script],
                "env": ["PATH=/bin"],
                "cwd": "/",
                "capabilities": {"bounding": names, "effective": names, "permitted": names},
                "noNewPrivileges": true
            },
            "root": {"path": "rootfs", "readonly": true},
            "hostname": "seccomp-test",
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                 "options": ["nosuid", "mode=755", "size=1m"]}
            ],
            "linux": {
                "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"},
                               {"type": "mount"}, {"type": "network"}],
                "seccomp": seccomp
            }
        });
        std::fs::write(
            dir.path().join("bundle/config.json"),
            serde_json::to_vec_pretty(&config).unwrap(),
        )
        .unwrap();
        let id = format!(
            "berth-seccomp-{}-{}",
            std::process::id(),
            dir.path().file_name().unwrap().to_string_lossy()
        );
        let out = Command::new(runc.unwrap())
            .arg("--root")
            .arg(dir.path().join("state"))
            .arg("run")
            .arg("--bundle")
            .arg(dir.path().join("bundle"))
            .arg(&id)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        Some((
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            out.status.code().unwrap_or(-1),
        ))
    }

    #[test]
    fn oci_section_round_trips_through_runc() {
        // unshare -U needs no capability: seccomp is what stops it.
        let script = "grep Seccomp: /proc/self/status; \
            unshare -m true; echo mntns=$?; unshare -U true; echo userns=$?";
        let default = to_oci(default_profile(), &docker_default()).unwrap();
        let Some((out, err, code)) = run_under_runc(Some(&default), &docker_default(), script)
        else {
            return;
        };
        assert_eq!(code, 0, "runc failed:\n{out}\n{err}");
        assert_eq!(out, "Seccomp:\t2\nmntns=1\nuserns=1\n", "stderr: {err}");
        assert!(err.contains("Operation not permitted"), "{err}");

        // Unconfined: no filter. (Whether unshare -U then works is up to the
        // host's policy on user namespaces; it does on a stock kernel.)
        let (out, err, code) = run_under_runc(None, &docker_default(), script).unwrap();
        assert_eq!(code, 0, "runc failed:\n{out}\n{err}");
        assert!(
            out.starts_with("Seccomp:\t0\nmntns=1\nuserns="),
            "unconfined: {out}\nstderr: {err}"
        );

        let admin = with(&[Capability::CAP_SYS_ADMIN]);
        let oci = to_oci(default_profile(), &admin).unwrap();
        let (out, err, code) = run_under_runc(Some(&oci), &admin, script).unwrap();
        assert_eq!(code, 0, "runc failed:\n{out}\n{err}");
        assert_eq!(
            out, "Seccomp:\t2\nmntns=0\nuserns=0\n",
            "CAP_SYS_ADMIN; stderr: {err}"
        );
    }
    // ---- the OCI path compiles what the direct path compiled ---------------

    /// Profiles whose compiled programs are pinned: Docker's default and
    /// custom ones that use every feature `to_oci` carries (legacy
    /// `architectures`, `archMap`, flags, every action and operator,
    /// `errnoRet`, `includes`/`excludes` on caps, arches and kernels).
    fn pinned_profiles() -> Vec<(&'static str, Profile)> {
        let ops = [
            "SCMP_CMP_EQ",
            "SCMP_CMP_NE",
            "SCMP_CMP_LT",
            "SCMP_CMP_LE",
            "SCMP_CMP_GE",
            "SCMP_CMP_GT",
            "SCMP_CMP_MASKED_EQ",
        ];
        let every_op: Vec<serde_json::Value> = ops
            .iter()
            .enumerate()
            .map(|(i, op)| {
                let name = ["read", "write", "openat", "fchmodat"][i % 4];
                let action = ["SCMP_ACT_ALLOW", "SCMP_ACT_TRAP", "SCMP_ACT_LOG"][i % 3];
                serde_json::json!({
                "names": [name],
                "action": action,
                "args": [{"index": i % 6, "value": 0x1_0000_0005u64 + i as u64, "valueTwo": 5, "op": op},
                         {"index": (i + 1) % 6, "value": 7, "op": op}]
            })})
            .collect();
        vec![
            ("default", default_profile().clone()),
            (
                "legacy",
                profile(serde_json::json!({
                    "defaultAction": "SCMP_ACT_ALLOW",
                    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"],
                    "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"],
                    "syscalls": [
                        {"name": "mkdir", "action": "SCMP_ACT_ERRNO"},
                        {"names": ["chmod", "fchmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
                         "args": [{"index": 1, "value": 7, "valueTwo": 5, "op": "SCMP_CMP_MASKED_EQ"}],
                         "includes": {"minKernel": "5.10"}},
                        {"names": ["kill"], "action": "SCMP_ACT_KILL_PROCESS"},
                        {"names": ["tkill"], "action": "SCMP_ACT_KILL_THREAD"},
                        {"names": ["tgkill"], "action": "SCMP_ACT_KILL", "excludes": {"caps": ["CAP_KILL"]}},
                        {"names": ["getpid"], "action": "SCMP_ACT_TRACE", "errnoRet": 3, "includes": {"arches": ["arm64"]}},
                        {"names": ["getppid"], "action": "SCMP_ACT_LOG", "excludes": {"minKernel": "6.0"}},
                        {"names": ["gettid"], "action": "SCMP_ACT_TRAP", "includes": {"caps": ["CAP_SYS_ADMIN"]}}
                    ]
                })),
            ),
            (
                "archmap",
                profile(serde_json::json!({
                    "defaultAction": "SCMP_ACT_ERRNO",
                    "defaultErrnoRet": 38,
                    "archMap": [
                        {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
                        {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}
                    ],
                    "syscalls": every_op
                })),
            ),
            (
                "kill-default",
                profile(serde_json::json!({
                    "defaultAction": "SCMP_ACT_KILL_PROCESS",
                    "syscalls": [
                        {"names": ["read", "write", "exit_group", "no_such_call"], "action": "SCMP_ACT_ALLOW"},
                        {"names": ["close"], "action": "SCMP_ACT_ALLOW",
                         "args": [{"index": 0, "value": 3, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 4, "op": "SCMP_CMP_EQ"}]},
                        {"names": ["close"], "action": "SCMP_ACT_ERRNO", "errnoRet": 9}
                    ]
                })),
            ),
        ]
    }

    /// Each pinned profile compiled for both architectures, five kernels
    /// and five capability sets, as one digest per profile and
    /// architecture.
    fn pinned_digests() -> Vec<String> {
        use crate::native::caps::all_supported;
        use sha2::{Digest, Sha256};
        let kernels = [(4, 4), (4, 8), (5, 10), (6, 8), (6, 18)];
        let cap_sets = [
            vec![],
            docker_default(),
            with(&[Capability::CAP_SYS_ADMIN]),
            with(&[
                Capability::CAP_SYS_PTRACE,
                Capability::CAP_SYS_BOOT,
                Capability::CAP_SYS_MODULE,
            ]),
            all_supported(),
        ];
        let mut out = Vec::new();
        for (name, p) in pinned_profiles() {
            for arch in [Arch::X86_64, Arch::Aarch64] {
                let mut h = Sha256::new();
                for (major, minor) in kernels {
                    let t = Target {
                        arch,
                        kernel: KernelVersion { major, minor },
                    };
                    for caps in &cap_sets {
                        h.update(compile_for(&p, caps, &t).unwrap().to_bytes());
                    }
                }
                out.push(format!(
                    "{name} {arch:?} {}",
                    hex::encode(&h.finalize()[..12])
                ));
            }
        }
        out
    }

    /// Docker JSON → OCI section → BPF gives, bit for bit, the programs
    /// that the compiler gave when it read Docker's format directly
    /// (digests taken from that compiler, before it read OCI sections).
    #[test]
    fn the_oci_path_compiles_what_the_direct_path_compiled() {
        let want = [
            "default X86_64 091d084308e510c3c737ce27",
            "default Aarch64 e3d713191ef4536db785b5d0",
            "legacy X86_64 d817d3859563eae8d8d82777",
            "legacy Aarch64 2e47d21bb82d1425083b2770",
            "archmap X86_64 40f5d12025ed768fdc1c4bed",
            "archmap Aarch64 d6608b598b4e9c9178ce74d1",
            "kill-default X86_64 f832bda3747f7ad5ae976bac",
            "kill-default Aarch64 7702b7f4915a3244bcb47efb",
        ];
        assert_eq!(pinned_digests(), want);
    }

    /// A section as a spec carries it (JSON, as runc reads it).
    fn oci_section(json: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn oci_sections_compile_as_their_profiles() {
        let x = Arch::X86_64;
        for caps in [docker_default(), with(&[Capability::CAP_SYS_ADMIN])] {
            let oci = to_oci_for(default_profile(), &caps, &target(x)).unwrap();
            // Through JSON, as the spec reaches the shim and the exec helper.
            let oci: LinuxSeccomp =
                serde_json::from_slice(&serde_json::to_vec(&oci).unwrap()).unwrap();
            assert_eq!(
                compile_oci_for(&oci, x).unwrap(),
                compile_for(default_profile(), &caps, &target(x)).unwrap()
            );
        }
        let oci = oci_section(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 38,
            "architectures": ["SCMP_ARCH_NATIVE", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "flags": ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
            "syscalls": [
                {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["close"], "action": "SCMP_ACT_ERRNO", "errnoRet": 9,
                 "args": [{"index": 0, "value": 255, "valueTwo": 3, "op": "SCMP_CMP_MASKED_EQ"}]}
            ]
        }));
        let prog = compile_oci_for(&oci, x).unwrap();
        assert_eq!(prog.flags, libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW as u32);
        assert_eq!(call(&prog, x, "read", &[]), ALLOW);
        assert_eq!(call(&prog, x, "close", &[0x103]), ret_errno(9));
        assert_eq!(call(&prog, x, "close", &[4]), ret_errno(38));
        assert_eq!(call(&prog, Arch::X86, "write", &[]), ALLOW);
        assert_eq!(run(&prog, AUDIT_ARCH_AARCH64, 0, [0; 6]), KILL);
    }

    #[test]
    fn oci_sections_berth_cannot_run_are_refused() {
        let x = Arch::X86_64;
        let refused = |json: serde_json::Value| compile_oci_for(&oci_section(json), x).unwrap_err();
        let e = refused(serde_json::json!({"defaultAction": "SCMP_ACT_NOTIFY"}));
        assert_eq!(e.kind(), ErrorKind::NotImplemented);
        let e = refused(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": "/run/agent.sock"}));
        assert_eq!(e.kind(), ErrorKind::NotImplemented);
        let e = refused(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]}));
        assert_eq!(e.kind(), ErrorKind::NotImplemented);
        let e = refused(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}));
        assert!(e.to_string().contains("argument index 6"), "{e}");
        let e = refused(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]}));
        assert!(e.to_string().contains("needs a syscall name"), "{e}");
        let e = refused(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}));
        assert!(e.to_string().contains("WAIT_KILLABLE_RECV"), "{e}");
    }
}
