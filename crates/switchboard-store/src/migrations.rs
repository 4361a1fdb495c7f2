//! The schema migrations, embedded at compile time from `migrations/<backend>/`.
//!
//! They are listed here by hand instead of through `sqlx::migrate!`, which would need sqlx's
//! proc-macro crate and with it a second, host-side build of both drivers. The checksums are
//! the ones `migrate!` computes (SHA-384 of the text), so either way records the same history.
//! Add a new file as a new entry; never edit a released one.

use sqlx::SqlStr;
use sqlx::migrate::{Migration, MigrationType};

fn simple(version: i64, description: &'static str, sql: &'static str) -> Migration {
    Migration::new(
        version,
        description.into(),
        MigrationType::Simple,
        SqlStr::from_static(sql),
        false,
    )
}

/// The SQLite migrations, oldest first.
pub(crate) fn sqlite() -> Vec<Migration> {
    vec![
        simple(
            1,
            "init",
            include_str!("../migrations/sqlite/0001_init.sql"),
        ),
        simple(
            2,
            "protocol",
            include_str!("../migrations/sqlite/0002_protocol.sql"),
        ),
        simple(
            3,
            "sessions",
            include_str!("../migrations/sqlite/0003_sessions.sql"),
        ),
        simple(
            4,
            "identity",
            include_str!("../migrations/sqlite/0004_identity.sql"),
        ),
        simple(
            5,
            "audit source and key rate limits",
            include_str!("../migrations/sqlite/0005_audit_source.sql"),
        ),
        simple(
            6,
            "origin",
            include_str!("../migrations/sqlite/0006_origin.sql"),
        ),
        simple(
            7,
            "tool_pins",
            include_str!("../migrations/sqlite/0007_tool_pins.sql"),
        ),
        simple(
            8,
            "max_result_bytes",
            include_str!("../migrations/sqlite/0008_max_result_bytes.sql"),
        ),
        simple(
            9,
            "activity log",
            include_str!("../migrations/sqlite/0009_activity.sql"),
        ),
        simple(
            10,
            "ended client sessions",
            include_str!("../migrations/sqlite/0010_ended_sessions.sql"),
        ),
        simple(
            11,
            "activity indexes",
            include_str!("../migrations/sqlite/0011_activity_indexes.sql"),
        ),
        simple(
            12,
            "activity time by id",
            include_str!("../migrations/sqlite/0012_activity_time_by_id.sql"),
        ),
    ]
}

/// The PostgreSQL migrations, oldest first.
pub(crate) fn postgres() -> Vec<Migration> {
    vec![
        simple(
            1,
            "init",
            include_str!("../migrations/postgres/0001_init.sql"),
        ),
        simple(
            2,
            "protocol",
            include_str!("../migrations/postgres/0002_protocol.sql"),
        ),
        simple(
            3,
            "sessions",
            include_str!("../migrations/postgres/0003_sessions.sql"),
        ),
        simple(
            4,
            "identity",
            include_str!("../migrations/postgres/0004_identity.sql"),
        ),
        simple(
            5,
            "audit source and key rate limits",
            include_str!("../migrations/postgres/0005_audit_source.sql"),
        ),
        simple(
            6,
            "origin",
            include_str!("../migrations/postgres/0006_origin.sql"),
        ),
        simple(
            7,
            "tool_pins",
            include_str!("../migrations/postgres/0007_tool_pins.sql"),
        ),
        simple(
            8,
            "max_result_bytes",
            include_str!("../migrations/postgres/0008_max_result_bytes.sql"),
        ),
        simple(
            9,
            "activity log",
            include_str!("../migrations/postgres/0009_activity.sql"),
        ),
        simple(
            10,
            "ended client sessions",
            include_str!("../migrations/postgres/0010_ended_sessions.sql"),
        ),
        simple(
            11,
            "activity indexes",
            include_str!("../migrations/postgres/0011_activity_indexes.sql"),
        ),
        simple(
            12,
            "activity time by id",
            include_str!("../migrations/postgres/0012_activity_time_by_id.sql"),
        ),
    ]
}

#[cfg(test)]
mod tests {
    /// Every file in the migration folders must be listed above.
    #[test]
    fn every_file_is_embedded() {
        for (dir, listed) in [
            ("sqlite", super::sqlite().len()),
            ("postgres", super::postgres().len()),
        ] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("migrations")
                .join(dir);
            let files = std::fs::read_dir(&path).unwrap().filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "sql")
            });
            assert_eq!(files.count(), listed, "{}", path.display());
        }
    }
}
