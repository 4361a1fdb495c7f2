//! The SQL text shared by both backends and the macro that implements [`crate::Store`] on top
//! of it. SQLite accepts PostgreSQL's `$N` placeholders, and both schemas use column types that
//! decode to the same Rust types, so one body serves both; only connecting and opening a write
//! transaction differ per backend.
//!
//! Every write runs in a transaction whose first statement bumps the single revision row. That
//! row lock serialises writers (on SQLite the write lock does the same), so a reader that sees
//! revision N also sees every write up to N, and read-check-write steps inside a write
//! transaction cannot race. A write that changes nothing rolls back and leaves the revision.
//! Server and group names share the `names` table, whose primary key makes a clash a unique
//! violation, i.e. `Conflict`.

pub(crate) const BUMP_REVISION: &str = "UPDATE revision SET value = value + 1 WHERE id = 1";
pub(crate) const GET_REVISION: &str = "SELECT value FROM revision WHERE id = 1";
pub(crate) const END_CLIENT_SESSION: &str = "INSERT INTO ended_sessions (tenant, id_hash, \
    ended_at) VALUES ($1, $2, $3) ON CONFLICT (tenant, id_hash) DO NOTHING";
pub(crate) const ENDED_CLIENT_SESSIONS: &str =
    "SELECT tenant, id_hash FROM ended_sessions WHERE ended_at >= $1";
pub(crate) const FORGET_ENDED_SESSIONS: &str = "DELETE FROM ended_sessions WHERE ended_at < $1";

pub(crate) const CLAIM_NAME: &str = "INSERT INTO names (tenant, name, kind) VALUES ($1, $2, $3)";
pub(crate) const RELEASE_NAME: &str =
    "DELETE FROM names WHERE tenant = $1 AND name = $2 AND kind = $3";

pub(crate) const LIST_SERVERS: &str = "SELECT tenant, name, kind, url, command, args_json, cwd, \
    env_enc, headers_enc, enabled, timeout_secs, session_mode, created_by, created_at, updated_by, \
    updated_at, protocol, origin, max_result_bytes FROM servers WHERE tenant = $1 ORDER BY name";
pub(crate) const LIST_ALL_SERVERS: &str = "SELECT tenant, name, kind, url, command, args_json, cwd, \
    env_enc, headers_enc, enabled, timeout_secs, session_mode, created_by, created_at, updated_by, \
    updated_at, protocol, origin, max_result_bytes FROM servers ORDER BY tenant, name";
pub(crate) const GET_SERVER: &str = "SELECT tenant, name, kind, url, command, args_json, cwd, \
    env_enc, headers_enc, enabled, timeout_secs, session_mode, created_by, created_at, updated_by, \
    updated_at, protocol, origin, max_result_bytes FROM servers WHERE tenant = $1 AND name = $2";
/// Binds like [`UPDATE_SERVER`] for `$1..$17`, then `created_by`, `created_at`.
pub(crate) const INSERT_SERVER: &str = "INSERT INTO servers (tenant, name, kind, url, command, \
    args_json, cwd, env_enc, headers_enc, enabled, timeout_secs, session_mode, updated_by, \
    updated_at, protocol, origin, max_result_bytes, created_by, created_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)";
pub(crate) const UPDATE_SERVER: &str = "UPDATE servers SET kind = $3, url = $4, command = $5, \
    args_json = $6, cwd = $7, env_enc = $8, headers_enc = $9, enabled = $10, timeout_secs = $11, \
    session_mode = $12, updated_by = $13, updated_at = $14, protocol = $15, \
    origin = $16, max_result_bytes = $17 \
    WHERE tenant = $1 AND name = $2";
pub(crate) const DELETE_SERVER: &str = "DELETE FROM servers WHERE tenant = $1 AND name = $2";

pub(crate) const LIST_GROUPS: &str =
    "SELECT tenant, name, members_json, tools_json FROM groups WHERE tenant = $1 ORDER BY name";
