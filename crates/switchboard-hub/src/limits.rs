//! Limits on upstream calls: per client session and per credential (refused at once), and
//! the tenant's concurrency slots (waited for, up to the queue timeout).

use std::sync::Arc;

use crate::hub::HubInner;
use crate::session::ClientSession;

/// One upstream call counted against its session and credential; released when dropped.
pub(crate) struct CallClaim {
    hub: Arc<HubInner>,
    session: Arc<ClientSession>,
    credential: Option<String>,
}

impl Drop for CallClaim {
    fn drop(&mut self) {
        self.session
            .calls
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        if let Some(key) = &self.credential {
            let mut counts = self
                .hub
                .credential_calls
                .lock()
                .expect("credential calls lock");
            if let Some(n) = counts.get_mut(key) {
                *n -= 1;
                if *n == 0 {
                    counts.remove(key);
                }
            }
        }
    }
}

impl HubInner {
    /// Counts one more upstream call for `session` and its credential, or refuses it at once
    /// when either already has its limit in flight (so one client cannot use up the
    /// tenant's slots and make the others wait).
    pub(crate) fn claim_call(
        self: &Arc<Self>,
        session: &Arc<ClientSession>,
    ) -> Result<CallClaim, String> {
        use std::sync::atomic::Ordering;
        let per_session = self.config.max_calls_per_session;
        let before = session.calls.fetch_add(1, Ordering::AcqRel);
        if per_session > 0 && before >= per_session {
            session.calls.fetch_sub(1, Ordering::AcqRel);
            return Err(format!(
                "too many calls in flight for this session (limit {per_session}); wait for one \
                 to finish"
            ));
        }
        let credential = session.credential.get().cloned();
        if let Some(key) = &credential {
            let limit = self.config.max_calls_per_credential;
            let mut counts = self.credential_calls.lock().expect("credential calls lock");
            let n = counts.entry(key.clone()).or_insert(0);
            if limit > 0 && *n >= limit {
                drop(counts);
                session.calls.fetch_sub(1, Ordering::AcqRel);
                return Err(format!(
                    "too many calls in flight for this credential (limit {limit}); wait for one \
                     to finish"
                ));
            }
            *n += 1;
        }
        Ok(CallClaim {
            hub: self.clone(),
            session: session.clone(),
            credential,
        })
    }

    /// Waits for an upstream call slot (`max_concurrent_calls`); `Err` after the queue timeout.
    pub(crate) async fn call_slot(
        &self,
    ) -> Result<Option<tokio::sync::OwnedSemaphorePermit>, String> {
        let Some(slots) = &self.call_slots else {
            return Ok(None);
        };
        match tokio::time::timeout(
            self.config.call_queue_timeout,
            slots.clone().acquire_owned(),
        )
        .await
        {
            Ok(Ok(permit)) => Ok(Some(permit)),
            _ => Err(format!(
                "this tenant has {} upstream calls in flight (its limit) and none finished within \
                 {} ms; retry later",
                self.config.max_concurrent_calls,
                self.config.call_queue_timeout.as_millis()
            )),
        }
    }
}
