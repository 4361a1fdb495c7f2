//! One hub process among several replicas on one PostgreSQL database.
//!
//! [`Replicas::start`] joins the replica bus ([`switchboard_store::bus`]) and gives each
//! tenant's hub its sealed-session key and a relay over the bus. It reacts to what the bus
//! says: a committed store write anywhere reconciles every tenant at once (the revision poll
//! stays as the fallback), an identity write anywhere forgets remembered credential checks,
//! and a hub message goes to the named tenant's hub.

use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use switchboard_hub::seal::SessionSeal;
use switchboard_hub::{EndedSessions, Hub, Relay, RelayMessage};
use switchboard_store::bus::{Bus, BusEvent};
use switchboard_store::{SecretKey, Store};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{Identity, Tenants};

/// What replicas say to each other on the bus.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "to", rename_all = "snake_case")]
enum Envelope {
    /// For one tenant's hub.
    Hub {
        tenant: String,
        message: RelayMessage,
    },
    /// Users, keys, tenants or credentials changed: forget remembered checks.
    Identity,
}

/// The key that seals `tenant`'s session ids, from the secret key every replica shares.
pub fn session_seal(key: &SecretKey, tenant: &str) -> SessionSeal {
    SessionSeal::new(key.derive(&format!("client session ids for tenant {tenant}")))
}

/// The hub relay over the bus (set once the bus is up; until then nothing is relayed).
#[derive(Default)]
pub struct BusRelay {
    bus: OnceLock<Bus>,
}

impl Relay for BusRelay {
    fn publish(&self, tenant: &str, message: RelayMessage) -> bool {
        let Some(bus) = self.bus.get() else {
            return false;
        };
        let text = serde_json::to_string(&Envelope::Hub {
            tenant: tenant.to_string(),
            message,
        })
        .expect("a relay message serialises");
        bus.publish(text)
    }
}

/// Ended sessions in the store, so a replica started later (or this one after a restart)
/// never resumes them.
struct StoreLedger(Arc<dyn Store>);

impl EndedSessions for StoreLedger {
    fn record(
        &self,
        tenant: &str,
        id_hash: &str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        let (store, tenant, hash) = (self.0.clone(), tenant.to_string(), id_hash.to_string());
        Box::pin(async move {
            if let Err(e) = store
                .end_client_session(&tenant, &hash, crate::now_ms())
                .await
            {
                tracing::warn!(message = "Cannot record an ended session; a replica started later could resume it.", tenant = %tenant, error = %e);
            }
        })
    }
}

/// How long ended sessions are kept: as long as a sealed id can be resumed.
const ENDED_KEPT_MS: i64 = switchboard_hub::seal::SEALED_MAX_AGE_SECS as i64 * 1000;

/// This process's membership in the group of replicas.
pub struct Replicas {
    key: SecretKey,
    relay: Arc<BusRelay>,
    ledger: Arc<StoreLedger>,
}

impl Replicas {
    /// Sealed sessions with `key`, ended ones kept in `store`; no relay until
    /// [`Replicas::start`].
    pub fn new(key: SecretKey, store: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Replicas {
            key,
            relay: Arc::new(BusRelay::default()),
            ledger: Arc::new(StoreLedger(store)),
        })
    }

    /// Makes `hub` (tenant `tenant`'s) resumable on any replica and relayed through the bus.
    pub fn join(&self, tenant: &str, hub: &Hub) {
        let relay: Arc<dyn Relay> = self.relay.clone();
        let ledger: Arc<dyn EndedSessions> = self.ledger.clone();
        hub.join_replicas(
            tenant,
            session_seal(&self.key, tenant),
            Some(relay),
            Some(ledger),
        );
    }

    /// Gives every tenant's hub the sessions ended before this process started, then
    /// forgets, every hour, those too old to be resumed anyway.
    pub async fn load_ended(
        self: &Arc<Self>,
        tenants: &Tenants,
        cancel: CancellationToken,
    ) -> Result<usize, switchboard_store::StoreError> {
        let store = self.ledger.0.clone();
        let ended = store
            .ended_client_sessions(crate::now_ms() - ENDED_KEPT_MS)
            .await?;
        let count = ended.len();
        let mut by_tenant: std::collections::HashMap<String, Vec<String>> = Default::default();
        for (tenant, hash) in ended {
            by_tenant.entry(tenant).or_default().push(hash);
        }
        for (tenant, hashes) in by_tenant {
            if let Some(plane) = tenants.get(&tenant) {
                plane.hub().preload_ended(hashes);
            }
        }
        tokio::spawn(async move {
            loop {
                if let Err(e) = store
                    .forget_ended_sessions_before(crate::now_ms() - ENDED_KEPT_MS)
                    .await
                {
                    tracing::warn!(message = "Cannot forget old ended sessions.", error = %e);
                }
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(std::time::Duration::from_secs(3600)) => {}
                }
            }
        });
        Ok(count)
    }

    /// Joins the bus on PostgreSQL at `url` as replica `origin` and serves it until `cancel`.
    pub async fn start(
        self: &Arc<Self>,
        url: &str,
        origin: String,
        tenants: Arc<Tenants>,
        identity: Arc<Identity>,
        cancel: CancellationToken,
    ) -> Result<(), switchboard_store::StoreError> {
        let (bus, events) = Bus::start(url, origin, cancel.clone()).await?;
        let _ = self.relay.bus.set(bus.clone());
        let tell = bus.clone();
        identity.on_write(Arc::new(move || {
            tell.publish(serde_json::to_string(&Envelope::Identity).expect("serialises"));
        }));
        tokio::spawn(serve_bus(events, tenants, identity, cancel));
        tracing::info!(message = "Joined the replica bus on PostgreSQL.", replica = %bus.origin());
        Ok(())
    }
}

async fn serve_bus(
    mut events: mpsc::Receiver<BusEvent>,
    tenants: Arc<Tenants>,
    identity: Arc<Identity>,
    cancel: CancellationToken,
) {
    loop {
        let event = tokio::select! {
            _ = cancel.cancelled() => return,
            e = events.recv() => match e { Some(e) => e, None => return },
        };
        match event {
            BusEvent::Changed => tenants.reconcile_now().await,
            BusEvent::Reconnected => {
                identity.invalidate();
                tenants.reconcile_now().await;
            }
            BusEvent::Message(text) => match serde_json::from_str::<Envelope>(&text) {
                Ok(Envelope::Identity) => identity.invalidate(),
                Ok(Envelope::Hub { tenant, message }) => {
                    if let Some(plane) = tenants.get(&tenant) {
                        let hub = plane.hub().clone();
                        tokio::spawn(async move { hub.relayed(message).await });
                    }
                }
                Err(e) => {
                    tracing::warn!(message = "Ignored a message from another replica that this version does not understand.", error = %e);
                }
            },
        }
    }
}