pub(crate) const LIST_ALL_GROUPS: &str =
    "SELECT tenant, name, members_json, tools_json FROM groups ORDER BY tenant, name";
pub(crate) const INSERT_GROUP: &str =
    "INSERT INTO groups (tenant, name, members_json, tools_json) VALUES ($1, $2, $3, $4)";
pub(crate) const UPDATE_GROUP: &str =
    "UPDATE groups SET members_json = $3, tools_json = $4 WHERE tenant = $1 AND name = $2";
pub(crate) const DELETE_GROUP: &str = "DELETE FROM groups WHERE tenant = $1 AND name = $2";
pub(crate) const GROUP_MEMBERS: &str = "SELECT name, members_json FROM groups WHERE tenant = $1";
pub(crate) const SET_GROUP_MEMBERS: &str =
    "UPDATE groups SET members_json = $3 WHERE tenant = $1 AND name = $2";

pub(crate) const LIST_SETTINGS: &str = "SELECT tenant, server, kind, name, enabled, description, \
    \"rename\" FROM item_settings WHERE tenant = $1 AND server = $2 ORDER BY kind, name";
pub(crate) const LIST_ALL_SETTINGS: &str = "SELECT tenant, server, kind, name, enabled, description, \
    \"rename\" FROM item_settings ORDER BY tenant, server, kind, name";
pub(crate) const UPSERT_SETTING: &str = "INSERT INTO item_settings (tenant, server, kind, name, \
    enabled, description, \"rename\") VALUES ($1, $2, $3, $4, $5, $6, $7) \
    ON CONFLICT (tenant, server, kind, name) DO UPDATE SET enabled = excluded.enabled, \
    description = excluded.description, \"rename\" = excluded.\"rename\"";
pub(crate) const DELETE_SETTING: &str =
    "DELETE FROM item_settings WHERE tenant = $1 AND server = $2 AND kind = $3 AND name = $4";

pub(crate) const INSERT_SESSION: &str = "INSERT INTO sessions (tenant, id_hash, prefix, remote_url, \
    transport, headers_enc, ttl_secs, created_by, created_at, expires_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
pub(crate) const GET_SESSION: &str = "SELECT tenant, id_hash, prefix, remote_url, transport, \
    headers_enc, ttl_secs, created_by, created_at, expires_at FROM sessions \
    WHERE tenant = $1 AND id_hash = $2";
pub(crate) const LIST_SESSIONS: &str = "SELECT tenant, id_hash, prefix, remote_url, transport, \
    headers_enc, ttl_secs, created_by, created_at, expires_at FROM sessions \
    WHERE tenant = $1 ORDER BY expires_at, prefix";
pub(crate) const SET_SESSION_EXPIRY: &str =
    "UPDATE sessions SET expires_at = $3 WHERE tenant = $1 AND id_hash = $2";
pub(crate) const DELETE_SESSION: &str = "DELETE FROM sessions WHERE tenant = $1 AND id_hash = $2";

pub(crate) const LIST_TOOL_PINS: &str = "SELECT tenant, server, tool, hash, definition, \
    approved_by, approved_at FROM tool_pins WHERE tenant = $1 AND server = $2 ORDER BY tool";
pub(crate) const LIST_TOOL_PIN_HASHES: &str =
    "SELECT server, tool, hash FROM tool_pins WHERE tenant = $1 ORDER BY server, tool";
pub(crate) const UPSERT_TOOL_PIN: &str = "INSERT INTO tool_pins (tenant, server, tool, hash, \
    definition, approved_by, approved_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
    ON CONFLICT (tenant, server, tool) DO UPDATE SET hash = excluded.hash, \
    definition = excluded.definition, approved_by = excluded.approved_by, \
    approved_at = excluded.approved_at";
pub(crate) const DELETE_TOOL_PIN: &str =
    "DELETE FROM tool_pins WHERE tenant = $1 AND server = $2 AND tool = $3";
pub(crate) const SERVER_EXISTS: &str = "SELECT 1 FROM servers WHERE tenant = $1 AND name = $2";

