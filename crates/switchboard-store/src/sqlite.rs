//! The SQLite backend: one file (or one in-memory database) with WAL journaling.

use std::str::FromStr;
use std::time::Duration;

use sqlx::Sqlite;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use crate::appender::Appender;
use crate::crypto::SecretKey;
use crate::migrations;

/// A [`crate::Store`] in SQLite.
pub struct SqliteStore {
    pool: SqlitePool,
    key: SecretKey,
    /// The activity log's own connection (a file database only: an in-memory one is private
    /// to the pool's single connection).
    appender: Option<Appender>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating it if missing) and migrates the database at `url`: `sqlite:///abs/path.db`,
    /// `sqlite://relative.db` or `sqlite::memory:` (a private database that lives as long as
    /// the store, served by a single connection).
    pub async fn connect(url: &str, key: SecretKey) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Backend(format!("bad SQLite URL {url:?}: {e}")))?
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let appender = (!is_memory(url)).then(|| Appender::new(options.get_filename().into()));
        let pool = if is_memory(url) {
            memory_pool(options).await
        } else {
            file_pool(options).await
        }
        .map_err(|e| StoreError::Backend(format!("cannot open {url:?}: {e}")))?;
        migrate(&pool).await?;
        Ok(SqliteStore {
            pool,
            key,
            appender,
        })
    }

    /// Nothing to tell: a SQLite store has one replica.
    const ON_WRITE: Option<&'static str> = None;

    /// A write transaction that takes SQLite's write lock up front (`BEGIN IMMEDIATE`), so a
    /// concurrent writer waits for the busy timeout instead of failing on a lock upgrade.
    async fn begin_tx(&self) -> Result<sqlx::Transaction<'static, Sqlite>, StoreError> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db_error)
    }
}

fn is_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

/// One connection that is never retired: closing it would drop the database.
async fn memory_pool(options: SqliteConnectOptions) -> Result<SqlitePool, sqlx::Error> {
    SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_with(options)
        .await
}

async fn file_pool(options: SqliteConnectOptions) -> Result<SqlitePool, sqlx::Error> {
    let options = options.journal_mode(SqliteJournalMode::Wal);
    SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
}

async fn migrate(pool: &SqlitePool) -> Result<(), StoreError> {
    let migrator = Migrator::with_migrations(migrations::sqlite());
    migrator
        .run(pool)
        .await
        .map_err(|e| StoreError::Backend(format!("SQLite migration failed: {e}")))
}

crate::sql::impl_store!(SqliteStore, Sqlite);
crate::identity::impl_identity!(SqliteStore, Sqlite);
crate::activity::impl_activity!(SqliteStore);

impl SqliteStore {
    /// Appends activity rows in one transaction: through the appender's own connection for a
    /// file, else (an in-memory database, for tests and throwaway hubs) one pooled INSERT per
    /// row.
    async fn append_activity(
        &self,
        rows: std::sync::Arc<[crate::ActivityRow]>,
    ) -> Result<(), StoreError> {
        if let Some(appender) = &self.appender {
            return appender.append(rows).await;
        }
        let insert = crate::activity::insert_one();
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        for r in rows.iter() {
            sqlx::query(insert)
                .bind(r.at)
                .bind(r.tenant.as_str())
                .bind(r.principal.as_deref())
                .bind(r.endpoint.as_str())
                .bind(r.session.as_deref())
                .bind(r.server.as_deref())
                .bind(r.method.as_str())
                .bind(r.target.as_deref())
                .bind(r.status.as_str())
                .bind(r.error_type.as_deref())
                .bind(r.error.as_deref())
                .bind(r.duration_us)
                .bind(r.bytes_in)
                .bind(r.bytes_out)
                .bind(r.trace_id.as_deref())
                .bind(r.protocol.as_deref())
                .bind(r.request.as_deref())
                .bind(r.response.as_deref())
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)
    }
}
