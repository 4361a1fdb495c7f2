//! One control plane, and with it one hub, per tenant. Tenants share nothing on the data
//! plane: each has its own registry of upstreams, its own client sessions, its own event loop
//! and its own limits, so one tenant's servers, crashes or load never show up in another's
//! lists or queue behind another's calls.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use switchboard_hub::Hub;
use switchboard_store::{Store, TenantRecord};

use crate::{ControlConfig, ControlError, ControlPlane, now_ms};

/// Builds a tenant's empty hub.
pub type HubFactory = Arc<dyn Fn(&str) -> Hub + Send + Sync>;

/// The tenants this process serves.
pub struct Tenants {
    store: Arc<dyn Store>,
    make_hub: HubFactory,
    config: ControlConfig,
    planes: RwLock<BTreeMap<String, Arc<ControlPlane>>>,
}

/// Tenant names: like server names, so they fit in URLs and logs.
pub fn check_tenant_name(name: &str) -> Result<(), ControlError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(ControlError::Invalid(format!(
            "invalid tenant name {name:?}: use 1-64 letters, digits, '-' or '_', starting with a \
             letter or digit"
        )))
    }
}

impl Tenants {
    /// A registry whose control planes use `config` (with their own tenant) and hubs from
    /// `make_hub`. `default_plane` is the default tenant's plane, already built by the caller.
    pub fn new(
        store: Arc<dyn Store>,
        make_hub: HubFactory,
        config: ControlConfig,
        default_plane: Arc<ControlPlane>,
    ) -> Arc<Tenants> {
        let mut planes = BTreeMap::new();
        planes.insert(default_plane.config().tenant.clone(), default_plane);
        Arc::new(Tenants {
            store,
            make_hub,
            config,
            planes: RwLock::new(planes),
        })
    }

    /// The plane of `tenant`, if this process serves it.
    pub fn get(&self, tenant: &str) -> Option<Arc<ControlPlane>> {
        self.planes
            .read()
            .expect("tenants lock")
            .get(tenant)
            .cloned()
    }

    /// Every plane.
    pub fn all(&self) -> Vec<Arc<ControlPlane>> {
        self.planes
            .read()
            .expect("tenants lock")
            .values()
            .cloned()
            .collect()
    }

    /// The default tenant's plane.
    pub fn default_plane(&self) -> Arc<ControlPlane> {
        self.get(switchboard_store::DEFAULT_TENANT)
            .expect("the default tenant always exists")
    }

    /// The plane of `tenant`, started if new (the flag says so).
    fn start(&self, tenant: &str) -> (Arc<ControlPlane>, bool) {
        if let Some(p) = self.get(tenant) {
            return (p, false);
        }
        let config = ControlConfig {
            tenant: tenant.to_string(),
            ..self.config.clone()
        };
        let plane = ControlPlane::new(self.store.clone(), (self.make_hub)(tenant), config);
        let mut planes = self.planes.write().expect("tenants lock");
        let started = !planes.contains_key(tenant);
        (
            planes.entry(tenant.to_string()).or_insert(plane).clone(),
            started,
        )
    }

    /// Creates a tenant in the store and starts its plane; `Conflict` if it exists.
    pub async fn create(&self, name: &str) -> Result<Arc<ControlPlane>, ControlError> {
        check_tenant_name(name)?;
        self.store
            .insert_tenant(&TenantRecord {
                name: name.to_string(),
                created_at: now_ms(),
            })
            .await
            .map_err(|e| match e {
                switchboard_store::StoreError::Conflict => {
                    ControlError::Conflict(format!("a tenant named {name:?} already exists"))
                }
                e => e.into(),
            })?;
        Ok(self.start(name).0)
    }

    /// Deletes an empty tenant (no servers, no groups) with its users and keys.
    pub async fn delete(&self, name: &str) -> Result<(), ControlError> {
        if name == switchboard_store::DEFAULT_TENANT {
            return Err(ControlError::Invalid(
                "the default tenant cannot be deleted".into(),
            ));
        }
        if !self.store.list_servers(name).await?.is_empty()
            || !self.store.list_groups(name).await?.is_empty()
        {
            return Err(ControlError::Conflict(format!(
                "tenant {name:?} still has servers or groups; delete them first"
            )));
        }
        if !self.store.delete_tenant(name).await? {
            return Err(ControlError::NotFound(format!("no tenant named {name:?}")));
        }
        let plane = self.planes.write().expect("tenants lock").remove(name);
        if let Some(plane) = plane {
            plane.hub().shutdown().await;
        }
        Ok(())
    }

    /// Starts (and reconciles) a plane for every tenant new in the store, and stops those no
    /// longer there.
    pub async fn sync(&self) -> Result<(), ControlError> {
        let listed = self.store.list_tenants().await?;
        let mut started = Vec::new();
        for t in &listed {
            if let (plane, true) = self.start(&t.name) {
                started.push(plane);
            }
        }
        let gone: Vec<Arc<ControlPlane>> = {
            let mut planes = self.planes.write().expect("tenants lock");
            let names: Vec<String> = planes
                .keys()
                .filter(|n| {
                    *n != switchboard_store::DEFAULT_TENANT && !listed.iter().any(|t| &t.name == *n)
                })
                .cloned()
                .collect();
            names.iter().filter_map(|n| planes.remove(n)).collect()
        };
        for plane in gone {
            plane.hub().shutdown().await;
        }
        for plane in started {
            if let Err(e) = plane.reconcile().await {
                tracing::warn!(message = "Reconcile failed.", tenant = %plane.config().tenant, error = %e);
            }
        }
        Ok(())
    }

    /// Follows the store, polling every `every` until `cancel` fires: starts and stops planes
    /// as tenants come and go, and reconciles each plane whose revision is stale (another
    /// replica or process wrote the store).
    pub async fn watch(
        self: Arc<Self>,
        every: Duration,
        cancel: tokio_util::sync::CancellationToken,
    ) {
        let mut seen: Option<(i64, usize)> = None;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            let rev = match self.store.revision().await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(message = "Cannot read the store revision.", error = %e);
                    continue;
                }
            };
            let count = match self.store.list_tenants().await {
                Ok(t) => t.len(),
                Err(_) => continue,
            };
            if seen.is_none_or(|(_, c)| c != count)
                && let Err(e) = self.sync().await
            {
                tracing::warn!(message = "Tenant sync failed.", error = %e);
            }
            seen = Some((rev, count));
            for plane in self.all() {
                plane.reconcile_if_stale(rev).await;
            }
        }
    }

    /// Catches up with the store now (a replica said it changed): starts or stops tenants
    /// that came or went, and reconciles every tenant whose revision is stale.
    pub async fn reconcile_now(&self) {
        let rev = match self.store.revision().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(message = "Cannot read the store revision.", error = %e);
                return;
            }
        };
        let known = self.all().len();
        if self
            .store
            .list_tenants()
            .await
            .is_ok_and(|t| t.len() != known)
            && let Err(e) = self.sync().await
        {
            tracing::warn!(message = "Tenant sync failed.", error = %e);
        }
        for plane in self.all() {
            plane.reconcile_if_stale(rev).await;
        }
    }

    /// Stops every tenant's upstreams.
    pub async fn shutdown(&self) {
        for plane in self.all() {
            plane.hub().shutdown().await;
        }
    }
}
