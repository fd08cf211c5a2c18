//! The roster cache's reader for matching: the entries of the current
//! generation with their match index ([`crate::store::roster::RosterCache`]
//! keeps both, per generation, and says why).

use std::sync::Arc;

use crate::store::StoreResult;
use crate::store::roster::{RosterCache, RosterEntry, RosterStatusRow};
use crate::store::traits::RosterStore;

use super::reconcile::Index;

/// The entries `status` names and their index, from `cache` when it holds
/// that generation.
pub async fn entries<S: RosterStore + ?Sized>(
    cache: &RosterCache,
    store: &S,
    status: &RosterStatusRow,
) -> StoreResult<(Arc<Vec<RosterEntry>>, Arc<Index>)> {
    let cached = cache
        .get(store, status, |entries| Arc::new(Index::new(entries)))
        .await?;
    // Only this module fills the cache, always with an Index.
    let index = match cached.derived.clone().downcast::<Index>() {
        Ok(index) => index,
        Err(_) => Arc::new(Index::new(&cached.entries)),
    };
    Ok((cached.entries, index))
}
