//! Following the store: every durable line once, in id order, from a cursor.
//! The live broadcast brings new batches; at the start, and whenever the
//! follower falls behind the broadcast, the missed range is read back from the
//! store in pages, so no line is ever skipped. The alert scanner and the
//! lost-order detector both follow the store this way.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::LogStore;
use super::search::SearchRequest;
use crate::event::LogEvent;
use crate::query::Matcher;

/// Lines read back from the store per page.
const PAGE: usize = 10_000;

/// What the follower is handed.
pub struct Step<'a, M> {
    /// Lines after the previous step's `upto`, oldest first: all of a live
    /// batch's, only the ones `wanted` matched when read back.
    pub events: &'a [LogEvent],
    /// Every line up to this id has been handed over.
    pub upto: u64,
    /// False while a gap is being read back (also for the empty step that
    /// says a gap was found); true once the follower is level with the store.
    pub live: bool,
    /// The `wanted` that chose the lines read back (`None` for a live batch).
    pub read_back_with: Option<&'a M>,
}

/// Hands every line after `start_after` to `on_step`, until `stop` or until
/// `on_step` answers false. `wanted` chooses the lines worth reading back (it
/// is asked again for each page, so it may change). Run it on a thread of
/// its own: reading back blocks on the store.
pub async fn follow<M: Matcher>(
    store: &LogStore,
    mut stored: broadcast::Receiver<Arc<[LogEvent]>>,
    start_after: u64,
    stop: &CancellationToken,
    mut wanted: impl FnMut() -> M,
    mut on_step: impl AsyncFnMut(Step<'_, M>) -> bool,
) {
    let mut upto = start_after;
    let mut need_catch_up = true;
    loop {
        if need_catch_up {
            loop {
                if stop.is_cancelled() {
                    return;
                }
                let req = SearchRequest {
                    min_id: Some(upto),
                    oldest_first: true,
                    limit: PAGE,
                    time_budget: Duration::from_secs(30),
                    ..SearchRequest::default()
                };
                let m = wanted();
                let page = store.search(&req, &m);
                if page.max_id <= upto {
                    break;
                }
                upto = page.max_id;
                if !on_step(Step { events: &page.events, upto, live: false, read_back_with: Some(&m) }).await {
                    return;
                }
            }
            need_catch_up = false;
            // Level with the store, even if no line arrives for a long time.
            if !on_step(Step { events: &[], upto, live: true, read_back_with: None }).await {
                return;
            }
        }
        let batch = tokio::select! {
            _ = stop.cancelled() => return,
            b = stored.recv() => b,
        };
        match batch {
            Ok(batch) => {
                let Some(last) = batch.last() else { continue };
                if last.id <= upto {
                    continue;
                }
                let from = batch.partition_point(|e| e.id <= upto);
                upto = last.id;
                if !on_step(Step { events: &batch[from..], upto, live: true, read_back_with: None }).await {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::info!(batches = n, "fell behind the store; reading the missed lines back");
                need_catch_up = true;
                if !on_step(Step { events: &[], upto, live: false, read_back_with: None }).await {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}
