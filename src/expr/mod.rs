//! The one place that builds bounded evaluators: Rhai engines for policy hooks and mission
//! expressions (`if`, `for_each`), and minijinja environments for templates. Every evaluation
//! runs inside [`bounded`], which arms a per-evaluation budget on the current thread: counted
//! operations (including those of closures called from native functions, which Rhai's own
//! counter loses), a wall-clock deadline, and the [`Interrupt`] installed on the thread.
//!
//! This module is a leaf: it knows Rhai, minijinja and JSON, and nothing of missions, policies
//! or runs.
//!
//! # Interrupting evaluations
//!
//! An evaluation stops at its deadline ([`DEADLINE`]) whatever it does. To stop it sooner (on
//! Ctrl-C or `cancel`), the thread that evaluates installs an [`Interrupt`] and another thread
//! (or a signal handler: [`Interrupt::trigger`] only stores an atomic) triggers it:
//!
//! ```
//! use spectacular::expr::Interrupt;
//! let interrupt = Interrupt::new();
//! let _installed = interrupt.install(); // evaluations on this thread now watch it
//! let remote = interrupt.clone();
//! std::thread::spawn(move || remote.trigger()).join().unwrap();
//! assert!(interrupt.is_triggered());
//! ```
//!
//! Once triggered, every running and later evaluation on that thread fails with
//! [`INTERRUPTED`] until [`Interrupt::clear`]; an evaluation that failed so says nothing about
//! the script and must not be recorded as its outcome.

pub mod script;
pub mod template;

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use script::{check_expression, expression_engine, SyntaxError};

/// Operations one evaluation may run, closures called from native functions included.
pub const MAX_OPERATIONS: u64 = 1_000_000;
/// Nested function calls.
pub const MAX_CALL_LEVELS: usize = 32;
/// Bytes of one string.
pub const MAX_STRING_SIZE: usize = 1 << 20;
/// Items of one array (nested arrays count their items too).
pub const MAX_ARRAY_SIZE: usize = 100_000;
/// Entries of one map.
pub const MAX_MAP_SIZE: usize = 10_000;
/// Wall-clock time one evaluation may take.
pub const DEADLINE: Duration = Duration::from_millis(250);
/// Instructions one template rendering may execute (minijinja fuel).
pub const TEMPLATE_FUEL: u64 = 1_000_000;
/// Bytes one template rendering may produce.
pub const MAX_TEMPLATE_OUTPUT: usize = 4 << 20;
/// Nesting of template blocks, loops and macro calls (minijinja's recursion counter).
pub const TEMPLATE_RECURSION: usize = 100;

/// The message of an evaluation stopped by its [`Interrupt`].
pub const INTERRUPTED: &str = "interrupted: the engine is stopping";

/// A flag that stops the evaluations of the threads it is installed on. Cloning shares it.
#[derive(Clone, Debug, Default)]
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    pub fn new() -> Interrupt {
        Interrupt::default()
    }

    /// Stop every evaluation watching this flag. Async-signal-safe (one atomic store).
    pub fn trigger(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Let evaluations run again.
    pub fn clear(&self) {
        self.0.store(false, Ordering::SeqCst);
    }

    pub fn is_triggered(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Make evaluations on the current thread watch this flag until the guard is dropped
    /// (the previously installed flag is watched again then).
    #[must_use = "the flag is watched only while the guard lives"]
    pub fn install(&self) -> Installed {
        let previous = INSTALLED.with(|i| i.replace(Some(self.clone())));
        Installed { previous }
    }

    /// The flag installed on the current thread, if any.
    pub fn current() -> Option<Interrupt> {
        INSTALLED.with(|i| i.borrow().clone())
    }
}

/// Keeps an [`Interrupt`] installed on the current thread; see [`Interrupt::install`].
#[derive(Debug)]
pub struct Installed {
    previous: Option<Interrupt>,
}

impl Drop for Installed {
    fn drop(&mut self) {
        let previous = self.previous.take();
        INSTALLED.with(|i| *i.borrow_mut() = previous);
    }
}

thread_local! {
    static INSTALLED: RefCell<Option<Interrupt>> = const { RefCell::new(None) };
    static BUDGET: RefCell<Option<Budget>> = const { RefCell::new(None) };
    /// Operations counted since the evaluation was armed (or since the last look outside
    /// one): a plain counter, so that counting an operation costs an add and a compare.
    static OPERATIONS: Cell<u64> = const { Cell::new(0) };
}

/// Why a template could not be rendered or an expression evaluated, as people read it: what
/// went wrong (and where in the text, when the engine says), or which limit stopped it.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Error {
    /// The template does not parse, reads a missing variable, or a filter failed.
    #[error("{0}")]
    Template(String),
    /// The script failed or hit a limit other than the budget's.
    #[error("{0}")]
    Script(String),
    /// The rendering grew past [`MAX_TEMPLATE_OUTPUT`].
    #[error("output limit exceeded: the template produced more than {MAX_TEMPLATE_OUTPUT} bytes")]
    OutputLimit,
    /// The rendering produced bytes that are not UTF-8.
    #[error("the template produced text that is not UTF-8")]
    NotUtf8,
    /// The budget stopped the evaluation (operations, deadline, interrupt).
    #[error("{}", .0.message())]
    Stopped(Stop),
    /// A shell word cannot hold a NUL byte.
    #[error("a NUL byte cannot be passed to a shell")]
    NulInShellWord,
}