pub(crate) const GET_META: &str = "SELECT value FROM meta WHERE key = $1";
pub(crate) const SET_META: &str = "INSERT INTO meta (key, value) VALUES ($1, $2) \
    ON CONFLICT (key) DO UPDATE SET value = excluded.value";

/// Implements `Store` for `$store`, a struct with `pool: sqlx::Pool<$db>` and `key: SecretKey`
/// fields and an inherent `async fn begin_tx(&self) -> Result<Transaction<'static, $db>, StoreError>`.
/// Expands to private helpers in the calling module and imports `StoreError`, `db_error`, the
/// record types and the column codecs there, so use it once per module.
macro_rules! impl_store {
    ($store:ident, $db:ty) => {
        use sqlx::Row as _;

        use $crate::codec::{
            GroupColumns, ServerColumns, SessionColumns, SettingColumns, db_error, members_without,
        };
        use $crate::sql;
        use $crate::{GroupRecord, ItemKind, ItemSetting, ServerRecord, SessionRecord, StoreError};

        type Tx = sqlx::Transaction<'static, $db>;
        type DbRow = <$db as sqlx::Database>::Row;
        type Query = sqlx::query::Query<'static, $db, <$db as sqlx::Database>::Arguments>;

        fn server_columns(row: &DbRow) -> Result<ServerColumns, sqlx::Error> {
            Ok(ServerColumns {
                tenant: row.try_get(0)?,
                name: row.try_get(1)?,
                kind: row.try_get(2)?,
                url: row.try_get(3)?,
                command: row.try_get(4)?,
                args_json: row.try_get(5)?,
                cwd: row.try_get(6)?,
                env_enc: row.try_get(7)?,
                headers_enc: row.try_get(8)?,
                enabled: row.try_get(9)?,
                timeout_secs: row.try_get(10)?,
                session_mode: row.try_get(11)?,
                created_by: row.try_get(12)?,
                created_at: row.try_get(13)?,
                updated_by: row.try_get(14)?,
                updated_at: row.try_get(15)?,
                protocol: row.try_get(16)?,
                origin: row.try_get(17)?,
                max_result_bytes: row.try_get(18)?,
            })
        }

        fn group_columns(row: &DbRow) -> Result<GroupColumns, sqlx::Error> {
            Ok(GroupColumns {
                tenant: row.try_get(0)?,
                name: row.try_get(1)?,
                members_json: row.try_get(2)?,
                tools_json: row.try_get(3)?,
            })
        }

        fn setting_columns(row: &DbRow) -> Result<SettingColumns, sqlx::Error> {
            Ok(SettingColumns {
                tenant: row.try_get(0)?,
                server: row.try_get(1)?,
                kind: row.try_get(2)?,
                name: row.try_get(3)?,
                enabled: row.try_get(4)?,
                description: row.try_get(5)?,
                rename: row.try_get(6)?,
            })
        }

        fn session_columns(row: &DbRow) -> Result<SessionColumns, sqlx::Error> {
            Ok(SessionColumns {
                tenant: row.try_get(0)?,
                id_hash: row.try_get(1)?,
                prefix: row.try_get(2)?,
                remote_url: row.try_get(3)?,
                transport: row.try_get(4)?,
                headers_enc: row.try_get(5)?,
                ttl_secs: row.try_get(6)?,
                created_by: row.try_get(7)?,
                created_at: row.try_get(8)?,
                expires_at: row.try_get(9)?,
            })
        }

        /// Binds `$1..$16` of `INSERT_SERVER` / `UPDATE_SERVER`.
        fn bind_server(query: &'static str, c: &ServerColumns) -> Query {
            sqlx::query(query)
                .bind(&c.tenant)
                .bind(&c.name)
                .bind(&c.kind)
                .bind(&c.url)
                .bind(&c.command)
                .bind(&c.args_json)
                .bind(&c.cwd)
                .bind(&c.env_enc)
                .bind(&c.headers_enc)
                .bind(c.enabled)
                .bind(c.timeout_secs)
                .bind(&c.session_mode)
                .bind(&c.updated_by)
                .bind(c.updated_at)
                .bind(&c.protocol)
                .bind(&c.origin)
                .bind(c.max_result_bytes)
        }

        fn bind_group(query: &'static str, c: &GroupColumns) -> Query {
            sqlx::query(query)
                .bind(&c.tenant)
                .bind(&c.name)
                .bind(&c.members_json)
                .bind(&c.tools_json)
        }

        fn bind_setting(c: &SettingColumns) -> Query {
            sqlx::query(sql::UPSERT_SETTING)
                .bind(&c.tenant)
                .bind(&c.server)
                .bind(&c.kind)
                .bind(&c.name)
                .bind(c.enabled)
                .bind(&c.description)
                .bind(&c.rename)
        }

        /// Runs a keyed write; returns how many rows it touched.
        async fn execute(tx: &mut Tx, query: Query) -> Result<u64, StoreError> {
            Ok(query
                .execute(&mut **tx)
                .await
                .map_err(db_error)?
                .rows_affected())
        }

        /// Commits when `changed`, else rolls back so the revision stays put.
        async fn finish(tx: Tx, changed: bool) -> Result<bool, StoreError> {
            let ended = if changed {
                tx.commit().await
            } else {
                tx.rollback().await
            };
            ended.map_err(db_error)?;
            Ok(changed)
        }

        async fn claim_name(
            tx: &mut Tx,
            tenant: &str,
            name: &str,
            kind: &str,
        ) -> Result<(), StoreError> {
            execute(
                tx,
                sqlx::query(sql::CLAIM_NAME)
                    .bind(tenant)
                    .bind(name)
                    .bind(kind),
            )
            .await
            .map(drop)
        }

        async fn release_name(
            tx: &mut Tx,
            tenant: &str,
            name: &str,
            kind: &str,
        ) -> Result<(), StoreError> {
            execute(
                tx,
                sqlx::query(sql::RELEASE_NAME)
                    .bind(tenant)
                    .bind(name)
                    .bind(kind),
            )
            .await
            .map(drop)
        }

        /// Removes `server` from the members of every group of `tenant`.
        async fn prune_members(tx: &mut Tx, tenant: &str, server: &str) -> Result<(), StoreError> {
            let rows = sqlx::query(sql::GROUP_MEMBERS)
                .bind(tenant)
                .fetch_all(&mut **tx)
                .await
                .map_err(db_error)?;
            for row in rows {
                let group: String = row.try_get(0).map_err(db_error)?;
                let members: String = row.try_get(1).map_err(db_error)?;
                if let Some(kept) = members_without(&members, server)? {
                    let query = sqlx::query(sql::SET_GROUP_MEMBERS)
                        .bind(tenant)
                        .bind(&group)
                        .bind(kept);
                    execute(tx, query).await?;
                }
            }
            Ok(())
        }

        impl $store {
            /// Opens a write transaction and bumps the revision as its first step.
            async fn begin_write(&self) -> Result<Tx, StoreError> {
                let mut tx = self.begin_tx().await?;
                execute(&mut tx, sqlx::query(sql::BUMP_REVISION)).await?;
                if let Some(q) = Self::ON_WRITE {
                    execute(&mut tx, sqlx::query(q)).await?;
                }
                Ok(tx)
            }

            async fn fetch_servers(&self, query: Query) -> Result<Vec<ServerRecord>, StoreError> {
                let rows = query.fetch_all(&self.pool).await.map_err(db_error)?;
                rows.iter()
                    .map(|row| server_columns(row).map_err(db_error)?.decode(&self.key))
                    .collect()
            }

            async fn fetch_groups(&self, query: Query) -> Result<Vec<GroupRecord>, StoreError> {
                let rows = query.fetch_all(&self.pool).await.map_err(db_error)?;
                rows.iter()
                    .map(|row| group_columns(row).map_err(db_error)?.decode())
                    .collect()
            }

            async fn fetch_sessions(&self, query: Query) -> Result<Vec<SessionRecord>, StoreError> {
                let rows = query.fetch_all(&self.pool).await.map_err(db_error)?;
                rows.iter()
                    .map(|row| session_columns(row).map_err(db_error)?.decode(&self.key))
                    .collect()
            }

            async fn fetch_settings(&self, query: Query) -> Result<Vec<ItemSetting>, StoreError> {
                let rows = query.fetch_all(&self.pool).await.map_err(db_error)?;
                rows.iter()
                    .map(|row| setting_columns(row).map_err(db_error)?.decode())
                    .collect()
            }
        }

        #[async_trait::async_trait]
        impl $crate::Store for $store {
            async fn list_servers(&self, tenant: &str) -> Result<Vec<ServerRecord>, StoreError> {
                self.fetch_servers(sqlx::query(sql::LIST_SERVERS).bind(tenant))
                    .await
            }

            async fn list_all_servers(&self) -> Result<Vec<ServerRecord>, StoreError> {
                self.fetch_servers(sqlx::query(sql::LIST_ALL_SERVERS)).await
            }

            async fn get_server(
                &self,
                tenant: &str,
                name: &str,
            ) -> Result<Option<ServerRecord>, StoreError> {
                let query = sqlx::query(sql::GET_SERVER).bind(tenant).bind(name);
                Ok(self.fetch_servers(query).await?.pop())
            }

            async fn insert_server(&self, record: &ServerRecord) -> Result<(), StoreError> {
                let c = ServerColumns::encode(record, &self.key)?;
                let mut tx = self.begin_write().await?;
                claim_name(&mut tx, &c.tenant, &c.name, "server").await?;
                let query = bind_server(sql::INSERT_SERVER, &c)
                    .bind(&c.created_by)
                    .bind(c.created_at);
                execute(&mut tx, query).await?;
                finish(tx, true).await.map(drop)
            }

            async fn update_server(&self, record: &ServerRecord) -> Result<(), StoreError> {
                let c = ServerColumns::encode(record, &self.key)?;
                let mut tx = self.begin_write().await?;
                let changed = execute(&mut tx, bind_server(sql::UPDATE_SERVER, &c)).await? > 0;
                if finish(tx, changed).await? {
                    Ok(())
                } else {
                    Err(StoreError::NotFound)
                }
            }

            async fn delete_server(&self, tenant: &str, name: &str) -> Result<bool, StoreError> {
                let mut tx = self.begin_write().await?;
                let query = sqlx::query(sql::DELETE_SERVER).bind(tenant).bind(name);
                if execute(&mut tx, query).await? == 0 {
                    return finish(tx, false).await;
                }
                release_name(&mut tx, tenant, name, "server").await?;
                prune_members(&mut tx, tenant, name).await?;
                finish(tx, true).await
            }

            async fn list_groups(&self, tenant: &str) -> Result<Vec<GroupRecord>, StoreError> {
                self.fetch_groups(sqlx::query(sql::LIST_GROUPS).bind(tenant))
                    .await
            }

            async fn list_all_groups(&self) -> Result<Vec<GroupRecord>, StoreError> {
                self.fetch_groups(sqlx::query(sql::LIST_ALL_GROUPS)).await
            }

            async fn insert_group(&self, record: &GroupRecord) -> Result<(), StoreError> {
                let c = GroupColumns::encode(record)?;
                let mut tx = self.begin_write().await?;
                claim_name(&mut tx, &c.tenant, &c.name, "group").await?;
                execute(&mut tx, bind_group(sql::INSERT_GROUP, &c)).await?;
                finish(tx, true).await.map(drop)
            }

            async fn update_group(&self, record: &GroupRecord) -> Result<(), StoreError> {
                let c = GroupColumns::encode(record)?;
                let mut tx = self.begin_write().await?;
                let changed = execute(&mut tx, bind_group(sql::UPDATE_GROUP, &c)).await? > 0;
                if finish(tx, changed).await? {
                    Ok(())
                } else {
                    Err(StoreError::NotFound)
                }
            }

            async fn delete_group(&self, tenant: &str, name: &str) -> Result<bool, StoreError> {
                let mut tx = self.begin_write().await?;
                let query = sqlx::query(sql::DELETE_GROUP).bind(tenant).bind(name);
                if execute(&mut tx, query).await? == 0 {
                    return finish(tx, false).await;
                }
                release_name(&mut tx, tenant, name, "group").await?;
                finish(tx, true).await
            }

            async fn list_item_settings(
                &self,
                tenant: &str,
                server: &str,
            ) -> Result<Vec<ItemSetting>, StoreError> {
                self.fetch_settings(sqlx::query(sql::LIST_SETTINGS).bind(tenant).bind(server))
                    .await
            }

            async fn list_all_item_settings(&self) -> Result<Vec<ItemSetting>, StoreError> {
                self.fetch_settings(sqlx::query(sql::LIST_ALL_SETTINGS))
                    .await
            }

            async fn upsert_item_setting(&self, setting: &ItemSetting) -> Result<(), StoreError> {
                let c = SettingColumns::encode(setting);
                let mut tx = self.begin_write().await?;
                execute(&mut tx, bind_setting(&c)).await?;
                finish(tx, true).await.map(drop)
            }

            async fn delete_item_setting(
                &self,
                tenant: &str,
                server: &str,
                kind: ItemKind,
                name: &str,
            ) -> Result<bool, StoreError> {
                let mut tx = self.begin_write().await?;
                let query = sqlx::query(sql::DELETE_SETTING)
                    .bind(tenant)
                    .bind(server)
                    .bind(kind.as_str())
                    .bind(name);
                let changed = execute(&mut tx, query).await? > 0;
                finish(tx, changed).await
            }

            async fn insert_session(&self, record: &SessionRecord) -> Result<(), StoreError> {
                let c = SessionColumns::encode(record, &self.key)?;
                sqlx::query(sql::INSERT_SESSION)
                    .bind(&c.tenant)
                    .bind(&c.id_hash)
                    .bind(&c.prefix)
                    .bind(&c.remote_url)
                    .bind(&c.transport)
                    .bind(&c.headers_enc)
                    .bind(c.ttl_secs)
                    .bind(&c.created_by)
                    .bind(c.created_at)
                    .bind(c.expires_at)
                    .execute(&self.pool)
                    .await
                    .map_err(db_error)
                    .map(drop)
            }

            async fn get_session(
                &self,
                tenant: &str,
                id_hash: &str,
            ) -> Result<Option<SessionRecord>, StoreError> {
                let query = sqlx::query(sql::GET_SESSION).bind(tenant).bind(id_hash);
                Ok(self.fetch_sessions(query).await?.pop())
            }

            async fn list_sessions(&self, tenant: &str) -> Result<Vec<SessionRecord>, StoreError> {
                self.fetch_sessions(sqlx::query(sql::LIST_SESSIONS).bind(tenant))
                    .await
            }

            async fn set_session_expiry(
                &self,
                tenant: &str,
                id_hash: &str,
                expires_at: i64,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(sql::SET_SESSION_EXPIRY)
                    .bind(tenant)
                    .bind(id_hash)
                    .bind(expires_at)
                    .execute(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(done.rows_affected() > 0)
            }

            async fn delete_session(
                &self,
                tenant: &str,
                id_hash: &str,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(sql::DELETE_SESSION)
                    .bind(tenant)
                    .bind(id_hash)
                    .execute(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(done.rows_affected() > 0)
            }

            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1")
                    .execute(&self.pool)
                    .await
                    .map(|_| ())
                    .map_err(db_error)
            }

            async fn list_tool_pins(
                &self,
                tenant: &str,
                server: &str,
            ) -> Result<Vec<$crate::ToolPin>, StoreError> {
                let rows = sqlx::query(sql::LIST_TOOL_PINS)
                    .bind(tenant)
                    .bind(server)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_error)?;
                rows.iter()
                    .map(|row| {
                        Ok($crate::ToolPin {
                            tenant: row.try_get(0)?,
                            server: row.try_get(1)?,
                            tool: row.try_get(2)?,
                            hash: row.try_get(3)?,
                            definition: row.try_get(4)?,
                            approved_by: row.try_get(5)?,
                            approved_at: row.try_get(6)?,
                        })
                    })
                    .collect::<Result<_, sqlx::Error>>()
                    .map_err(db_error)
            }

            async fn list_tool_pin_hashes(
                &self,
                tenant: &str,
            ) -> Result<Vec<(String, String, String)>, StoreError> {
                let rows = sqlx::query(sql::LIST_TOOL_PIN_HASHES)
                    .bind(tenant)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_error)?;
                rows.iter()
                    .map(|row| Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?)))
                    .collect::<Result<_, sqlx::Error>>()
                    .map_err(db_error)
            }

            async fn put_tool_pins(
                &self,
                tenant: &str,
                server: &str,
                pins: &[$crate::ToolPin],
                remove: &[String],
            ) -> Result<(), StoreError> {
                let mut tx = self.begin_write().await?;
                let exists = sqlx::query(sql::SERVER_EXISTS)
                    .bind(tenant)
                    .bind(server)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_error)?
                    .is_some();
                if !exists {
                    finish(tx, false).await?;
                    return Err(StoreError::NotFound);
                }
                for p in pins {
                    let query = sqlx::query(sql::UPSERT_TOOL_PIN)
                        .bind(tenant)
                        .bind(server)
                        .bind(&p.tool)
                        .bind(&p.hash)
                        .bind(&p.definition)
                        .bind(&p.approved_by)
                        .bind(p.approved_at);
                    execute(&mut tx, query).await?;
                }
                for tool in remove {
                    let query = sqlx::query(sql::DELETE_TOOL_PIN)
                        .bind(tenant)
                        .bind(server)
                        .bind(tool);
                    execute(&mut tx, query).await?;
                }
                finish(tx, true).await.map(drop)
            }

            async fn revision(&self) -> Result<i64, StoreError> {
                let row = sqlx::query(sql::GET_REVISION)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db_error)?;
                row.try_get(0).map_err(db_error)
            }

            async fn get_meta(&self, key: &str) -> Result<Option<String>, StoreError> {
                let query = sqlx::query(sql::GET_META).bind(key);
                let row = query.fetch_optional(&self.pool).await.map_err(db_error)?;
                row.map(|row| row.try_get(0)).transpose().map_err(db_error)
            }

            async fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
                let mut tx = self.begin_write().await?;
                execute(&mut tx, sqlx::query(sql::SET_META).bind(key).bind(value)).await?;
                finish(tx, true).await.map(drop)
            }

            async fn end_client_session(
                &self,
                tenant: &str,
                id_hash: &str,
                at: i64,
            ) -> Result<(), StoreError> {
                sqlx::query(sql::END_CLIENT_SESSION)
                    .bind(tenant)
                    .bind(id_hash)
                    .bind(at)
                    .execute(&self.pool)
                    .await
                    .map_err(db_error)
                    .map(drop)
            }

            async fn ended_client_sessions(
                &self,
                since: i64,
            ) -> Result<Vec<(String, String)>, StoreError> {
                let rows = sqlx::query(sql::ENDED_CLIENT_SESSIONS)
                    .bind(since)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_error)?;
                rows.iter()
                    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                    .collect::<Result<_, sqlx::Error>>()
                    .map_err(db_error)
            }

            async fn forget_ended_sessions_before(&self, at: i64) -> Result<u64, StoreError> {
                sqlx::query(sql::FORGET_ENDED_SESSIONS)
                    .bind(at)
                    .execute(&self.pool)
                    .await
                    .map_err(db_error)
                    .map(|r| r.rows_affected())
            }
        }
    };
}

pub(crate) use impl_store;
