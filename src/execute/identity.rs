//! What identifies a process beyond its pid, which the kernel reuses: the boot it runs in and
//! its start time. The process-group ledger records both for every group the engine starts,
//! and a later engine signals a recorded group only when its leader still has them.
//!
//! Linux reads `/proc/sys/kernel/random/boot_id` and field 22 of `/proc/<pid>/stat` (the start
//! time in clock ticks since boot); macOS asks `sysctl kern.boottime` and `proc_pidinfo`.
//! A process whose group is not recorded yet is found by the token in its environment
//! ([`carriers`]: `/proc/<pid>/environ`, `sysctl kern.procargs2`).
//! Elsewhere nothing can be proven, and recorded groups are never signalled.

use std::sync::OnceLock;

/// The identity of the running boot, read once.
pub fn boot_id() -> Option<&'static str> {
    static BOOT: OnceLock<Option<String>> = OnceLock::new();
    BOOT.get_or_init(read_boot_id).as_deref()
}

#[cfg(target_os = "linux")]
fn read_boot_id() -> Option<String> {
    let text = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    Some(text.trim().to_string()).filter(|id| !id.is_empty())
}

#[cfg(target_os = "macos")]
fn read_boot_id() -> Option<String> {
    let mut mib = [libc::CTL_KERN, libc::KERN_BOOTTIME];
    let mut boot = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    let mut size = std::mem::size_of::<libc::timeval>();
    // SAFETY: sysctl writes at most `size` bytes into `boot`, a timeval we own.
    let rc = unsafe {
        libc::sysctl(
            mib.as_mut_ptr(),
            2,
            (&mut boot as *mut libc::timeval).cast(),
            &mut size,
            std::ptr::null_mut(),
            0,
        )
    };
    (rc == 0).then(|| format!("{}.{:06}", boot.tv_sec, boot.tv_usec))
}

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
fn read_boot_id() -> Option<String> {
    None
}

/// The start time of process `pid` and the process group it is in, if it exists.
pub fn process(pid: i32) -> Option<Process> {
    imp::process(pid)
}

/// The processes whose initial environment holds `variable` (a `NAME=value` entry, exactly):
/// the ones a spawn's token marks, found again by a later engine. Only processes this user may
/// read are seen; elsewhere than Linux and macOS, none.
pub fn carriers(variable: &str) -> Vec<i32> {
    let mut needle = Vec::with_capacity(variable.len() + 2);
    needle.push(0);
    needle.extend_from_slice(variable.as_bytes());
    needle.push(0);
    imp::carriers(&needle)
}

/// The parent of process `pid`, if it exists (and can be known here).
pub fn parent(pid: i32) -> Option<i32> {
    imp::parent(pid).filter(|p| *p > 0)
}

/// The first of `variables` (`NAME=value` entries) the initial environment of process `pid`
/// holds, exactly. Only processes this user may read are seen; elsewhere than Linux and
/// macOS, none.
pub fn holds_one_of(pid: i32, variables: &[String]) -> Option<&str> {
    let block = imp::environment(pid)?;
    variables.iter().map(String::as_str).find(|variable| {
        let mut needle = Vec::with_capacity(variable.len() + 2);
        needle.push(0);
        needle.extend_from_slice(variable.as_bytes());
        needle.push(0);
        holds(&block, &needle)
    })
}

/// Does a block of NUL-separated strings hold `needle` (`\0NAME=value\0`) as one of them?
#[cfg_attr(not(any(target_os = "linux", target_os = "macos")), allow(dead_code))]
fn holds(block: &[u8], needle: &[u8]) -> bool {
    let mut framed = Vec::with_capacity(block.len() + 2);
    framed.push(0);
    framed.extend_from_slice(block);
    framed.push(0);
    memchr::memmem::find(&framed, needle).is_some()
}

/// A live process as the kernel describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Process {
    pub pgid: i32,
    /// Clock ticks since boot on Linux, microseconds since the epoch on macOS.
    pub start: u64,
}

#[cfg(target_os = "linux")]
mod imp {
    use super::Process;

    /// The process group (field 5) and start time (field 22) of a `/proc/<pid>/stat` line.
    /// The command name (field 2) is in parentheses and may hold spaces and parentheses;
    /// the fields after the last `)` are plain numbers. Does not allocate.
    pub(super) fn parse_stat(stat: &[u8]) -> Option<Process> {
        let close = stat.iter().rposition(|b| *b == b')')?;
        let mut fields = stat[close + 1..]
            .split(|b| *b == b' ')
            .filter(|f| !f.is_empty());
        // Field 3 (the state) comes first.
        let pgid = number(fields.nth(2)?)?;
        let start = number(fields.nth(16)?)?;
        Some(Process {
            pgid: i32::try_from(pgid).ok()?,
            start,
        })
    }

    fn number(field: &[u8]) -> Option<u64> {
        std::str::from_utf8(field).ok()?.trim().parse().ok()
    }

    /// Read on every spawn: one `read` into a buffer on the stack (a stat line is a few
    /// hundred bytes; `/proc` reports its size as 0, so `fs::read` would grow a buffer over
    /// six reads).
    pub(super) fn process(pid: i32) -> Option<Process> {
        use std::io::Read as _;
        let mut file = std::fs::File::open(format!("/proc/{pid}/stat")).ok()?;
        let mut buffer = [0u8; 4096];
        let mut len = 0;
        while len < buffer.len() {
            match file.read(&mut buffer[len..]) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        }
        if len == buffer.len() {
            // Longer than any stat line the kernel writes: read it whole rather than guess.
            return parse_stat(&std::fs::read(format!("/proc/{pid}/stat")).ok()?);
        }
        parse_stat(&buffer[..len])
    }

