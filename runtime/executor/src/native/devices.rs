//! Device access control for native containers: Docker's device allowlist.
//!
//! This module turns the OCI runtime spec's `linux.resources.devices` rules
//! into what the kernel enforces, with cgroup v1's meaning on both cgroup
//! versions (a default, allow or deny, plus exceptions; an `a` rule resets
//! the default; later rules edit the exceptions):
//!
//! - on v1, lines written to `devices.deny` and `devices.allow` of the
//!   container's devices cgroup;
//! - on v2, which has no devices controller, an eBPF program of type
//!   `BPF_PROG_TYPE_CGROUP_DEVICE` generated from the same rules (as runc's
//!   `libcontainer/cgroups/devices` does: an emulation of v1, then one block
//!   of compares per exception), loaded and attached to the container's
//!   cgroup directory with bpf(2).
//!
//! It touches only the cgroup directory it is handed. Which directory, and
//! doing it before the container's first process joins, belongs to
//! [`cgroups`](super::cgroups); which rules (Docker's defaults, or allow-all
//! for `--privileged`) belongs to the spec conversion.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// `m` in an access string: mknod.
pub const ACC_MKNOD: u8 = 1;
/// `r`: open for reading.
pub const ACC_READ: u8 = 2;
/// `w`: open for writing.
pub const ACC_WRITE: u8 = 4;
/// `rwm`.
pub const ACC_ALL: u8 = ACC_MKNOD | ACC_READ | ACC_WRITE;

/// The device kinds a rule can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    /// `a`: every device. A rule of this kind sets the default (allow or
    /// deny everything) and drops every exception.
    All,
    /// `c`, character devices (OCI's `u`, unbuffered, is one too).
    Char,
    /// `b`, block devices.
    Block,
    /// `p`: FIFOs are no devices to the kernel's device control; refused.
    Fifo,
}

impl DeviceKind {
    fn letter(self) -> char {
        match self {
            DeviceKind::All => 'a',
            DeviceKind::Char => 'c',
            DeviceKind::Block => 'b',
            DeviceKind::Fifo => 'p',
        }
    }
}

/// One device rule, as an OCI `LinuxDeviceCgroup` entry says it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRule {
    /// Allow (true) or deny.
    pub allow: bool,
    pub kind: DeviceKind,
    /// `None` (or negative, as OCI writes -1): any major.
    pub major: Option<i64>,
    /// `None` (or negative): any minor.
    pub minor: Option<i64>,
    /// Some of `r`, `w`, `m`; OCI's missing access is `rwm`.
    pub access: String,
}

impl DeviceRule {
    /// A rule from its parts; `access` as in `"rwm"`.
    pub fn new(
        allow: bool,
        kind: DeviceKind,
        major: Option<i64>,
        minor: Option<i64>,
        access: &str,
    ) -> DeviceRule {
        DeviceRule {
            allow,
            kind,
            major,
            minor,
            access: access.to_string(),
        }
    }

    /// The line cgroup v1 takes in `devices.allow` / `devices.deny`:
    /// `c 1:3 rwm`, `c *:* m`, `a` (the kernel ignores numbers and access
    /// of an `a` rule).
    pub fn v1_string(&self) -> String {
        if self.kind == DeviceKind::All {
            return "a".to_string();
        }
        format!(
            "{} {}:{} {}",
            self.kind.letter(),
            wildcard(self.major),
            wildcard(self.minor),
            self.access
        )
    }
}

impl fmt::Display for DeviceRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.allow { "allow" } else { "deny" };
        write!(f, "{verb} {}", self.v1_string())
    }
}

fn wildcard(n: Option<i64>) -> String {
    match n {
        Some(n) if n >= 0 => n.to_string(),
        _ => "*".to_string(),
    }
}

impl From<&oci_spec::runtime::LinuxDeviceCgroup> for DeviceRule {
    fn from(d: &oci_spec::runtime::LinuxDeviceCgroup) -> DeviceRule {
        use oci_spec::runtime::LinuxDeviceType as T;
        let kind = match d.typ().unwrap_or(T::A) {
            T::A => DeviceKind::All,
            T::C | T::U => DeviceKind::Char,
            T::B => DeviceKind::Block,
            T::P => DeviceKind::Fifo,
        };
        DeviceRule {
            allow: d.allow(),
            kind,
            major: d.major(),
            minor: d.minor(),
            access: d.access().clone().unwrap_or_else(|| "rwm".to_string()),
        }
    }
}

/// Docker's default rules, in the order `native_spec` writes them: deny
/// everything; allow the usual character devices (null, zero, full,
/// random, urandom, tty, console, ptmx, pts, tun); deny fuse; allow mknod
/// of any character or block device (but not opening them).
pub fn docker_default_rules() -> Vec<DeviceRule> {
    use DeviceKind::*;
    let c = |major: i64, minor: Option<i64>| DeviceRule::new(true, Char, Some(major), minor, "rwm");
    vec![
        DeviceRule::new(false, All, None, None, "rwm"),
        c(1, Some(5)),
        c(1, Some(3)),
        c(1, Some(9)),
        c(1, Some(8)),
        c(5, Some(0)),
        c(5, Some(1)),
        c(1, Some(7)),
        c(136, None),
        c(5, Some(2)),
        c(10, Some(200)),
        DeviceRule::new(false, Char, Some(10), Some(229), "rwm"),
        DeviceRule::new(true, Char, None, None, "m"),
        DeviceRule::new(true, Block, None, None, "m"),
    ]
}

