//! The SQLite projection, brought up to date on a thread of its own: SQLite may wait out its
//! busy timeout while another process writes, and the event loop must keep draining pipes and
//! answering Ctrl-C meanwhile. Batches are applied in the order they were committed.

use std::sync::mpsc;
use std::thread::JoinHandle;

use crate::record::{Event, Projection};

pub(super) struct Projector {
    tx: Option<mpsc::Sender<Vec<Event>>>,
    thread: Option<JoinHandle<()>>,
}

impl Projector {
    pub(super) fn new(mut projection: Projection) -> Projector {
        let (tx, rx) = mpsc::channel::<Vec<Event>>();
        let thread = std::thread::Builder::new()
            .name("projection".into())
            .spawn(move || {
                for batch in rx {
                    if let Err(e) = projection.apply(&batch) {
                        tracing::warn!(
                            "could not update the projection ({e}); it will be rebuilt from the log"
                        );
                        return;
                    }
                }
            });
        match thread {
            Ok(thread) => Projector {
                tx: Some(tx),
                thread: Some(thread),
            },
            Err(e) => {
                tracing::warn!(
                    "the projection is not kept up to date ({e}); it will be rebuilt from the log"
                );
                Projector {
                    tx: None,
                    thread: None,
                }
            }
        }
    }

    /// Apply committed events (later).
    pub(super) fn send(&self, events: Vec<Event>) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(events);
        }
    }

    /// Wait until everything sent is applied.
    pub(super) async fn finish(&mut self) {
        self.tx = None;
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}
