//! The PostgreSQL backend.

use std::str::FromStr;

use sqlx::Postgres;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::crypto::SecretKey;
use crate::migrations;

/// A [`crate::Store`] in PostgreSQL.
pub struct PgStore {
    pool: PgPool,
    key: SecretKey,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to `url` (`postgres://user@host:port/db`) and migrates the database.
    pub async fn connect(url: &str, key: SecretKey) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Backend(format!("bad PostgreSQL URL: {e}")))?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Backend(format!("cannot connect to PostgreSQL: {e}")))?;
        migrate(&pool).await?;
        Ok(PgStore { pool, key })
    }

    /// A plain transaction: the revision bump that opens every write takes the row lock
    /// that serialises writers.
    async fn begin_tx(&self) -> Result<sqlx::Transaction<'static, Postgres>, StoreError> {
        self.pool.begin().await.map_err(db_error)
    }
}

/// Runs under sqlx's advisory lock, so replicas starting together migrate once.
async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    let migrator = Migrator::with_migrations(migrations::postgres());
    migrator
        .run(pool)
        .await
        .map_err(|e| StoreError::Backend(format!("PostgreSQL migration failed: {e}")))
}

crate::sql::impl_store!(PgStore, Postgres);
crate::identity::impl_identity!(PgStore, Postgres);