/// What a list of rules comes to, as cgroup v1 would hold it: a default
/// and exceptions that all do the opposite of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevicePolicy {
    default_allow: bool,
    exceptions: Vec<Exception>,
}

/// One exception: a device (or a wildcard range of them) and the accesses
/// it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Exception {
    /// [`DeviceKind::Char`] or [`DeviceKind::Block`].
    pub kind: DeviceKind,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// [`ACC_READ`], [`ACC_WRITE`], [`ACC_MKNOD`] bits.
    pub access: u8,
}

impl Exception {
    fn same_device(&self, kind: DeviceKind, major: Option<u32>, minor: Option<u32>) -> bool {
        self.kind == kind && self.major == major && self.minor == minor
    }

    /// The v1 line, `c 1:3 rwm`.
    pub fn v1_string(&self) -> String {
        let n = |v: Option<u32>| v.map_or_else(|| "*".to_string(), |v| v.to_string());
        format!(
            "{} {}:{} {}",
            self.kind.letter(),
            n(self.major),
            n(self.minor),
            access_string(self.access)
        )
    }

    fn covers(&self, kind: DeviceKind, major: u32, minor: u32) -> bool {
        self.kind == kind
            && self.major.is_none_or(|m| m == major)
            && self.minor.is_none_or(|m| m == minor)
    }
}

impl DevicePolicy {
    /// Applies `rules` in order to what a new cgroup starts with under
    /// berth's parent (everything allowed), with v1's meaning. Refuses a
    /// rule v1 would silently ignore: one that takes a device out of a
    /// wider wildcard exception (runc refuses it too).
    pub fn from_rules(rules: &[DeviceRule]) -> Result<DevicePolicy> {
        let mut p = DevicePolicy {
            default_allow: true,
            exceptions: Vec::new(),
        };
        for r in rules {
            p.apply(r)
                .map_err(|e| Error::invalid(format!("device rule \"{r}\": {e}")))?;
        }
        Ok(p)
    }

    /// Whether everything is allowed (no exceptions): `--privileged`.
    pub fn allows_everything(&self) -> bool {
        self.default_allow && self.exceptions.is_empty()
    }

    pub fn default_allow(&self) -> bool {
        self.default_allow
    }

    pub fn exceptions(&self) -> &[Exception] {
        &self.exceptions
    }

    fn apply(&mut self, r: &DeviceRule) -> std::result::Result<(), String> {
        let access = parse_access(&r.access)?;
        let kind = match r.kind {
            DeviceKind::All => {
                self.default_allow = r.allow;
                self.exceptions.clear();
                return Ok(());
            }
            DeviceKind::Fifo => {
                return Err("FIFOs (type p) are not subject to device access control".into());
            }
            k => k,
        };
        let major = number(r.major, "major")?;
        let minor = number(r.minor, "minor")?;
        if access == 0 {
            return Ok(());
        }
        if r.allow == self.default_allow {
            self.remove(kind, major, minor, access)
        } else {
            match self
                .exceptions
                .iter_mut()
                .find(|e| e.same_device(kind, major, minor))
            {
                Some(e) => e.access |= access,
                None => self.exceptions.push(Exception {
                    kind,
                    major,
                    minor,
                    access,
                }),
            }
            Ok(())
        }
    }

    /// v1 removes only an exception for exactly the same device numbers.
    fn remove(
        &mut self,
        kind: DeviceKind,
        major: Option<u32>,
        minor: Option<u32>,
        access: u8,
    ) -> std::result::Result<(), String> {
        for (mj, mn) in [(None, minor), (major, None), (None, None)] {
            if (mj, mn) == (major, minor) {
                continue;
            }
            if let Some(wide) = self
                .exceptions
                .iter()
                .find(|e| e.same_device(kind, mj, mn) && e.access & access != 0)
            {
                return Err(format!(
                    "cannot punch a hole in the wider rule \"{}\" (cgroup v1 would ignore it)",
                    wide.v1_string()
                ));
            }
        }
        if let Some(i) = self
            .exceptions
            .iter()
            .position(|e| e.same_device(kind, major, minor))
        {
            self.exceptions[i].access &= !access;
            if self.exceptions[i].access == 0 {
                self.exceptions.remove(i);
            }
        }
        Ok(())
    }

    /// Whether the kernel lets a process under this policy have `access`
    /// to a device, with v1's matching: with a default of deny, one
    /// exception must cover all of `access`; with a default of allow, no
    /// exception may cover any of it.
    pub fn allows(&self, kind: DeviceKind, major: u32, minor: u32, access: u8) -> bool {
        let mut hits = self
            .exceptions
            .iter()
            .filter(|e| e.covers(kind, major, minor));
        if self.default_allow {
            !hits.any(|e| e.access & access != 0)
        } else {
            hits.any(|e| access & !e.access == 0)
        }
    }

    /// The writes that put this policy into a v1 devices cgroup, in order:
    /// `a` to reset the default, then each exception to the other file.
    pub fn v1_writes(&self) -> Vec<(&'static str, String)> {
        let (reset, each) = if self.default_allow {
            ("devices.allow", "devices.deny")
        } else {
            ("devices.deny", "devices.allow")
        };
        std::iter::once((reset, "a".to_string()))
            .chain(self.exceptions.iter().map(|e| (each, e.v1_string())))
            .collect()
    }