/// Why an evaluation was stopped by its budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    Operations,
    Deadline,
    Interrupted,
}

impl Stop {
    /// The message people read.
    pub fn message(self) -> String {
        match self {
            Stop::Operations => format!(
                "operation limit exceeded: more than {MAX_OPERATIONS} operations (closures included)"
            ),
            Stop::Deadline => format!(
                "wall-clock limit exceeded: the evaluation ran longer than {} ms",
                DEADLINE.as_millis()
            ),
            Stop::Interrupted => INTERRUPTED.to_string(),
        }
    }
}

/// The budget of the evaluation running on this thread (its operations are counted in
/// `OPERATIONS`).
struct Budget {
    deadline: Instant,
    interrupt: Option<Interrupt>,
}

/// The deadline and the flag are looked at every this many operations (a power of two).
const CHECK_EVERY: u64 = 256;

/// Run one evaluation with its budget armed on this thread: [`DEADLINE`] of wall-clock time.
pub fn bounded<T>(call: impl FnOnce() -> T) -> T {
    bounded_for(DEADLINE, call)
}

/// Run one evaluation with `limit` of wall-clock time. Nested calls share the outer budget.
pub fn bounded_for<T>(limit: Duration, call: impl FnOnce() -> T) -> T {
    let nested = BUDGET.with(|b| b.borrow().is_some());
    if nested {
        return call();
    }
    BUDGET.with(|b| {
        *b.borrow_mut() = Some(Budget {
            deadline: Instant::now() + limit,
            interrupt: Interrupt::current(),
        })
    });
    OPERATIONS.with(|o| o.set(0));
    // Disarmed even if `call` unwinds.
    struct Disarm;
    impl Drop for Disarm {
        fn drop(&mut self) {
            BUDGET.with(|b| *b.borrow_mut() = None);
            OPERATIONS.with(|o| o.set(0));
        }
    }
    let _disarm = Disarm;
    call()
}

/// Count `n` operations against the running evaluation; `Err` once it must stop. Outside an
/// evaluation, only the installed interrupt is looked at. Called for every operation: the
/// deadline and the interrupt are looked at every `CHECK_EVERY` operations, and only then
/// is the budget itself touched.
#[inline]
pub fn spend(n: u64) -> Result<(), Stop> {
    let (before, after) = OPERATIONS.with(|o| {
        let before = o.get();
        let after = before.saturating_add(n);
        o.set(after);
        (before, after)
    });
    if after <= MAX_OPERATIONS && before / CHECK_EVERY == after / CHECK_EVERY {
        return Ok(());
    }
    look(after)
}

/// The slow half of [`spend`]: the operation limit, the deadline and the interrupt.
#[cold]
#[inline(never)]
fn look(operations: u64) -> Result<(), Stop> {
    BUDGET.with(|b| match b.borrow().as_ref() {
        Some(_) if operations > MAX_OPERATIONS => Err(Stop::Operations),
        Some(budget) => budget.check(),
        None => {
            // Outside an evaluation nothing is counted: only the interrupt is looked at.
            OPERATIONS.with(|o| o.set(0));
            match Interrupt::current() {
                Some(i) if i.is_triggered() => Err(Stop::Interrupted),
                _ => Ok(()),
            }
        }
    })
}

/// Look at the deadline and the interrupt of the running evaluation now.
pub fn check() -> Result<(), Stop> {
    BUDGET.with(|b| match b.borrow().as_ref() {
        Some(budget) => budget.check(),
        None => match Interrupt::current() {
            Some(i) if i.is_triggered() => Err(Stop::Interrupted),
            _ => Ok(()),
        },
    })
}

impl Budget {
    fn check(&self) -> Result<(), Stop> {
        if self.interrupt.as_ref().is_some_and(Interrupt::is_triggered) {
            return Err(Stop::Interrupted);
        }
        if Instant::now() >= self.deadline {
            return Err(Stop::Deadline);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
