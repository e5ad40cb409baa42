//! What identifies a process beyond its pid, which the kernel reuses: the boot it runs in and
//! its start time. The process-group ledger records both for every group the engine starts,
//! and a later engine signals a recorded group only when its leader still has them.
//!
//! Linux reads `/proc/sys/kernel/random/boot_id` and field 22 of `/proc/<pid>/stat` (the start
//! time in clock ticks since boot); macOS asks `sysctl kern.boottime` and `proc_pidinfo`.
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

/// The start time of the calling process. Safe to call between `fork` and `exec`: it neither
/// allocates nor takes locks.
pub fn own_start() -> Option<u64> {
    imp::own_start()
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

    pub(super) fn process(pid: i32) -> Option<Process> {
        let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
        parse_stat(&stat)
    }

    pub(super) fn own_start() -> Option<u64> {
        let mut buffer = [0u8; 2048];
        // SAFETY: open/read/close on a NUL-terminated literal and a stack buffer we own; all
        // three are async-signal-safe.
        let read = unsafe {
            let fd = libc::open(
                c"/proc/self/stat".as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC,
            );
            if fd < 0 {
                return None;
            }
            let n = libc::read(fd, buffer.as_mut_ptr().cast(), buffer.len());
            libc::close(fd);
            n
        };
        let n = usize::try_from(read).ok()?;
        parse_stat(&buffer[..n]).map(|p| p.start)
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

    pub(super) fn process(pid: i32) -> Option<Process> {
        let info = info(pid)?;
        Some(Process {
            pgid: i32::try_from(info.pbi_pgid).ok()?,
            start: start(&info),
        })
    }

    pub(super) fn own_start() -> Option<u64> {
        // SAFETY: getpid cannot fail.
        info(unsafe { libc::getpid() }).map(|i| start(&i))
    }
}

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
mod imp {
    use super::Process;

    pub(super) fn process(_pid: i32) -> Option<Process> {
        None
    }

    pub(super) fn own_start() -> Option<u64> {
        None
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
        assert_eq!(Some(me.start), own_start());
        assert!(boot_id().is_some_and(|b| b.len() > 8));
    }
}