    /// Whether a v1 `devices.list` shows this policy already. (With a
    /// default of allow, the kernel lists only `a *:* rwm`, so deny
    /// exceptions cannot be seen.)
    pub fn matches_v1_list(&self, list: &str) -> bool {
        let lines: Vec<&str> = list
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if self.default_allow {
            return self.exceptions.is_empty() && lines == ["a *:* rwm"];
        }
        let mut listed = Vec::new();
        for line in lines {
            match parse_v1_line(line) {
                Some(e) => listed.push(e),
                None => return false,
            }
        }
        let mut ours = self.exceptions.clone();
        listed.sort();
        ours.sort();
        listed == ours
    }

    /// The eBPF program that enforces this policy on cgroup v2: the
    /// device's type, access, major and minor from the context into
    /// registers, one block per exception that returns the exception's
    /// verdict when it matches, and the default at the end.
    pub fn bpf_program(&self) -> Vec<Insn> {
        // struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }
        // with access_type = (access << 16) | type.
        let mut p = vec![
            Insn::new(LDX_MEM_W, R2, R1, 0, 0),
            Insn::new(ALU32_AND_K, R2, 0, 0, 0xffff),
            Insn::new(LDX_MEM_W, R3, R1, 0, 0),
            Insn::new(ALU32_RSH_K, R3, 0, 0, 16),
            Insn::new(LDX_MEM_W, R4, R1, 4, 0),
            Insn::new(LDX_MEM_W, R5, R1, 8, 0),
        ];
        let verdict = i32::from(!self.default_allow);
        for e in &self.exceptions {
            // Jumps are filled in with "to the next block" once the block's
            // length is known.
            let mut block = Vec::new();
            let dev_type = match e.kind {
                DeviceKind::Block => DEVCG_DEV_BLOCK,
                _ => DEVCG_DEV_CHAR,
            };
            block.push(Insn::new(JMP_JNE_K, R2, 0, 0, dev_type));
            if e.access != ACC_ALL {
                block.push(Insn::new(ALU32_MOV_X, R1, R3, 0, 0));
                block.push(Insn::new(ALU32_AND_K, R1, 0, 0, i32::from(e.access)));
                if self.default_allow {
                    // A deny exception: any access it names (v1's partial
                    // match).
                    block.push(Insn::new(JMP_JEQ_K, R1, 0, 0, 0));
                } else {
                    // An allow exception: all the access asked for.
                    block.push(Insn::new(JMP_JNE_X, R1, R3, 0, 0));
                }
            }
            if let Some(m) = e.major {
                block.push(Insn::new(JMP_JNE_K, R4, 0, 0, m as i32));
            }
            if let Some(m) = e.minor {
                block.push(Insn::new(JMP_JNE_K, R5, 0, 0, m as i32));
            }
            block.push(Insn::new(ALU32_MOV_K, R0, 0, 0, verdict));
            block.push(Insn::new(EXIT, 0, 0, 0, 0));
            let len = block.len();
            for (i, insn) in block.iter_mut().enumerate() {
                if insn.is_cond_jump() {
                    insn.off = (len - i - 1) as i16;
                }
            }
            p.extend(block);
        }
        p.push(Insn::new(
            ALU32_MOV_K,
            R0,
            0,
            0,
            i32::from(self.default_allow),
        ));
        p.push(Insn::new(EXIT, 0, 0, 0, 0));
        p
    }
}

fn parse_access(s: &str) -> std::result::Result<u8, String> {
    let mut bits = 0;
    for c in s.chars() {
        bits |= match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => return Err(format!("unknown access {c:?} (want some of r, w, m)")),
        };
    }
    Ok(bits)
}

fn access_string(bits: u8) -> String {
    [(ACC_READ, 'r'), (ACC_WRITE, 'w'), (ACC_MKNOD, 'm')]
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|(_, c)| c)
        .collect()
}

/// A device number; negative is OCI's wildcard. Linux's are far below
/// 2^31 (12-bit majors, 20-bit minors), which also keeps them exact as
/// eBPF immediates.
fn number(n: Option<i64>, what: &str) -> std::result::Result<Option<u32>, String> {
    match n {
        None => Ok(None),
        Some(n) if n < 0 => Ok(None),
        Some(n) if n <= i32::MAX as i64 => Ok(Some(n as u32)),
        Some(n) => Err(format!("{what} {n} is out of range")),
    }
}

/// `c 1:3 rwm` from `devices.list`.
fn parse_v1_line(line: &str) -> Option<Exception> {
    let mut it = line.split_whitespace();
    let kind = match it.next()? {
        "c" => DeviceKind::Char,
        "b" => DeviceKind::Block,
        _ => return None,
    };
    let (major, minor) = it.next()?.split_once(':')?;
    let n = |s: &str| -> Option<Option<u32>> {
        if s == "*" {
            Some(None)
        } else {
            s.parse().ok().map(Some)
        }
    };
    let access = parse_access(it.next()?).ok()?;
    Some(Exception {
        kind,
        major: n(major)?,
        minor: n(minor)?,
        access,
    })
}

// ---- cgroup v1 ----

