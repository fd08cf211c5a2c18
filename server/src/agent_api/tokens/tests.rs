//! Token terms and minting, against a SQLite store in a tempdir.

use super::*;
use crate::store::sqlite::SqliteStore;

const DEFAULT_TTL: Duration = Duration::from_secs(3600);

fn request(uses: u32, ttl_seconds: u64, labels: &[(&str, &str)]) -> TokenRequest {
    TokenRequest {
        uses,
        ttl_seconds,
        labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    }
}

#[test]
fn zero_means_one_use_and_the_default_lifetime() {
    let terms = terms(request(0, 0, &[("site", "osaka")]), DEFAULT_TTL).expect("valid");
    assert_eq!((terms.uses, terms.ttl), (1, DEFAULT_TTL));
    assert_eq!(terms.labels.get("site").map(String::as_str), Some("osaka"));
    let terms = super::terms(request(5, 60, &[]), DEFAULT_TTL).expect("valid");
    assert_eq!((terms.uses, terms.ttl), (5, Duration::from_secs(60)));
}

#[test]
fn the_limits_refuse_with_the_admins_words() {
    assert_eq!(
        terms(request(MAX_TOKEN_USES + 1, 0, &[]), DEFAULT_TTL),
        Err(TokenError::TooManyUses)
    );
    assert_eq!(
        TokenError::TooManyUses.to_string(),
        format!("uses must be at most {MAX_TOKEN_USES}")
    );
    assert!(terms(request(MAX_TOKEN_USES, MAX_TOKEN_TTL.as_secs(), &[]), DEFAULT_TTL).is_ok());
    assert_eq!(
        terms(request(1, MAX_TOKEN_TTL.as_secs() + 1, &[]), DEFAULT_TTL),
        Err(TokenError::TtlTooLong)
    );
    assert_eq!(TokenError::TtlTooLong.to_string(), "ttl must be at most 30 days");
    // A default longer than the limit is refused too.
    assert_eq!(
        terms(request(1, 0, &[]), MAX_TOKEN_TTL + Duration::from_secs(1)),
        Err(TokenError::TtlTooLong)
    );
    assert!(matches!(
        terms(request(1, 0, &[("bad key!", "x")]), DEFAULT_TTL),
        Err(TokenError::Labels(_))
    ));
}

#[test]
fn minted_tokens_are_fresh_and_shaped() {
    let (token, id) = mint();
    let hex = token.strip_prefix("rct_").expect("prefix");
    assert_eq!(hex.len(), 64);
    assert!(hex.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(id.len(), 12);
    assert_ne!(mint().0, token);
}

#[tokio::test]
async fn create_stores_the_hash_and_the_terms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("rollcall.db")).expect("open");
    let terms = terms(request(3, 60, &[("site", "kobe")]), DEFAULT_TTL).expect("valid");
    let created = create(&store, terms, "alice", 1_000).await.expect("created");
    assert_eq!((created.uses, created.expires_at_ms), (3, 61_000));
    // The token spends: its hash is what was stored.
    store
        .check_token(hash_token(created.token.expose()), 2_000)
        .await
        .expect("spendable");
    let rows = store.list_tokens().await.expect("list");
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(
        (row.id.as_str(), row.uses_total, row.created_by.as_str()),
        (created.id.as_str(), 3, "alice")
    );
    assert_eq!(row.labels.get("site").map(String::as_str), Some("kobe"));
}
