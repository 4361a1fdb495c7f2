//! The PostgreSQL backend.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{Connection, Postgres};

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
    /// Connects to `url` (`postgres://user@host:port/db`, `?sslmode=require` for TLS) and
    /// migrates the database.
    ///
    /// One connection is opened first, within [`CONNECT_TIMEOUT`], so a wrong URL (host, port,
    /// database name, credentials, TLS) fails at once with the driver's reason and the
    /// address, instead of the pool retrying a refused connection until its deadline.
    pub async fn connect(url: &str, key: SecretKey) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Backend(format!("bad PostgreSQL URL: {e}")))?;
        let target = describe(&options);
        match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options)).await {
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
            }
            Ok(Err(e)) => {
                return Err(StoreError::Backend(format!(
                    "cannot connect to PostgreSQL at {target}: {e}"
                )));
            }
            Err(_) => {
                return Err(StoreError::Backend(format!(
                    "cannot connect to PostgreSQL at {target}: no answer within {} s",
                    CONNECT_TIMEOUT.as_secs()
                )));
            }
        }
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|e| {
                StoreError::Backend(format!("cannot connect to PostgreSQL at {target}: {e}"))
            })?;
        migrate(&pool).await?;
        Ok(PgStore { pool, key })
    }

    /// Run by every write transaction after the revision bump: tells the other replicas
    /// (`LISTEN switchboard_changes`, see [`crate::bus`]) when the write commits.
    const ON_WRITE: Option<&'static str> = Some("SELECT pg_notify('switchboard_changes', '')");

    /// A plain transaction: the revision bump that opens every write takes the row lock
    /// that serialises writers.
    async fn begin_tx(&self) -> Result<sqlx::Transaction<'static, Postgres>, StoreError> {
        self.pool.begin().await.map_err(db_error)
    }
}

/// How long opening the store may take to reach PostgreSQL.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(4);
/// How long a request waits for a pooled connection (a new one is opened if none is idle)
/// before the store reports itself unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// `host:port/database as user`, or the socket path, for error messages (no password).
fn describe(options: &PgConnectOptions) -> String {
    let place = match options.get_socket() {
        Some(path) => path.display().to_string(),
        None => format!("{}:{}", options.get_host(), options.get_port()),
    };
    let user = options.get_username();
    let db = options.get_database().unwrap_or(user);
    format!("{place} (database {db:?}, user {user:?})")
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
crate::activity::impl_activity!(PgStore);

impl PgStore {
    /// Appends activity rows in one transaction, as INSERTs of up to
    /// [`crate::activity::PG_STATEMENT_ROWS`] rows built per batch (measured to keep up with
    /// 10,000 rows/s here; cached statements of fixed sizes fell behind).
    async fn append_activity(
        &self,
        rows: std::sync::Arc<[crate::ActivityRow]>,
    ) -> Result<(), crate::StoreError> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        for chunk in rows.chunks(crate::activity::PG_STATEMENT_ROWS) {
            let mut qb = sqlx::QueryBuilder::<Postgres>::new(crate::activity::INSERT_ACTIVITY);
            qb.push_values(chunk, |mut b, r| {
                b.push_bind(r.at)
                    .push_bind(r.tenant.as_str())
                    .push_bind(r.principal.as_deref())
                    .push_bind(r.endpoint.as_str())
                    .push_bind(r.session.as_deref())
                    .push_bind(r.server.as_deref())
                    .push_bind(r.method.as_str())
                    .push_bind(r.target.as_deref())
                    .push_bind(r.status.as_str())
                    .push_bind(r.error_type.as_deref())
                    .push_bind(r.error.as_deref())
                    .push_bind(r.duration_us)
                    .push_bind(r.bytes_in)
                    .push_bind(r.bytes_out)
                    .push_bind(r.trace_id.as_deref())
                    .push_bind(r.protocol.as_deref())
                    .push_bind(r.request.as_deref())
                    .push_bind(r.response.as_deref());
            });
            qb.build().execute(&mut *tx).await.map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)
    }
}