/// Puts `policy` into the v1 devices cgroup at `dir`, unless its
/// `devices.list` shows it already (a reused cgroup: v1 refuses to reset
/// the default of a cgroup that has children).
pub fn apply_v1(dir: &Path, policy: &DevicePolicy) -> Result<()> {
    if let Ok(list) = fs::read_to_string(dir.join("devices.list"))
        && policy.matches_v1_list(&list)
    {
        return Ok(());
    }
    for (file, line) in policy.v1_writes() {
        let path = dir.join(file);
        fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .map_err(|e| {
                Error::internal(format!("cannot write {line:?} to {}: {e}", path.display()))
            })?;
    }
    Ok(())
}

// ---- cgroup v2: eBPF ----

/// One eBPF instruction, laid out as the kernel's `struct bpf_insn`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    /// dst_reg and src_reg, 4 bits each (bitfields: dst first).
    regs: u8,
    pub off: i16,
    pub imm: i32,
}

pub const R0: u8 = 0;
pub const R1: u8 = 1;
pub const R2: u8 = 2;
pub const R3: u8 = 3;
pub const R4: u8 = 4;
pub const R5: u8 = 5;

/// BPF_LDX | BPF_MEM | BPF_W: dst = *(u32 *)(src + off).
pub const LDX_MEM_W: u8 = 0x61;
/// BPF_ALU | BPF_AND | BPF_K: dst &= imm (32-bit).
pub const ALU32_AND_K: u8 = 0x54;
/// BPF_ALU | BPF_RSH | BPF_K: dst >>= imm (32-bit).
pub const ALU32_RSH_K: u8 = 0x74;
/// BPF_ALU | BPF_MOV | BPF_K: dst = imm (32-bit).
pub const ALU32_MOV_K: u8 = 0xb4;
/// BPF_ALU | BPF_MOV | BPF_X: dst = src (32-bit).
pub const ALU32_MOV_X: u8 = 0xbc;
/// BPF_JMP | BPF_JEQ | BPF_K: if dst == imm, pc += off.
pub const JMP_JEQ_K: u8 = 0x15;
/// BPF_JMP | BPF_JNE | BPF_K: if dst != imm, pc += off.
pub const JMP_JNE_K: u8 = 0x55;
/// BPF_JMP | BPF_JNE | BPF_X: if dst != src, pc += off.
pub const JMP_JNE_X: u8 = 0x5d;
/// BPF_JMP | BPF_EXIT: return r0.
pub const EXIT: u8 = 0x95;

/// `BPF_DEVCG_DEV_BLOCK`, `BPF_DEVCG_DEV_CHAR`: the type in the context.
pub const DEVCG_DEV_BLOCK: i32 = 1;
pub const DEVCG_DEV_CHAR: i32 = 2;

impl Insn {
    pub const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        let regs = if cfg!(target_endian = "little") {
            (dst & 0xf) | (src << 4)
        } else {
            (dst << 4) | (src & 0xf)
        };
        Insn {
            code,
            regs,
            off,
            imm,
        }
    }

    pub fn dst(&self) -> u8 {
        if cfg!(target_endian = "little") {
            self.regs & 0xf
        } else {
            self.regs >> 4
        }
    }

    pub fn src(&self) -> u8 {
        if cfg!(target_endian = "little") {
            self.regs >> 4
        } else {
            self.regs & 0xf
        }
    }

    fn is_cond_jump(&self) -> bool {
        matches!(self.code, JMP_JEQ_K | JMP_JNE_K | JMP_JNE_X)
    }
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// A zeroed `union bpf_attr`, larger than any command's part of it (the
/// kernel checks that bytes past what it knows are zero, and writes some
/// outputs, such as a query's `revision`, at fixed offsets).
#[repr(C, align(8))]
struct Attr([u8; 128]);

impl Attr {
    fn new() -> Attr {
        Attr([0; 128])
    }

    fn u32(&mut self, off: usize, v: u32) -> &mut Attr {
        self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
        self
    }

    fn u64(&mut self, off: usize, v: u64) -> &mut Attr {
        self.0[off..off + 8].copy_from_slice(&v.to_ne_bytes());
        self
    }

    fn get_u32(&self, off: usize) -> u32 {
        u32::from_ne_bytes(self.0[off..off + 4].try_into().unwrap())
    }

    fn call(&mut self, cmd: libc::c_long) -> io::Result<libc::c_long> {
        // SAFETY: bpf(2) with a buffer of the size passed; pointers put into
        // it by the callers outlive the call.
        let r = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                cmd,
                self.0.as_mut_ptr(),
                std::mem::size_of::<Attr>(),
            )
        };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r)
        }
    }
}

fn fd_from(r: libc::c_long) -> OwnedFd {
    // SAFETY: the kernel just returned this fd to us.
    unsafe { OwnedFd::from_raw_fd(r as i32) }
}

