//! Keeping an in-memory view of one store prefix current, as kube-apiserver's informers do: the
//! view is rebuilt by one LIST when the store watch reports a change under the prefix (and after
//! a broken watch), never on the request path. For small, rarely written sets of objects —
//! CustomResourceDefinitions, webhook configurations — where re-reading them all on a change is
//! simpler than applying events one by one. Writes through other replicas on the same database
//! arrive within the store's poll interval.

use std::future::Future;
use std::time::Duration;

use cellfed_store::Store;
use futures::{FutureExt as _, StreamExt as _};

/// Follows `prefix` until the task is aborted: `reload` (one LIST, returning the revision it
/// read at) runs at once, then each time a watch event arrives that is newer than the last
/// reload and than `current` (the revision the view already reflects, when it was reloaded
/// meanwhile by other means, e.g. after a write through this server), and after the watch
/// breaks. `what` names the view in logs.
pub async fn follow<C, F, Fut>(
    store: Store,
    prefix: &'static str,
    what: &'static str,
    current: C,
    reload: F,
) where
    C: Fn() -> i64,
    F: Fn() -> Fut,
    Fut: Future<Output = Result<i64, String>>,
{
    let mut backoff = Duration::from_millis(100);
    let mut revision = loop {
        match reload().await {
            Ok(revision) => break revision,
            Err(e) => {
                tracing::warn!(view = what, error = %e, "reading the store failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    };
    loop {
        match store.watch(prefix, revision).await {
            Ok(mut events) => {
                backoff = Duration::from_millis(100);
                while let Some(first) = events.next().await {
                    let mut newest = None;
                    let mut broken = false;
                    for event in std::iter::once(first).chain(std::iter::from_fn(|| {
                        events.next().now_or_never().flatten()
                    })) {
                        match event {
                            Ok(e) => newest = newest.max(Some(e.kv.mod_revision)),
                            Err(e) => {
                                tracing::info!(view = what, error = %e, "watch ended, re-reading");
                                broken = true;
                                break;
                            }
                        }
                    }
                    if newest.is_some_and(|n| n > revision.max(current())) {
                        match reload().await {
                            Ok(r) => revision = revision.max(r),
                            Err(e) => {
                                tracing::warn!(view = what, error = %e, "re-reading after a change failed");
                                broken = true;
                            }
                        }
                    }
                    if broken {
                        break;
                    }
                }
            }
            Err(e) => tracing::warn!(view = what, error = %e, "watch failed"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
        match reload().await {
            Ok(r) => revision = revision.max(r),
            Err(e) => tracing::warn!(view = what, error = %e, "re-reading the store failed"),
        }
    }
}
