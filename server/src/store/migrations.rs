//! The migration plan both stores follow: numbered migrations, applied in
//! order inside one transaction, the schema's version in `schema_version`
//! (the index + 1 of the last one applied). Each store runs the plan with
//! its own driver; migrations only add, so an older rollcall keeps working
//! on a schema a newer one migrated (a rolling upgrade), with a warning.

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