    /// Field 4 of `/proc/<pid>/stat`.
    pub(super) fn parent(pid: i32) -> Option<i32> {
        let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
        let close = stat.iter().rposition(|b| *b == b')')?;
        let mut fields = stat[close + 1..]
            .split(|b| *b == b' ')
            .filter(|f| !f.is_empty());
        i32::try_from(number(fields.nth(1)?)?).ok()
    }

    pub(super) fn environment(pid: i32) -> Option<Vec<u8>> {
        std::fs::read(format!("/proc/{pid}/environ")).ok()
    }

    pub(super) fn carriers(needle: &[u8]) -> Vec<i32> {
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        dir.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/environ"))
                    .is_ok_and(|environ| super::holds(&environ, needle))
            })
            .collect()
    }
}

#[cfg(target_os = "macos")]
mod imp {
    use super::Process;

    fn info(pid: i32) -> Option<libc::proc_bsdinfo> {
        // SAFETY: a zeroed plain C struct, filled by proc_pidinfo up to its size.
        let mut info: libc::proc_bsdinfo = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::proc_bsdinfo>() as libc::c_int;
        // SAFETY: proc_pidinfo writes at most `size` bytes into `info`; it is a system call,
        // safe between fork and exec.
        let written = unsafe {
            libc::proc_pidinfo(
                pid,
                libc::PROC_PIDTBSDINFO,
                0,
                (&mut info as *mut libc::proc_bsdinfo).cast(),
                size,
            )
        };
        (written == size).then_some(info)
    }

    fn start(info: &libc::proc_bsdinfo) -> u64 {
        info.pbi_start_tvsec * 1_000_000 + info.pbi_start_tvusec
    }

    pub(super) fn parent(pid: i32) -> Option<i32> {
        i32::try_from(info(pid)?.pbi_ppid).ok()
    }

    pub(super) fn environment(pid: i32) -> Option<Vec<u8>> {
        arguments(pid)
    }

    pub(super) fn process(pid: i32) -> Option<Process> {
        let info = info(pid)?;
        Some(Process {
            pgid: i32::try_from(info.pbi_pgid).ok()?,
            start: start(&info),
        })
    }

    /// The arguments and environment of `pid` (`sysctl kern.procargs2`).
    fn arguments(pid: i32) -> Option<Vec<u8>> {
        let mut mib = [libc::CTL_KERN, libc::KERN_PROCARGS2, pid];
        let mut size: libc::size_t = 0;
        // SAFETY: asking for the size only (a null buffer).
        let rc = unsafe {
            libc::sysctl(
                mib.as_mut_ptr(),
                3,
                std::ptr::null_mut(),
                &mut size,
                std::ptr::null_mut(),
                0,
            )
        };
        if rc != 0 || size == 0 {
            return None;
        }
        let mut buffer = vec![0u8; size];
        // SAFETY: sysctl writes at most `size` bytes into `buffer`, which holds that many.
        let rc = unsafe {
            libc::sysctl(
                mib.as_mut_ptr(),
                3,
                buffer.as_mut_ptr().cast(),
                &mut size,
                std::ptr::null_mut(),
                0,
            )
        };
        (rc == 0).then(|| {
            buffer.truncate(size);
            buffer
        })
    }

    pub(super) fn carriers(needle: &[u8]) -> Vec<i32> {
        // SAFETY: with a null buffer, proc_listallpids returns how many processes there are.
        let count = unsafe { libc::proc_listallpids(std::ptr::null_mut(), 0) };
        let Ok(count) = usize::try_from(count) else {
            return Vec::new();
        };
        // Room for processes started meanwhile.
        let mut pids = vec![0 as libc::pid_t; count + 64];
        let bytes = (pids.len() * std::mem::size_of::<libc::pid_t>()) as libc::c_int;
        // SAFETY: proc_listallpids writes at most `bytes` bytes into `pids`.
        let found = unsafe { libc::proc_listallpids(pids.as_mut_ptr().cast(), bytes) };
        let Ok(found) = usize::try_from(found) else {
            return Vec::new();
        };
        pids.truncate(found.min(pids.len()));
        pids.into_iter()
            .filter(|&pid| pid > 0)
            .filter(|&pid| arguments(pid).is_some_and(|block| super::holds(&block, needle)))
            .collect()
    }
}

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
mod imp {
    use super::Process;

    pub(super) fn process(_pid: i32) -> Option<Process> {
        None
    }

    pub(super) fn parent(_pid: i32) -> Option<i32> {
        None
    }

    pub(super) fn environment(_pid: i32) -> Option<Vec<u8>> {
        None
    }

    pub(super) fn carriers(_needle: &[u8]) -> Vec<i32> {
        Vec::new()
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_is_read_after_the_command_name_whatever_it_holds() {
        let stat = b"4242 (a) b (c) d) S 1 4240 4240 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(
            imp::parse_stat(stat),
            Some(Process {
                pgid: 4240,
                start: 987654
            })
        );
    }

    #[test]
    fn this_process_is_known_by_its_start_time() {
        let me = process(std::process::id() as i32).unwrap();
        assert!(me.start > 0);
        // SAFETY: getpgrp cannot fail.
        assert_eq!(me.pgid, unsafe { libc::getpgrp() });
        assert!(boot_id().is_some_and(|b| b.len() > 8));
    }
}
