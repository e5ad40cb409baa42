//! Crash points for the crash tests: in a test build, `point(name)` kills the process with
//! SIGKILL when `SPECTACULAR_TEST_CRASH_AT` names it, so a test can stop the engine between
//! any two of its writes. In other builds it is nothing.

/// The variable naming the crash point a test process dies at.
#[cfg(test)]
pub const VAR: &str = "SPECTACULAR_TEST_CRASH_AT";

#[cfg(test)]
pub fn point(name: &str) {
    if std::env::var(VAR).is_ok_and(|at| at == name) {
        // SAFETY: signalling ourselves; no memory is involved.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

#[cfg(not(test))]
#[inline(always)]
pub fn point(_name: &str) {}
