//! Row mapping shared by both stores: one place that turns a row's columns
//! (labels JSON, protobuf bodies, integers) into the domain row types, read
//! through [`Columns`], which each store implements for its own row type.
//!
//! A labels JSON or protobuf column that does not decode is counted
//! ([`undecodable_rows`], exported as `rollcall_store_rows_undecodable`) and
//! logged, then read as empty so one bad row does not hide the fleet; a
//! member state word no state has is counted the same way (see
//! `member_state`).
//!
//! Longer than ~400 lines: every row mapping both stores share, so the two
//! cannot drift apart.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use prost::Message;
use rollcall_common::member_state::MemberState;
use rollcall_common::proto;
use rollcall_common::receipt::Receipt;

use super::{
    AdminCertRow, AgentRow, AuditRow, CommandRow, MemberRow, PolicyRow, ReportMeta, RolloutRow, TokenRow, TransitionRow,
};

/// Columns that failed to decode since the process started (both stores).
static UNDECODABLE: AtomicU64 = AtomicU64::new(0);

/// How many stored columns failed to decode since the process started.
pub fn undecodable_rows() -> u64 {
    UNDECODABLE.load(Ordering::Relaxed)
}

thread_local! {
    /// Columns that failed to decode on this thread: a row is mapped on one
    /// thread from start to end, so the change across its mapping is that
    /// row's own damage (see [`damage_mark`]).
    static DAMAGED_HERE: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

fn undecodable(what: &str, error: &dyn std::fmt::Display) {
    UNDECODABLE.fetch_add(1, Ordering::Relaxed);
    DAMAGED_HERE.with(|count| count.set(count.get().wrapping_add(1)));
    tracing::warn!(column = what, %error, "stored column does not decode; read as empty");
}

/// A column that holds a value of another type than its schema says.
fn mistyped(what: &str, found: &dyn std::fmt::Display) {
    undecodable(what, &format_args!("holds {found}"));
}

/// A mark to take before mapping a row; [`damaged_since`] then says
/// whether any of its columns had to be read as a substitute.
fn damage_mark() -> u64 {
    DAMAGED_HERE.with(std::cell::Cell::get)
}

fn damaged_since(mark: u64) -> bool {
    damage_mark() != mark
}

/// Named columns of one result row, as each store's driver gives them.
/// Integers are the stores' 64-bit ones; flags are SQLite integers or
/// PostgreSQL booleans.
pub(crate) trait Columns {
    type Error;
    fn text(&self, name: &str) -> Result<String, Self::Error>;
    fn int(&self, name: &str) -> Result<i64, Self::Error>;
    fn maybe_int(&self, name: &str) -> Result<Option<i64>, Self::Error>;
    fn flag(&self, name: &str) -> Result<bool, Self::Error>;
    fn maybe_bytes(&self, name: &str) -> Result<Option<Vec<u8>>, Self::Error>;
}

// === encodings ===

pub(crate) fn labels_json(labels: &BTreeMap<String, String>) -> String {
    serde_json::to_string(labels).unwrap_or_else(|_| "{}".to_string())
}

pub(crate) fn labels_from_json(text: &str) -> BTreeMap<String, String> {
    serde_json::from_str(text).unwrap_or_else(|error| {
        undecodable("labels", &error);
        BTreeMap::new()
    })
}

pub(crate) fn failing_json(failing: &[String]) -> String {
    serde_json::to_string(failing).unwrap_or_else(|_| "[]".into())
}

fn failing_from_json(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_else(|error| {
        undecodable("failing", &error);
        Vec::new()
    })
}

/// A protobuf column; NULL is the message's default (never written).
pub(crate) fn decode<M: Message + Default>(what: &'static str, bytes: Option<Vec<u8>>) -> M {
    let Some(bytes) = bytes else {
        return M::default();
    };
    M::decode(bytes.as_slice()).unwrap_or_else(|error| {
        undecodable(what, &error);
        M::default()
    })
}

/// A member's `state` and `hard` columns. A word no state has is counted
/// and read as pending, the state every member starts in: the engine derives
/// the next state from what it observes at its next tick, so the row mends
/// itself instead of hiding the agent from its rollout.
fn member_state(state: &str, hard: bool) -> MemberState {
    MemberState::from_storage(state, hard).unwrap_or_else(|error| {
        undecodable("rollout_members.state", &error);
        MemberState::Pending
    })
}

/// A command's `receipt` column. Text no receipt has is counted and read as
/// no receipt: the command then counts as neither accepted nor refused.
fn receipt(text: &str) -> Receipt {
    Receipt::from_storage(text).unwrap_or_else(|error| {
        undecodable("commands.receipt", &error);
        Receipt::NotReceived
    })
}

/// A stored report body.
pub(crate) fn decode_report(body: &[u8]) -> Option<proto::Report> {
    proto::Report::decode(body)
        .map_err(|error| undecodable("reports.body", &error))
        .ok()
}

pub(crate) fn to_sql(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub(crate) fn u64_of(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

pub(crate) fn u32_of(value: i64) -> u32 {
    u32::try_from(value).unwrap_or(0)
}

pub(crate) fn i32_of(value: i64) -> i32 {
    i32::try_from(value).unwrap_or(0)
}

// === rows ===

/// An agent row. One whose columns could not all be read as stored is
/// still returned, with what could be read, and flagged `unreadable`, so the
/// fleet list shows it (and every other agent) instead of failing.
pub(crate) fn agent<R: Columns>(row: &R) -> Result<AgentRow, R::Error> {
    let mark = damage_mark();
    let mut agent = AgentRow {
        id: row.text("id")?,
        hostname: row.text("hostname")?,
        agent_version: row.text("agent_version")?,
        role: i32_of(row.int("role")?),
        labels: labels_from_json(&row.text("labels")?),
        enrolled_at_ms: row.int("enrolled_at")?,
        last_seen_ms: row.int("last_seen")?,
        connected: row.flag("connected")?,
        revoked: row.maybe_int("revoked_at")?.is_some(),
        product: decode("agents.product", row.maybe_bytes("product")?),
        host: decode("agents.host", row.maybe_bytes("host")?),
        last_seq: u64_of(row.int("last_seq")?),
        last_report_at_ms: row.int("last_report_at")?,
        clock_skew_ms: row.int("clock_skew_ms")?,
        dropped_reports: u64_of(row.int("dropped_reports")?),
        dead_letters: u64_of(row.int("dead_letters")?),
        unreadable: false,
    };
    agent.unreadable = damaged_since(mark);
    Ok(agent)
}

/// A report's columns without its body.
pub(crate) fn report_meta<R: Columns>(row: &R) -> Result<ReportMeta, R::Error> {
    Ok(ReportMeta {
        agent_id: row.text("agent_id")?,
        seq: u64_of(row.int("seq")?),
        kind: i32_of(row.int("kind")?),
        observed_at_ms: row.int("observed_at")?,
        received_at_ms: row.int("received_at")?,
        command_id: row.text("command_id")?,
        version: row.text("version")?,
        update_now_refused: false,
    })
}

pub(crate) fn rollout<R: Columns>(row: &R) -> Result<RolloutRow, R::Error> {
    Ok(RolloutRow {
        id: row.text("id")?,
        target: row.text("target")?,
        grace_ms: row.int("grace_ms")?,
        recheck_every_ms: row.int("recheck_every_ms")?,
        max_attempts: u32_of(row.int("max_attempts")?),
        selector: row.text("selector")?,
        auto_update_now: row.flag("auto_update_now")?,
        started_at_ms: row.int("started_at")?,
        started_by: row.text("started_by")?,
        cancelled_at_ms: row.maybe_int("cancelled_at")?,
    })
}

pub(crate) fn member<R: Columns>(row: &R) -> Result<MemberRow, R::Error> {
    Ok(MemberRow {
        rollout_id: row.text("rollout_id")?,
        agent_id: row.text("agent_id")?,
        state: member_state(&row.text("state")?, row.flag("hard")?),
        since_ms: row.int("since")?,
        attempts: u32_of(row.int("attempts")?),
        next_recheck_ms: row.int("next_recheck")?,
        cause: row.text("cause")?,
        failing: failing_from_json(&row.text("failing")?),
        update_agent: row.text("update_agent")?,
        blocks: u32_of(row.int("blocks")?),
        auto_update_for: row.text("auto_update_for")?,
        rechecked_at_ms: row.int("rechecked_at")?,
    })
}

pub(crate) fn transition<R: Columns>(row: &R) -> Result<TransitionRow, R::Error> {
    Ok(TransitionRow {
        rollout_id: row.text("rollout_id")?,
        agent_id: row.text("agent_id")?,
        at_ms: row.int("at")?,
        from_state: row.text("from_state")?,
        to_state: row.text("to_state")?,
        cause: row.text("cause")?,
    })
}

pub(crate) fn command<R: Columns>(row: &R) -> Result<CommandRow, R::Error> {
    Ok(CommandRow {
        id: row.text("id")?,
        batch_id: row.text("batch_id")?,
        agent_id: row.text("agent_id")?,
        kind: i32_of(row.int("kind")?),
        rollout_id: row.text("rollout_id")?,
        target: row.text("target")?,
        origin: row.text("origin")?,
        splay_ms: u32_of(row.int("splay_ms")?),
        created_at_ms: row.int("created_at")?,
        expires_at_ms: row.int("expires_at")?,
        delivered_at_ms: row.maybe_int("delivered_at")?,
        receipt: receipt(&row.text("receipt")?),
        answered_at_ms: row.maybe_int("answered_at")?,
        answer_version: row.text("answer_version")?,
        expired: row.flag("expired")?,
    })
}

pub(crate) fn bundle<R: Columns>(row: &R) -> Result<super::bundles::BundleRow, R::Error> {
    Ok(super::bundles::BundleRow {
        command_id: row.text("command_id")?,
        agent_id: row.text("agent_id")?,
        started_at_ms: row.int("started_at")?,
        completed_at_ms: row.maybe_int("completed_at")?,
        chunks: u32_of(row.int("chunks")?),
        bytes: u64_of(row.int("bytes")?),
        files: u32_of(row.int("files")?),
        skipped: u32_of(row.int("skipped")?),
    })
}

pub(crate) fn token<R: Columns>(row: &R) -> Result<TokenRow, R::Error> {
    Ok(TokenRow {
        id: row.text("id")?,
        created_at_ms: row.int("created_at")?,
        expires_at_ms: row.int("expires_at")?,
        uses_left: u32_of(row.int("uses_left")?),
        uses_total: u32_of(row.int("uses_total")?),
        labels: labels_from_json(&row.text("labels")?),
        revoked: row.flag("revoked")?,
        created_by: row.text("created_by")?,
    })
}

pub(crate) fn policy<R: Columns>(row: &R) -> Result<PolicyRow, R::Error> {
    Ok(PolicyRow {
        version: u64_of(row.int("version")?),
        toml: row.text("toml")?,
        applied_at_ms: row.int("applied_at")?,
        applied_by: row.text("applied_by")?,
    })
}

pub(crate) fn audit<R: Columns>(row: &R) -> Result<AuditRow, R::Error> {
    Ok(AuditRow {
        at_ms: row.int("at")?,
        actor: row.text("actor")?,
        role: row.text("role")?,
        action: row.text("action")?,
        target: row.text("target")?,
        result: row.text("result")?,
    })
}

pub(crate) fn admin_certificate<R: Columns>(row: &R) -> Result<AdminCertRow, R::Error> {
    Ok(AdminCertRow {
        serial: row.text("serial")?,
        name: row.text("name")?,
        role: row.text("role")?,
        issued_at_ms: row.int("issued_at")?,
        not_after_ms: row.int("not_after")?,
        issued_by: row.text("issued_by")?,
        revoked_at_ms: row.maybe_int("revoked_at")?,
    })
}

/// What decides whether an enrolment token can be spent, from its row.
pub(crate) struct TokenState {
    pub revoked: bool,
    pub expires_at_ms: i64,
    pub uses_left: i64,
}

impl TokenState {
    /// The one rule both stores apply ([`super::token_usable`]).
    pub(crate) fn usable(&self, now_ms: i64) -> super::StoreResult<()> {
        super::token_usable(self.revoked, self.expires_at_ms, self.uses_left, now_ms)
    }
}

pub(crate) fn token_state<R: Columns>(row: &R) -> Result<TokenState, R::Error> {
    Ok(TokenState {
        revoked: row.flag("revoked")?,
        expires_at_ms: row.int("expires_at")?,
        uses_left: row.int("uses_left")?,
    })
}

// === the drivers' rows ===

/// SQLite keeps any value in any column, so a column of the wrong type
/// (a REAL where an INTEGER belongs: what an overflowing sum used to leave,
/// issue 24) is read as the nearest value of the right type, counted and
/// logged like an undecodable column, instead of failing the read of every
/// row. [`damage_mark`] tells the row mappers which rows that happened to.
impl Columns for rusqlite::Row<'_> {
    type Error = rusqlite::Error;
    fn text(&self, name: &str) -> rusqlite::Result<String> {
        use rusqlite::types::ValueRef;
        Ok(match self.get_ref(name)? {
            ValueRef::Text(bytes) => match std::str::from_utf8(bytes) {
                Ok(text) => text.to_string(),
                Err(error) => {
                    mistyped(name, &error);
                    String::from_utf8_lossy(bytes).into_owned()
                }
            },
            ValueRef::Null => {
                mistyped(name, &"NULL");
                String::new()
            }
            ValueRef::Integer(value) => {
                mistyped(name, &"an integer");
                value.to_string()
            }
            ValueRef::Real(value) => {
                mistyped(name, &"a real");
                value.to_string()
            }
            ValueRef::Blob(bytes) => {
                mistyped(name, &"a blob");
                String::from_utf8_lossy(bytes).into_owned()
            }
        })
    }
    fn int(&self, name: &str) -> rusqlite::Result<i64> {
        Ok(self.maybe_int(name)?.unwrap_or_else(|| {
            mistyped(name, &"NULL");
            0
        }))
    }
    fn maybe_int(&self, name: &str) -> rusqlite::Result<Option<i64>> {
        use rusqlite::types::ValueRef;
        Ok(match self.get_ref(name)? {
            ValueRef::Integer(value) => Some(value),
            ValueRef::Null => None,
            ValueRef::Real(value) => {
                mistyped(name, &"a real");
                // `as` saturates at the ends of i64 and reads NaN as 0.
                Some(value as i64)
            }
            ValueRef::Text(text) => {
                mistyped(name, &"text");
                Some(
                    std::str::from_utf8(text)
                        .ok()
                        .and_then(|t| t.trim().parse().ok())
                        .unwrap_or(0),
                )
            }
            ValueRef::Blob(_) => {
                mistyped(name, &"a blob");
                Some(0)
            }
        })
    }
    fn flag(&self, name: &str) -> rusqlite::Result<bool> {
        Ok(self.int(name)? != 0)
    }
    fn maybe_bytes(&self, name: &str) -> rusqlite::Result<Option<Vec<u8>>> {
        use rusqlite::types::ValueRef;
        Ok(match self.get_ref(name)? {
            ValueRef::Blob(bytes) | ValueRef::Text(bytes) => Some(bytes.to_vec()),
            ValueRef::Null => None,
            ValueRef::Integer(_) | ValueRef::Real(_) => {
                mistyped(name, &"a number");
                None
            }
        })
    }
}

impl Columns for tokio_postgres::Row {
    type Error = tokio_postgres::Error;
    fn text(&self, name: &str) -> Result<String, tokio_postgres::Error> {
        self.try_get(name)
    }
    fn int(&self, name: &str) -> Result<i64, tokio_postgres::Error> {
        self.try_get(name)
    }
    fn maybe_int(&self, name: &str) -> Result<Option<i64>, tokio_postgres::Error> {
        self.try_get(name)
    }
    fn flag(&self, name: &str) -> Result<bool, tokio_postgres::Error> {
        self.try_get(name)
    }
    fn maybe_bytes(&self, name: &str) -> Result<Option<Vec<u8>>, tokio_postgres::Error> {
        self.try_get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undecodable_columns_are_counted_not_silently_defaulted() {
        let before = undecodable_rows();
        assert!(labels_from_json("{not json").is_empty());
        let host: proto::HostFacts = decode("agents.host", Some(vec![0xff, 0xff, 0xff]));
        assert_eq!(host, proto::HostFacts::default());
        assert!(decode_report(&[0x0a, 0xff]).is_none());
        assert_eq!(member_state("straggler_hard", true), MemberState::Pending);
        assert_eq!(receipt("spoofed"), Receipt::NotReceived);
        // Other tests may count too (the counter is process-wide): at least ours.
        assert!(undecodable_rows() >= before + 5);
    }

    #[test]
    fn a_sqlite_column_of_the_wrong_type_is_read_as_a_substitute_and_flags_its_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rollcall.db");
        drop(crate::store::sqlite::SqliteStore::open(&path).unwrap());
        let db = rusqlite::Connection::open(&path).unwrap();
        db.execute_batch(
            "INSERT INTO agents (id, hostname, enrolled_at) VALUES ('good', 'alpha', 1), ('bad', 'mallory', 1);
             UPDATE agents SET dropped_reports = 1.8446744073709552e19, last_seq = 'seven' WHERE id = 'bad';",
        )
        .unwrap();
        let before = undecodable_rows();
        let mut statement = db.prepare("SELECT * FROM agents ORDER BY id").unwrap();
        let rows: Vec<AgentRow> = statement
            .query_map([], |row| agent(row))
            .unwrap()
            .collect::<Result<_, _>>()
            .expect("a mistyped column fails no read");
        let (bad, good) = (&rows[0], &rows[1]);
        assert_eq!((bad.id.as_str(), good.id.as_str()), ("bad", "good"));
        assert!(bad.unreadable && !good.unreadable);
        assert_eq!(bad.dropped_reports, i64::MAX as u64, "a REAL past i64 saturates");
        assert_eq!(bad.last_seq, 0, "text that is no number reads as 0");
        assert_eq!(bad.hostname, "mallory", "the rest of the row is read as stored");
        assert!(undecodable_rows() >= before + 2);
    }

    #[test]
    fn member_states_are_read_from_both_columns_without_counting() {
        for state in MemberState::ALL {
            assert_eq!(member_state(state.storage(), state.hard_flag()), state);
        }
    }

    #[test]
    fn receipts_are_read_from_their_text() {
        assert_eq!(receipt(""), Receipt::NotReceived);
        assert_eq!(receipt("accepted"), Receipt::Accepted);
        assert_eq!(receipt("refused: busy"), Receipt::Refused("busy".into()));
    }

    #[test]
    fn empty_and_null_columns_are_not_failures() {
        let labels = labels_from_json("{\"site\":\"osaka\"}");
        assert_eq!(labels.get("site").map(String::as_str), Some("osaka"));
        let host: proto::HostFacts = decode("agents.host", None);
        assert_eq!(host, proto::HostFacts::default());
        assert!(failing_from_json(&failing_json(&["license".to_string()])) == vec!["license".to_string()]);
    }
}