/// Loads a `BPF_PROG_TYPE_CGROUP_DEVICE` program. On failure the
/// verifier's log is in the error.
pub fn load_program(insns: &[Insn]) -> io::Result<OwnedFd> {
    const LICENSE: &std::ffi::CStr = c"Apache";
    let mut name = [0u8; 16];
    name[..13].copy_from_slice(b"berth_devices");
    let attr = |log: Option<&mut Vec<u8>>| {
        let mut a = Attr::new();
        a.u32(0, BPF_PROG_TYPE_CGROUP_DEVICE)
            .u32(4, insns.len() as u32)
            .u64(8, insns.as_ptr() as u64)
            .u64(16, LICENSE.as_ptr() as u64);
        if let Some(buf) = log {
            a.u32(24, 1)
                .u32(28, buf.len() as u32)
                .u64(32, buf.as_mut_ptr() as u64);
        }
        a.0[48..64].copy_from_slice(&name);
        a
    };
    match attr(None).call(BPF_PROG_LOAD) {
        Ok(fd) => Ok(fd_from(fd)),
        Err(e) => {
            let mut log = vec![0u8; 64 * 1024];
            if let Ok(fd) = attr(Some(&mut log)).call(BPF_PROG_LOAD) {
                return Ok(fd_from(fd));
            }
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]);
            let text = text.trim();
            if text.is_empty() {
                Err(e)
            } else {
                Err(io::Error::new(e.kind(), format!("{e}; verifier: {text}")))
            }
        }
    }
}

/// Attaches a loaded device program to the cgroup open at `cgroup`, beside
/// any others (`BPF_F_ALLOW_MULTI`: all of them must allow an access).
pub fn attach_program(cgroup: &OwnedFd, prog: &OwnedFd) -> io::Result<()> {
    Attr::new()
        .u32(0, cgroup.as_raw_fd() as u32)
        .u32(4, prog.as_raw_fd() as u32)
        .u32(8, BPF_CGROUP_DEVICE)
        .u32(12, BPF_F_ALLOW_MULTI)
        .call(BPF_PROG_ATTACH)
        .map(drop)
}

/// Ids of the device programs attached to the cgroup itself (not those
/// inherited from its ancestors).
pub fn attached_programs(cgroup: &OwnedFd) -> io::Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    let mut a = Attr::new();
    a.u32(0, cgroup.as_raw_fd() as u32)
        .u32(4, BPF_CGROUP_DEVICE)
        .u64(16, ids.as_mut_ptr() as u64)
        .u32(24, ids.len() as u32);
    a.call(BPF_PROG_QUERY)?;
    ids.truncate((a.get_u32(24) as usize).min(64));
    Ok(ids)
}

