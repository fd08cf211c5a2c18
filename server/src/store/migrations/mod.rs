//! The one migration list both stores follow (issue 27): numbered steps,
//! each with the SQL of the backends it concerns, in this folder as
//! `NNNN_name.sqlite.sql` / `NNNN_name.postgres.sql`. Each store applies its
//! own steps in order inside one transaction; migrations only add, so an
//! older rollcall keeps working on a schema a newer one migrated (a rolling
//! upgrade), with a warning.
//!
//! `schema_version` in each database counts that backend's own steps
//! applied (as it always has), so databases made before the list was
//! merged upgrade unchanged: SQLite's version 12 and PostgreSQL's 13 are
//! both step 14. A step one backend does not need has `None` there and
//! does not count for it.
//!
//! Adding a migration: write `NNNN_name.sqlite.sql` and
//! `NNNN_name.postgres.sql` (NNNN the next step), append one entry below,
//! and add an upgrade test from the previous step (`store/tests/upgrade.rs`
//! has the helpers).

/// One step of the schema.
#[derive(Debug, Clone, Copy)]
// `step` and `name` are read by the tests (numbering) and by people.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) struct Migration {
    /// The one number both backends know this step by.
    pub step: u32,
    pub name: &'static str,
    pub sqlite: Option<&'static str>,
    pub postgres: Option<&'static str>,
}

/// Which store a migration runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

/// Every step, oldest first.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        step: 1,
        name: "base",
        sqlite: Some(include_str!("0001_base.sqlite.sql")),
        postgres: Some(include_str!("0001_base.postgres.sql")),
    },
    Migration {
        step: 2,
        name: "rollouts",
        sqlite: Some(include_str!("0002_rollouts.sqlite.sql")),
        postgres: Some(include_str!("0002_rollouts.postgres.sql")),
    },
    Migration {
        step: 3,
        name: "audit",
        sqlite: Some(include_str!("0003_audit.sqlite.sql")),
        postgres: Some(include_str!("0003_audit.postgres.sql")),
    },
    // PostgreSQL only: what several replicas need (a replica per agent, leases); one SQLite process needs none of it.
    Migration {
        step: 4,
        name: "replicas",
        sqlite: None,
        postgres: Some(include_str!("0004_replicas.postgres.sql")),
    },
    // SQLite only: reports as a rowid table in arrival order (PostgreSQL's heap already is).
    Migration {
        step: 5,
        name: "reports_in_arrival_order",
        sqlite: Some(include_str!("0005_reports_in_arrival_order.sqlite.sql")),
        postgres: None,
    },
    Migration {
        step: 6,
        name: "reports_written_once",
        sqlite: Some(include_str!("0006_reports_written_once.sqlite.sql")),
        postgres: Some(include_str!("0006_reports_written_once.postgres.sql")),
    },
    Migration {
        step: 7,
        name: "recheck_sent_at",
        sqlite: Some(include_str!("0007_recheck_sent_at.sqlite.sql")),
        postgres: Some(include_str!("0007_recheck_sent_at.postgres.sql")),
    },
    Migration {
        step: 8,
        name: "bound_labels",
        sqlite: Some(include_str!("0008_bound_labels.sqlite.sql")),
        postgres: Some(include_str!("0008_bound_labels.postgres.sql")),
    },
    Migration {
        step: 9,
        name: "clock_skew",
        sqlite: Some(include_str!("0009_clock_skew.sqlite.sql")),
        postgres: Some(include_str!("0009_clock_skew.postgres.sql")),
    },
    Migration {
        step: 10,
        name: "log_bundles",
        sqlite: Some(include_str!("0010_log_bundles.sqlite.sql")),
        postgres: Some(include_str!("0010_log_bundles.postgres.sql")),
    },
    // PostgreSQL only: reports indexed by arrival for retention; SQLite's report ids already follow arrival.
    Migration {
        step: 11,
        name: "reports_by_arrival",
        sqlite: None,
        postgres: Some(include_str!("0011_reports_by_arrival.postgres.sql")),
    },
    Migration {
        step: 12,
        name: "refused_column",
        sqlite: Some(include_str!("0012_refused_column.sqlite.sql")),
        postgres: Some(include_str!("0012_refused_column.postgres.sql")),
    },
    Migration {
        step: 13,
        name: "dead_letters",
        sqlite: Some(include_str!("0013_dead_letters.sqlite.sql")),
        postgres: Some(include_str!("0013_dead_letters.postgres.sql")),
    },
    Migration {
        step: 14,
        name: "roster",
        sqlite: Some(include_str!("0014_roster.sqlite.sql")),
        postgres: Some(include_str!("0014_roster.postgres.sql")),
    },
];

/// One backend's migrations in order; its `schema_version` is how many of
/// these ran.
pub(crate) fn of(backend: Backend) -> Vec<&'static str> {
    MIGRATIONS
        .iter()
        .filter_map(|migration| match backend {
            Backend::Sqlite => migration.sqlite,
            Backend::Postgres => migration.postgres,
        })
        .collect()
}

/// The migrations a schema at version `current` still needs, as (version,
/// SQL), oldest first.
pub(crate) fn pending<'a>(migrations: &'a [&'a str], current: i64) -> impl Iterator<Item = (i64, &'a str)> + 'a {
    let known = i64::try_from(migrations.len()).unwrap_or(i64::MAX);
    if current > known {
        tracing::warn!(
            schema = current,
            known,
            "the database schema is newer than this rollcall"
        );
    }
    migrations.iter().enumerate().filter_map(move |(index, sql)| {
        let version = i64::try_from(index).unwrap_or(i64::MAX) + 1;
        (version > current).then_some((version, *sql))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_numbered_in_order_and_each_concerns_a_backend() {
        for (index, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(migration.step as usize, index + 1, "{}", migration.name);
            assert!(
                migration.sqlite.is_some() || migration.postgres.is_some(),
                "step {} runs nowhere",
                migration.step
            );
        }
    }

    /// The versions databases made before the one list hold: SQLite's 12
    /// and PostgreSQL's 13 are both step 14 (`roster`).
    #[test]
    fn stored_versions_of_earlier_releases_keep_their_meaning() {
        let step_of = |backend, version: usize| {
            MIGRATIONS
                .iter()
                .filter(|migration| match backend {
                    Backend::Sqlite => migration.sqlite.is_some(),
                    Backend::Postgres => migration.postgres.is_some(),
                })
                .nth(version - 1)
                .map(|migration| migration.step)
        };
        assert_eq!(step_of(Backend::Sqlite, 12), Some(14));
        assert_eq!(step_of(Backend::Postgres, 13), Some(14));
        assert_eq!(step_of(Backend::Sqlite, 4), Some(5));
        assert_eq!(step_of(Backend::Postgres, 4), Some(4));
        assert_eq!(step_of(Backend::Postgres, 10), Some(11));
        assert!(of(Backend::Sqlite)[11].contains("roster"));
        assert!(of(Backend::Postgres)[12].contains("roster"));
    }

    #[test]
    fn only_what_the_schema_lacks_is_applied_in_order() {
        let all = ["one", "two", "three"];
        assert_eq!(
            pending(&all, 0).collect::<Vec<_>>(),
            vec![(1, "one"), (2, "two"), (3, "three")]
        );
        assert_eq!(pending(&all, 2).collect::<Vec<_>>(), vec![(3, "three")]);
        assert_eq!(pending(&all, 5).count(), 0);
    }
}
