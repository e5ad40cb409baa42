//! The engine's side of notifications: each durable event offered to the project's webhooks
//! (never waiting), each delivery's outcome recorded as `notification.sent` or
//! `notification.failed`, the deliveries still in flight waited for (a bounded time) when the
//! engine stops, and on resume the messages a dead engine never recorded as delivered sent
//! again, when what they say still holds.

use std::collections::HashSet;
use std::time::Instant;

use super::*;
use crate::notify::Delivery;
use crate::record::event::Notification;
use crate::schedule::State;

impl Engine {
    /// Offer durable events to the webhooks.
    pub(super) fn offer_notifications(&mut self, events: &[Event]) {
        let Some(notifier) = &self.notifier else {
            return;
        };
        let mut refused = Vec::new();
        for event in events {
            let (queued, full) = notifier.offer(event);
            for (webhook, seq, kind) in queued {
                self.notify_pending.insert((webhook, seq), kind);
            }
            refused.extend(full);
        }
        for delivery in refused {
            self.notified(delivery);
        }
    }

    /// Record how a delivery ended.
    pub(super) fn notified(&mut self, delivery: Delivery) {
        let record = delivery.record;
        self.notify_pending
            .remove(&(record.webhook.clone(), record.event_seq));
        let data = if delivery.sent {
            EventData::NotificationSent(record)
        } else {
            EventData::NotificationFailed(record)
        };
        self.record(data, "engine");
    }

    /// The run ended or waits for a person: give the deliveries in flight the configured
    /// `exit_wait`, then record the ones still in flight as failed.
    pub(super) async fn drain_notifications(&mut self) -> Result<(), Error> {
        // The last events are offered when they become durable.
        self.flush()?;
        let Some(notifier) = &self.notifier else {
            return Ok(());
        };
        let wait = notifier.exit_wait();
        let deadline = notifier.closing();
        while !self.notify_pending.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.rx.recv()).await {
                Ok(Some(Msg::Notified(delivery))) => self.notified(delivery),
                // The run is over: what else arrives is for the next engine (the inbox keeps
                // its commands).
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        let mut left: Vec<_> = self.notify_pending.drain().collect();
        left.sort_by(|a, b| (a.0 .1, &a.0 .0).cmp(&(b.0 .1, &b.0 .0)));
        for ((webhook, seq), kind) in left {
            let error = format!(
                "no answer before the engine stopped (it waits {} for deliveries); the \
                 message may or may not have arrived",
                humantime::format_duration(wait)
            );
            self.record(
                EventData::NotificationFailed(Notification {
                    webhook,
                    kind: kind.as_str().to_string(),
                    event_seq: seq,
                    attempts: 1,
                    status: None,
                    error: Some(error),
                }),
                "engine",
            );
        }
        self.flush()
    }

    /// On resume: send again what a dead engine offered but never recorded as delivered
    /// (sent or failed), when it still holds: a gate or a question still waiting.
    pub(super) fn redeliver(&mut self, events: &[Event]) {
        let Some(notifier) = &self.notifier else {
            return;
        };
        let recorded: HashSet<(&str, u64)> = events
            .iter()
            .filter_map(|e| match &e.data {
                EventData::NotificationSent(n) | EventData::NotificationFailed(n) => {
                    Some((n.webhook.as_str(), n.event_seq))
                }
                _ => None,
            })
            .collect();
        let mut queued_all = Vec::new();
        let mut refused = Vec::new();
        for event in events {
            let EventData::ApprovalRequested(request) = &event.data else {
                continue;
            };
            if self.scheduler.state(&request.phase) != Some(&State::Waiting) {
                continue;
            }
            let (queued, full) =
                notifier.offer_to(event, &|hook| !recorded.contains(&(hook, event.seq)));
            queued_all.extend(queued);
            refused.extend(full);
        }
        for (webhook, seq, kind) in queued_all {
            self.notify_pending.insert((webhook, seq), kind);
        }
        for delivery in refused {
            self.notified(delivery);
        }
    }
}