/// Detaches the program with `id` from the cgroup; one gone already is no
/// error.
pub fn detach_program(cgroup: &OwnedFd, id: u32) -> io::Result<()> {
    let prog = match Attr::new().u32(0, id).call(BPF_PROG_GET_FD_BY_ID) {
        Ok(fd) => fd_from(fd),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    match Attr::new()
        .u32(0, cgroup.as_raw_fd() as u32)
        .u32(4, prog.as_raw_fd() as u32)
        .u32(8, BPF_CGROUP_DEVICE)
        .call(BPF_PROG_DETACH)
    {
        Ok(_) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Enforces `policy` on the cgroup v2 directory `dir`: attaches its
/// program, then detaches the programs attached there before (a reused
/// cgroup), so there is no moment without a filter. Allow-all attaches
/// nothing.
pub fn apply_v2(dir: &Path, policy: &DevicePolicy) -> Result<()> {
    let fail = |what: &str, e: io::Error| {
        let hint = if e.raw_os_error() == Some(libc::EPERM) {
            " (device control on cgroup v2 needs CAP_SYS_ADMIN or CAP_BPF)"
        } else {
            ""
        };
        Error::internal(format!("{what} for {}: {e}{hint}", dir.display()))
    };
    let cgroup = nix::fcntl::open(
        dir,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| fail("opening the cgroup", e.into()))?;
    let old =
        attached_programs(&cgroup).map_err(|e| fail("listing the device filters (eBPF)", e))?;
    if !policy.allows_everything() {
        let prog = load_program(&policy.bpf_program())
            .map_err(|e| fail("loading the device filter (eBPF)", e))?;
        attach_program(&cgroup, &prog)
            .map_err(|e| fail("attaching the device filter (eBPF)", e))?;
    }
    for id in old {
        detach_program(&cgroup, id)
            .map_err(|e| fail("detaching an old device filter (eBPF)", e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, Stdio};

    fn docker() -> DevicePolicy {
        DevicePolicy::from_rules(&docker_default_rules()).unwrap()
    }

    fn privileged() -> Vec<DeviceRule> {
        vec![DeviceRule::new(true, DeviceKind::All, None, None, "rwm")]
    }

    #[test]
    fn rules_print_as_v1_lines() {
        let r = docker_default_rules();
        assert_eq!(r[0].v1_string(), "a");
        assert_eq!(r[2].v1_string(), "c 1:3 rwm");
        assert_eq!(r[8].v1_string(), "c 136:* rwm");
        assert_eq!(r[12].v1_string(), "c *:* m");
        assert_eq!(r[13].v1_string(), "b *:* m");
        assert_eq!(r[11].to_string(), "deny c 10:229 rwm");
        assert_eq!(
            DeviceRule::new(true, DeviceKind::Block, Some(8), Some(-1), "rw").v1_string(),
            "b 8:* rw"
        );
    }

    #[test]
    fn rules_come_from_the_oci_spec() {
        let json = serde_json::json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 136, "access": "rwm"},
            {"allow": true, "type": "b", "major": 8, "minor": 0},
            {"allow": true, "type": "u", "major": 4, "minor": 1, "access": "r"},
        ]);
        let oci: Vec<oci_spec::runtime::LinuxDeviceCgroup> = serde_json::from_value(json).unwrap();
        let rules: Vec<DeviceRule> = oci.iter().map(DeviceRule::from).collect();
        assert_eq!(
            rules,
            vec![
                DeviceRule::new(false, DeviceKind::All, None, None, "rwm"),
                DeviceRule::new(true, DeviceKind::Char, Some(136), None, "rwm"),
                DeviceRule::new(true, DeviceKind::Block, Some(8), Some(0), "rwm"),
                DeviceRule::new(true, DeviceKind::Char, Some(4), Some(1), "r"),
            ]
        );
    }

    #[test]
    fn dockers_rules_become_an_allowlist() {
        let p = docker();
        assert!(!p.default_allow());
        // fuse's deny only removes an exception that was never there.
        assert_eq!(p.exceptions().len(), 12);
        let writes = p.v1_writes();
        assert_eq!(writes[0], ("devices.deny", "a".to_string()));
        let allowed: Vec<&str> = writes[1..]
            .iter()
            .inspect(|(f, _)| assert_eq!(*f, "devices.allow"))
            .map(|(_, l)| l.as_str())
            .collect();
        assert_eq!(
            allowed,
            [
                "c 1:5 rwm",
                "c 1:3 rwm",
                "c 1:9 rwm",
                "c 1:8 rwm",
                "c 5:0 rwm",
                "c 5:1 rwm",
                "c 1:7 rwm",
                "c 136:* rwm",
                "c 5:2 rwm",
                "c 10:200 rwm",
                "c *:* m",
                "b *:* m",
            ]
        );
        use DeviceKind::*;
        assert!(p.allows(Char, 1, 3, ACC_READ | ACC_WRITE));
        assert!(p.allows(Char, 136, 7, ACC_READ | ACC_WRITE));
        assert!(p.allows(Block, 8, 0, ACC_MKNOD));
        assert!(!p.allows(Block, 8, 0, ACC_READ));
        assert!(!p.allows(Char, 10, 229, ACC_READ));
        assert!(p.allows(Char, 10, 229, ACC_MKNOD));
        assert!(!p.allows(Char, 1, 1, ACC_READ | ACC_MKNOD));
    }

    #[test]
    fn privileged_allows_everything() {
        let p = DevicePolicy::from_rules(&privileged()).unwrap();
        assert!(p.allows_everything());
        assert_eq!(p.v1_writes(), vec![("devices.allow", "a".to_string())]);
        assert!(p.matches_v1_list("a *:* rwm\n"));
        assert!(!docker().matches_v1_list("a *:* rwm\n"));
    }

    #[test]
    fn emulation_follows_v1() {
        use DeviceKind::*;
        let rule = |allow, kind, major, minor, access: &str| {
            DeviceRule::new(allow, kind, major, minor, access)
        };
        // Accesses of one device merge; a deny takes some away again.
        let p = DevicePolicy::from_rules(&[
            rule(false, All, None, None, ""),
            rule(true, Char, Some(1), Some(3), "r"),
            rule(true, Char, Some(1), Some(3), "w"),
            rule(true, Char, Some(1), Some(5), "rw"),
            rule(false, Char, Some(1), Some(5), "w"),
            rule(true, Block, Some(7), Some(0), "r"),
            rule(false, Block, Some(7), Some(0), "r"),
        ])
        .unwrap();
        assert_eq!(
            p.exceptions()
                .iter()
                .map(|e| e.v1_string())
                .collect::<Vec<_>>(),
            ["c 1:3 rw", "c 1:5 r"]
        );
        // A later `a` starts over.
        let p = DevicePolicy::from_rules(&[
            rule(true, Char, Some(1), Some(3), "r"),
            rule(true, All, None, None, "rwm"),
            rule(false, Block, Some(8), None, "w"),
        ])
        .unwrap();
        assert!(p.default_allow());
        assert!(p.allows(Block, 8, 1, ACC_READ));
        assert!(!p.allows(Block, 8, 1, ACC_WRITE));
        // v1's partial match: a deny exception refuses any of its access.
        assert!(!p.allows(Block, 8, 1, ACC_READ | ACC_WRITE));
        // Holes in a wider exception are refused, as runc does.
        let e = DevicePolicy::from_rules(&[
            rule(false, All, None, None, "rwm"),
            rule(true, Char, Some(10), None, "rwm"),
            rule(false, Char, Some(10), Some(229), "r"),
        ])
        .unwrap_err();
        assert!(e.message().contains("c 10:* rwm"), "{}", e.message());
        // Bad rules.
        for bad in [
            rule(true, Char, Some(1), Some(3), "rx"),
            rule(true, Fifo, None, None, "rwm"),
            rule(true, Char, Some(1 << 40), Some(3), "rwm"),
        ] {
            assert!(DevicePolicy::from_rules(&[bad]).is_err());
        }
        // An empty access is a no-op, as in v1.
        let p = DevicePolicy::from_rules(&[
            rule(false, All, None, None, ""),
            rule(true, Char, None, None, ""),
        ])
        .unwrap();
        assert!(p.exceptions().is_empty());
    }

    #[test]
    fn v1_list_comparison() {
        let p = docker();
        let list = "c 1:5 rwm\nc 1:3 rwm\nc 1:9 rwm\nc 1:8 rwm\nc 5:0 rwm\nc 5:1 rwm\nc 1:7 rwm\n\
                    c 136:* rwm\nc 5:2 rwm\nc 10:200 rwm\nc *:* m\nb *:* m\n";
        assert!(p.matches_v1_list(list));
        assert!(!p.matches_v1_list(&list.replace("b *:* m\n", "")));
        assert!(!p.matches_v1_list(&list.replace("c 1:3 rwm", "c 1:3 rw")));
        assert!(!p.matches_v1_list(""));
    }

    /// Runs `prog` the way the kernel does, over the few instructions the
    /// generator uses.
    fn interpret(prog: &[Insn], kind: DeviceKind, access: u8, major: u32, minor: u32) -> u64 {
        let dev_type = if kind == DeviceKind::Block { 1 } else { 2 };
        let ctx = [(u32::from(access) << 16) | dev_type, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        let mut steps = 0;
        loop {
            steps += 1;
            assert!(steps < 10_000 && pc < prog.len(), "ran off the program");
            let i = prog[pc];
            let (d, s, imm) = (i.dst() as usize, i.src() as usize, i.imm as i64 as u64);
            pc += 1;
            match i.code {
                LDX_MEM_W => {
                    assert_eq!(s, 1, "loads from the context only");
                    r[d] = u64::from(ctx[i.off as usize / 4]);
                }
                ALU32_AND_K => r[d] = (r[d] as u32 & imm as u32) as u64,
                ALU32_RSH_K => r[d] = (r[d] as u32 >> imm) as u64,
                ALU32_MOV_K => r[d] = imm as u32 as u64,
                ALU32_MOV_X => r[d] = r[s] as u32 as u64,
                JMP_JEQ_K | JMP_JNE_K | JMP_JNE_X => {
                    let other = if i.code == JMP_JNE_X { r[s] } else { imm };
                    let jump = (r[d] == other) == (i.code == JMP_JEQ_K);
                    if jump {
                        assert!(i.off > 0, "forward jumps only");
                        pc += i.off as usize;
                    }
                }
                EXIT => return r[0],
                c => panic!("unexpected opcode {c:#x}"),
            }
        }
    }

    #[test]
    fn bpf_program_has_runcs_shape() {
        let prog = docker().bpf_program();
        // Prologue: type, access, major, minor into r2..r5.
        assert_eq!(prog[0], Insn::new(LDX_MEM_W, R2, R1, 0, 0));
        assert_eq!(prog[1], Insn::new(ALU32_AND_K, R2, 0, 0, 0xffff));
        assert_eq!(prog[3], Insn::new(ALU32_RSH_K, R3, 0, 0, 16));
        assert_eq!(prog[4], Insn::new(LDX_MEM_W, R4, R1, 4, 0));
        assert_eq!(prog[5], Insn::new(LDX_MEM_W, R5, R1, 8, 0));
        // First exception, c 1:5 rwm: type, major, minor, allow.
        assert_eq!(
            prog[6..11],
            [
                Insn::new(JMP_JNE_K, R2, 0, 4, DEVCG_DEV_CHAR),
                Insn::new(JMP_JNE_K, R4, 0, 3, 1),
                Insn::new(JMP_JNE_K, R5, 0, 2, 5),
                Insn::new(ALU32_MOV_K, R0, 0, 0, 1),
                Insn::new(EXIT, 0, 0, 0, 0),
            ]
        );
        // Last exception, b *:* m: type and access only.
        let n = prog.len();
        assert_eq!(
            prog[n - 8..],
            [
                Insn::new(JMP_JNE_K, R2, 0, 5, DEVCG_DEV_BLOCK),
                Insn::new(ALU32_MOV_X, R1, R3, 0, 0),
                Insn::new(ALU32_AND_K, R1, 0, 0, i32::from(ACC_MKNOD)),
                Insn::new(JMP_JNE_X, R1, R3, 2, 0),
                Insn::new(ALU32_MOV_K, R0, 0, 0, 1),
                Insn::new(EXIT, 0, 0, 0, 0),
                // The default: deny.
                Insn::new(ALU32_MOV_K, R0, 0, 0, 0),
                Insn::new(EXIT, 0, 0, 0, 0),
            ]
        );
        assert_eq!(std::mem::size_of::<Insn>(), 8);
        let allow_all = DevicePolicy::from_rules(&privileged())
            .unwrap()
            .bpf_program();
        assert_eq!(allow_all.len(), 8);
        assert_eq!(allow_all[6], Insn::new(ALU32_MOV_K, R0, 0, 0, 1));
    }

    #[test]
    fn bpf_program_decides_like_v1() {
        use DeviceKind::*;
        let rule = |allow, kind, major, minor, access: &str| {
            DeviceRule::new(allow, kind, major, minor, access)
        };
        let blacklist = vec![
            rule(true, All, None, None, "rwm"),
            rule(false, Block, Some(8), None, "rw"),
            rule(false, Char, None, Some(3), "w"),
            rule(false, Char, Some(10), Some(229), "m"),
        ];
        let mixed = vec![
            rule(false, All, None, None, "rwm"),
            rule(true, Char, Some(1), None, "r"),
            rule(true, Char, Some(1), Some(3), "rwm"),
            rule(true, Block, None, Some(0), "rm"),
        ];
        for rules in [docker_default_rules(), privileged(), blacklist, mixed] {
            let p = DevicePolicy::from_rules(&rules).unwrap();
            let prog = p.bpf_program();
            for kind in [Char, Block] {
                for access in 1..=ACC_ALL {
                    for (major, minor) in [
                        (1, 3),
                        (1, 5),
                        (1, 1),
                        (5, 2),
                        (136, 4),
                        (8, 0),
                        (8, 3),
                        (10, 229),
                        (10, 200),
                        (254, 0),
                    ] {
                        assert_eq!(
                            interpret(&prog, kind, access, major, minor) == 1,
                            p.allows(kind, major, minor, access),
                            "{rules:?}: {kind:?} {major}:{minor} access {access}"
                        );
                    }
                }
            }
        }
    }

    // ---- the kernel (root, a cgroup2 mount) ----

    /// The cgroup2 mount (on the hybrid layout, `/sys/fs/cgroup/unified`),
    /// or (outside CI) a skip with the reason.
    fn cgroup2_mount() -> Option<std::path::PathBuf> {
        let why = if !nix::unistd::geteuid().is_root() {
            "needs root"
        } else {
            let found = super::super::cgroups::CgroupManager::detect()
                .ok()
                .and_then(|m| {
                    m.hierarchies()
                        .iter()
                        .find(|h| h.unified)
                        .map(|h| h.mount_point.clone())
                });
            match found {
                Some(p) => return Some(p),
                None => "needs a cgroup2 mount",
            }
        };
        crate::util::testing::skip(why);
        None
    }

    /// A block device this host has (`/sys/dev/block/MAJ:MIN`).
    fn host_block_device() -> Option<(u32, u32)> {
        let mut devs: Vec<(u32, u32)> = fs::read_dir("/sys/dev/block")
            .ok()?
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let (a, b) = name.split_once(':')?;
                Some((a.parse().ok()?, b.parse().ok()?))
            })
            .collect();
        // Loop devices last: a disk is the thing worth protecting.
        devs.sort_by_key(|&(major, minor)| (major == 7, major, minor));
        devs.first().copied()
    }

    struct TempCgroup(std::path::PathBuf);

    impl Drop for TempCgroup {
        fn drop(&mut self) {
            // Move anything left back to the root, then remove.
            if let Ok(procs) = fs::read_to_string(self.0.join("cgroup.procs")) {
                for pid in procs.split_whitespace() {
                    if let Ok(pid) = pid.parse::<i32>() {
                        // SAFETY: kill(2) with plain integers.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                }
            }
            for _ in 0..100 {
                match fs::remove_dir(&self.0) {
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                        std::thread::sleep(std::time::Duration::from_millis(20))
                    }
                    _ => break,
                }
            }
            assert!(!self.0.exists(), "left behind: {}", self.0.display());
        }
    }

    #[test]
    fn v2_device_filter_denies_what_the_rules_deny() {
        let Some(mount) = cgroup2_mount() else { return };
        let (bmaj, bmin) = host_block_device().expect("a block device in /sys/dev/block");
        let mut b = [0u8; 6];
        getrandom::fill(&mut b).unwrap();
        let cg = TempCgroup(mount.join(format!("berth-devtest-{}", hex::encode(b))));
        fs::create_dir(&cg.0).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let blk = tmp.path().join("disk");
        let zero = tmp.path().join("zero");

        // Outside the cgroup: the nodes can be made and opened.
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "mknod {b} b {bmaj} {bmin} && mknod {z} c 1 5 && head -c 1 {b} >/dev/null && \
                 head -c 1 {z} >/dev/null && echo open-ok; rm -f {b} {z}",
                b = blk.display(),
                z = zero.display()
            ))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "open-ok\n", "{out:?}");

        // Docker's rules, with /dev/zero (1:5) taken out again.
        let mut rules = docker_default_rules();
        rules.push(DeviceRule::new(
            false,
            DeviceKind::Char,
            Some(1),
            Some(5),
            "rw",
        ));
        apply_v2(&cg.0, &DevicePolicy::from_rules(&rules).unwrap()).unwrap();
        let dir = nix::fcntl::open(
            &cg.0,
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY,
            nix::sys::stat::Mode::empty(),
        )
        .unwrap();
        assert_eq!(attached_programs(&dir).unwrap().len(), 1);

        let script = format!(
            "read _go; head -c 1 /dev/null && echo null-ok; \
             mknod {b} b {bmaj} {bmin} && echo mknod-b-ok; head -c 1 {b} || echo open-b-denied; \
             mknod {z} c 1 5 && echo mknod-c-ok; head -c 1 {z} || echo open-c-denied",
            b = blk.display(),
            z = zero.display()
        );
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        fs::write(cg.0.join("cgroup.procs"), child.id().to_string()).unwrap();
        child.stdin.take().unwrap().write_all(b"go\n").unwrap();
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.signal(), None);
        assert_eq!(
            stdout, "null-ok\nmknod-b-ok\nopen-b-denied\nmknod-c-ok\nopen-c-denied\n",
            "stderr: {stderr}"
        );
        assert_eq!(
            stderr.matches("Operation not permitted").count(),
            2,
            "{stderr}"
        );

        // Applying again replaces the filter; allow-all removes it.
        apply_v2(&cg.0, &docker()).unwrap();
        assert_eq!(attached_programs(&dir).unwrap().len(), 1);
        apply_v2(&cg.0, &DevicePolicy::from_rules(&privileged()).unwrap()).unwrap();
        assert!(attached_programs(&dir).unwrap().is_empty());
    }
}
