//! The push of a running run, on a thread of its own: every couple of seconds (or after the
//! backoff), and once more when the run ends, for a bounded time. It never blocks the run and
//! never fails it: every problem goes into `state.json`.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::push::now_unix;
use super::{push, Settings, State};
use crate::record::store::Store;

/// How often a run looks for new events to send.
const INTERVAL: Duration = Duration::from_secs(2);
/// The timeout of one request of a background push.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The pushing thread of a run.
pub struct Background {
    stop: mpsc::Sender<()>,
    done: mpsc::Receiver<()>,
    _thread: JoinHandle<()>,
}

impl Background {
    /// Start pushing the project's events, when it syncs; `None` when it does not.
    pub fn start(store: &Store) -> Option<Background> {
        let settings = Settings::configured(store)?;
        let store = store.clone();
        let (stop, stop_rx) = mpsc::channel();
        let (done_tx, done) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("sync".into())
            .spawn(move || {
                run(&store, &settings, &stop_rx);
                let _ = done_tx.send(());
            })
            .ok()?;
        Some(Background {
            stop,
            done,
            _thread: thread,
        })
    }

    /// The run ended: push what is left, waiting at most `grace`. What is not sent by then
    /// stays queued for the next run or `spectacular sync push`.
    pub fn finish(self, grace: Duration) -> bool {
        let _ = self.stop.send(());
        self.done.recv_timeout(grace).is_ok()
    }
}

fn run(store: &Store, settings: &Settings, stop: &mpsc::Receiver<()>) {
    let mut unchanged = BTreeMap::new();
    loop {
        let stopping = match stop.recv_timeout(INTERVAL) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => true,
            Err(mpsc::RecvTimeoutError::Timeout) => false,
        };
        let waiting = State::load(&settings.dir)
            .ok()
            .and_then(|s| s.retry_after_unix)
            .is_some_and(|t| t > now_unix());
        // The last push of a run tries even during a backoff: it may be the last chance for
        // a while, and it is bounded by the run's grace.
        if !waiting || stopping {
            match push(store, settings, REQUEST_TIMEOUT, &mut unchanged) {
                Ok(report) => {
                    if let Some(problem) = report.problem {
                        tracing::debug!("sync: {problem}");
                    }
                }
                Err(e) => tracing::debug!("sync: {e}"),
            }
        }
        if stopping {
            return;
        }
    }
}
