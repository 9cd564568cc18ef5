//! The store's contract, run unchanged against SQLite, MariaDB/MySQL and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use cellfed_store::{Error, EventKind, ListOptions, Store};
use common::{Fixture, assert_quiet, revisions, row_count, take_events};

const DEADLINE: Duration = Duration::from_secs(20);

for_each_backend!(
    create_get_update_delete,
    failed_writes_do_not_consume_revisions,
    list_prefix_with_limit_and_continuation,
    reads_at_old_and_future_revisions,
    watch_replays_history_then_follows_live_writes,
    watch_filters_by_prefix_and_starts_after_revision,
    lagging_watcher_is_cut_off,
    watcher_over_its_byte_budget_is_cut_off,
    compaction_expires_old_reads_and_shrinks_the_table,
    reopen_keeps_data_and_revision,
);

async fn create_get_update_delete(fx: Fixture) {
    let store = fx.open().await;
    let base = store.current_revision().await.unwrap();
    assert_eq!(base, 0);

    let v1 = store.create("/r/a", b"one".to_vec(), 0).await.unwrap();
    assert_eq!((v1.create_revision, v1.mod_revision), (1, 1));
    assert_eq!(store.get("/r/a", None).await.unwrap(), Some(v1.clone()));
    assert!(matches!(
        store.create("/r/a", b"again".to_vec(), 0).await,
        Err(Error::AlreadyExists { .. })
    ));

    let conflict = store.update("/r/a", b"x".to_vec(), 99, 0).await;
    match conflict {
        Err(Error::Conflict {
            expected, current, ..
        }) => {
            assert_eq!(expected, 99);
            assert_eq!(current.as_deref(), Some(&v1));
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    let v2 = store.update("/r/a", b"two".to_vec(), 1, 30).await.unwrap();
    assert_eq!((v2.create_revision, v2.mod_revision, v2.lease), (1, 2, 30));
    assert_eq!(store.get("/r/a", None).await.unwrap(), Some(v2.clone()));

    assert!(matches!(
        store.delete("/r/a", Some(1)).await,
        Err(Error::Conflict { .. })
    ));
    let gone = store.delete("/r/a", Some(2)).await.unwrap();
    assert_eq!(gone.value, b"two");
    assert_eq!((gone.create_revision, gone.mod_revision), (1, 3));
    assert_eq!(store.get("/r/a", None).await.unwrap(), None);
    assert!(matches!(
        store.update("/r/a", b"x".to_vec(), 3, 0).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        store.delete("/r/a", None).await,
        Err(Error::NotFound { .. })
    ));

    // A new life of the key starts at its own revision.
    let again = store.create("/r/a", b"three".to_vec(), 0).await.unwrap();
    assert_eq!((again.create_revision, again.mod_revision), (4, 4));
    // Unconditional delete, empty values survive the round trip.
    let empty = store.create("/r/empty", Vec::new(), 0).await.unwrap();
    assert_eq!(store.get("/r/empty", None).await.unwrap(), Some(empty));
    store.delete("/r/empty", None).await.unwrap();
    assert_eq!(store.current_revision().await.unwrap(), 6);
    fx.cleanup(&store).await;
}

async fn failed_writes_do_not_consume_revisions(fx: Fixture) {
    let store = fx.open().await;
    store.create("/k", b"v".to_vec(), 0).await.unwrap();
    for _ in 0..5 {
        assert!(store.create("/k", b"v".to_vec(), 0).await.is_err());
        assert!(store.update("/k", b"v".to_vec(), 42, 0).await.is_err());
        assert!(store.update("/missing", b"v".to_vec(), 1, 0).await.is_err());
        assert!(store.delete("/missing", None).await.is_err());
    }
    store.update("/k", b"w".to_vec(), 1, 0).await.unwrap();
    assert_eq!(store.current_revision().await.unwrap(), 2);
    assert_eq!(revisions(&store).await, vec![1, 2]);
    fx.cleanup(&store).await;
}

async fn list_prefix_with_limit_and_continuation(fx: Fixture) {
    let store = fx.open().await;
    for i in 0..25 {
        store
            .create(
                &format!("/registry/pods/ns/p{i:02}"),
                format!("pod{i}").into_bytes(),
                0,
            )
            .await
            .unwrap();
    }
    // Neighbours that share a string prefix but not the key prefix, and one with a `%`.
    store
        .create("/registry/pods0", b"x".to_vec(), 0)
        .await
        .unwrap();
    store
        .create("/registry/pod", b"x".to_vec(), 0)
        .await
        .unwrap();
    store
        .create("/registry/pods/n%/x", b"x".to_vec(), 0)
        .await
        .unwrap();
    store.delete("/registry/pods/ns/p03", None).await.unwrap();
    let p05 = store
        .get("/registry/pods/ns/p05", None)
        .await
        .unwrap()
        .unwrap();
    store
        .update(
            "/registry/pods/ns/p05",
            b"new".to_vec(),
            p05.mod_revision,
            0,
        )
        .await
        .unwrap();

    let all = store
        .list("/registry/pods/ns/", ListOptions::default())
        .await
        .unwrap();
    assert_eq!(all.items.len(), 24);
    assert_eq!(all.remaining, 0);
    assert_eq!(all.revision, store.current_revision().await.unwrap());
    let keys: Vec<_> = all.items.iter().map(|kv| kv.key.clone()).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert!(!keys.contains(&"/registry/pods/ns/p03".to_owned()));
    let p05_now = all.items.iter().find(|kv| kv.key.ends_with("p05")).unwrap();
    assert_eq!(p05_now.value, b"new");

    // Pages of 10 with continuation, all at the first page's revision.
    let mut seen = Vec::new();
    let mut start_after = None;
    let mut at = None;
    loop {
        let page = store
            .list(
                "/registry/pods/ns/",
                ListOptions {
                    revision: at,
                    limit: Some(10),
                    start_after: start_after.clone(),
                },
            )
            .await
            .unwrap();
        at = Some(page.revision);
        // A write between pages must not show up in later pages.
        store
            .create(
                &format!("/registry/pods/ns/q{}", seen.len()),
                b"late".to_vec(),
                0,
            )
            .await
            .unwrap();
        seen.extend(page.items.iter().map(|kv| kv.key.clone()));
        assert_eq!(page.remaining as usize, 24 - seen.len());
        if page.remaining == 0 {
            break;
        }
        start_after = page.items.last().map(|kv| kv.key.clone());
    }
    assert_eq!(seen, keys);

    assert_eq!(store.count("/registry/pods/ns/").await.unwrap().0, 27);
    assert_eq!(store.count("/registry/pods/").await.unwrap().0, 28);
    assert_eq!(store.count("").await.unwrap().0, 30);
    assert_eq!(
        store
            .list("/nothing/", ListOptions::default())
            .await
            .unwrap()
            .items
            .len(),
        0
    );
    fx.cleanup(&store).await;
}

async fn reads_at_old_and_future_revisions(fx: Fixture) {
    let store = fx.open().await;
    let a1 = store.create("/a", b"1".to_vec(), 0).await.unwrap();
    let a2 = store
        .update("/a", b"2".to_vec(), a1.mod_revision, 0)
        .await
        .unwrap();
    store.create("/b", b"b".to_vec(), 0).await.unwrap();
    store.delete("/a", None).await.unwrap();

    assert_eq!(store.get("/a", Some(1)).await.unwrap(), Some(a1));
    assert_eq!(store.get("/a", Some(3)).await.unwrap(), Some(a2));
    assert_eq!(store.get("/a", Some(4)).await.unwrap(), None);
    assert_eq!(store.get("/b", Some(2)).await.unwrap(), None);
    let at3 = store
        .list(
            "/",
            ListOptions {
                revision: Some(3),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(at3.revision, 3);
    assert_eq!(
        at3.items
            .iter()
            .map(|kv| kv.key.as_str())
            .collect::<Vec<_>>(),
        vec!["/a", "/b"]
    );
    assert!(matches!(
        store.get("/a", Some(5)).await,
        Err(Error::FutureRevision {
            requested: 5,
            current: 4
        })
    ));
    assert!(matches!(
        store
            .list(
                "/",
                ListOptions {
                    revision: Some(9),
                    ..Default::default()
                }
            )
            .await,
        Err(Error::FutureRevision { .. })
    ));
    fx.cleanup(&store).await;
}

async fn watch_replays_history_then_follows_live_writes(fx: Fixture) {
    let store = fx.open().await;
    let a = store.create("/w/a", b"1".to_vec(), 0).await.unwrap();
    let a = store
        .update("/w/a", b"2".to_vec(), a.mod_revision, 0)
        .await
        .unwrap();
    let mut watch = store.watch("/w/", 0).await.unwrap();
    let history = take_events(&mut watch, 2, DEADLINE).await;
    assert_eq!(history[0].kind, EventKind::Created);
    assert_eq!(history[0].prev, None);
    assert_eq!(history[1].kind, EventKind::Updated);
    assert_eq!(history[1].kv, a);
    assert_eq!(history[1].prev.as_ref().unwrap().value, b"1");
    assert_eq!(history[1].prev.as_ref().unwrap().mod_revision, 1);

    store.delete("/w/a", None).await.unwrap();
    store.create("/w/b", b"b".to_vec(), 0).await.unwrap();
    let live = take_events(&mut watch, 2, DEADLINE).await;
    assert_eq!(live[0].kind, EventKind::Deleted);
    assert_eq!(live[0].kv.value, b"2", "a deletion carries the last value");
    assert_eq!(live[0].kv.mod_revision, 3, "…at the deletion revision");
    assert_eq!(live[0].prev.as_ref().unwrap().mod_revision, 2);
    assert_eq!(
        (live[1].kind, live[1].kv.mod_revision),
        (EventKind::Created, 4)
    );
    assert_quiet(&mut watch, Duration::from_millis(200)).await;
    fx.cleanup(&store).await;
}

async fn watch_filters_by_prefix_and_starts_after_revision(fx: Fixture) {
    let store = fx.open().await;
    for i in 0..10 {
        store.create(&format!("/x/{i}"), vec![i], 0).await.unwrap();
        store.create(&format!("/y/{i}"), vec![i], 0).await.unwrap();
    }
    // Revisions 1..=20 alternate /x, /y: after 10, /x has 11, 13, … 19.
    let mut watch = store.watch("/x/", 10).await.unwrap();
    let mut future = store.watch("/x/", 22).await.unwrap();
    let got = take_events(&mut watch, 5, DEADLINE).await;
    let revs: Vec<i64> = got.iter().map(|e| e.kv.mod_revision).collect();
    assert_eq!(revs, vec![11, 13, 15, 17, 19]);
    store.create("/y/late", b"y".to_vec(), 0).await.unwrap(); // 21
    store.create("/x/late", b"x".to_vec(), 0).await.unwrap(); // 22
    store.create("/x/later", b"x".to_vec(), 0).await.unwrap(); // 23
    let got = take_events(&mut watch, 2, DEADLINE).await;
    assert_eq!(got[0].kv.key, "/x/late");
    assert_eq!(got[1].kv.key, "/x/later");
    let got = take_events(&mut future, 1, DEADLINE).await;
    assert_eq!(
        got[0].kv.mod_revision, 23,
        "a watch from a future revision starts there"
    );
    fx.cleanup(&store).await;
}

async fn lagging_watcher_is_cut_off(fx: Fixture) {
    let mut config = fx.config();
    config.watch_buffer = 4;
    let store = Store::open_with(config).await.unwrap();
    let mut watch = store.watch("/", 0).await.unwrap();
    for i in 0..20 {
        store.create(&format!("/{i}"), vec![], 0).await.unwrap();
    }
    // The consumer never kept up: it gets what fitted, then the cut, then the end.
    let mut received = 0;
    let outcome = tokio::time::timeout(DEADLINE, async {
        loop {
            match futures::StreamExt::next(&mut watch).await {
                Some(Ok(_)) => received += 1,
                Some(Err(e)) => return Some(e),
                None => return None,
            }
        }
    })
    .await
    .expect("the lagging watcher was neither cut off nor fed");
    match outcome {
        Some(Error::WatcherLagged) => assert!(received < 20),
        other => panic!("expected WatcherLagged, got {other:?} after {received} events"),
    }
    assert!(futures::StreamExt::next(&mut watch).await.is_none());
    // Others are unaffected: a new watch from where it stopped sees everything.
    let mut again = store.watch("/", 0).await.unwrap();
    assert_eq!(take_events(&mut again, 20, DEADLINE).await.len(), 20);
    fx.cleanup(&store).await;
}

async fn watcher_over_its_byte_budget_is_cut_off(fx: Fixture) {
    let mut config = fx.config();
    config.watch_buffer_bytes = 100_000;
    let store = Store::open_with(config).await.unwrap();
    let mut watch = store.watch("/", 0).await.unwrap();
    // 20 writes of 30 kB: far under the event budget, six times the byte budget.
    for i in 0..20 {
        store
            .create(&format!("/{i}"), vec![b'x'; 30_000], 0)
            .await
            .unwrap();
        assert!(
            store.watch_buffered_bytes() <= 100_000,
            "buffered {} bytes",
            store.watch_buffered_bytes()
        );
    }
    let mut received = 0;
    let outcome = tokio::time::timeout(DEADLINE, async {
        loop {
            match futures::StreamExt::next(&mut watch).await {
                Some(Ok(_)) => received += 1,
                Some(Err(e)) => return Some(e),
                None => return None,
            }
        }
    })
    .await
    .expect("the watcher over its byte budget was neither cut off nor fed");
    match outcome {
        Some(Error::WatcherLagged) => assert!(received <= 4, "{received} events fitted"),
        other => panic!("expected WatcherLagged, got {other:?} after {received} events"),
    }
    assert_eq!(store.watch_buffered_bytes(), 0);
    // A reader that keeps up gets everything, whatever the byte budget.
    let mut again = store.watch("/", 0).await.unwrap();
    assert_eq!(take_events(&mut again, 20, DEADLINE).await.len(), 20);
    fx.cleanup(&store).await;
}

async fn compaction_expires_old_reads_and_shrinks_the_table(fx: Fixture) {
    let store = fx.open().await;
    for i in 0..20 {
        store
            .create(&format!("/c/{i}"), b"0".to_vec(), 0)
            .await
            .unwrap();
    }
    for round in 1..=4 {
        for i in 0..20 {
            let key = format!("/c/{i}");
            let kv = store.get(&key, None).await.unwrap().unwrap();
            store
                .update(&key, round.to_string().into_bytes(), kv.mod_revision, 0)
                .await
                .unwrap();
        }
    }
    for i in 0..5 {
        store.delete(&format!("/c/{i}"), None).await.unwrap();
    }
    // 100 writes + 5 deletes.
    let current = store.current_revision().await.unwrap();
    assert_eq!(current, 105);
    let before = row_count(&store).await;
    assert_eq!(before, 105);
    let old_list = store.list("/c/", ListOptions::default()).await.unwrap();
    let mut old_watch = store.watch("/c/", 50).await.unwrap();

    store.compact(current).await.unwrap();
    assert_eq!(store.compacted_revision().await.unwrap(), current);
    // One row per live key remains.
    assert_eq!(row_count(&store).await, 15);

    assert!(matches!(
        store.get("/c/7", Some(50)).await,
        Err(Error::Compacted {
            requested: 50,
            compacted: 105
        })
    ));
    assert!(matches!(
        store
            .list(
                "/c/",
                ListOptions {
                    revision: Some(104),
                    ..Default::default()
                }
            )
            .await,
        Err(Error::Compacted { .. })
    ));
    assert!(matches!(
        store.watch("/c/", 104).await,
        Err(Error::Compacted { .. })
    ));
    // A watch that still needed compacted history is told so (it never sees a partial replay).
    let mut replayed = 0;
    loop {
        match tokio::time::timeout(DEADLINE, futures::StreamExt::next(&mut old_watch))
            .await
            .unwrap()
        {
            Some(Ok(_)) => replayed += 1,
            Some(Err(Error::Compacted { .. })) => break,
            other => panic!("expected Compacted after {replayed} events, got {other:?}"),
        }
    }
    assert!(replayed < 55);

    // Current reads are unchanged.
    let now = store.list("/c/", ListOptions::default()).await.unwrap();
    assert_eq!(now.items, old_list.items);
    assert_eq!(store.get("/c/3", None).await.unwrap(), None);
    assert_eq!(
        store.get("/c/7", Some(105)).await.unwrap().unwrap().value,
        b"4"
    );
    // Watches from the compacted revision on work, and see new writes.
    let mut watch = store.watch("/c/", current).await.unwrap();
    let kv = store.get("/c/9", None).await.unwrap().unwrap();
    store
        .update("/c/9", b"5".to_vec(), kv.mod_revision, 0)
        .await
        .unwrap();
    let got = take_events(&mut watch, 1, DEADLINE).await;
    assert_eq!(got[0].kv.mod_revision, 106);
    assert_eq!(got[0].prev.as_ref().unwrap().value, b"4");

    // compact_keep keeps the newest N revisions readable.
    for i in 0..10 {
        let kv = store.get("/c/9", None).await.unwrap().unwrap();
        store
            .update("/c/9", i.to_string().into_bytes(), kv.mod_revision, 0)
            .await
            .unwrap();
    }
    store.compact_keep(4).await.unwrap();
    assert_eq!(store.compacted_revision().await.unwrap(), 116 - 4);
    assert!(store.get("/c/9", Some(112)).await.is_ok());
    assert!(matches!(
        store.get("/c/9", Some(111)).await,
        Err(Error::Compacted { .. })
    ));
    assert_eq!(row_count(&store).await, 15 + 4);
    // Compacting backwards is a no-op, forwards past the head an error.
    store.compact(10).await.unwrap();
    assert_eq!(store.compacted_revision().await.unwrap(), 112);
    assert!(matches!(
        store.compact(1000).await,
        Err(Error::FutureRevision { .. })
    ));
    fx.cleanup(&store).await;
}

async fn reopen_keeps_data_and_revision(fx: Fixture) {
    let store = fx.open().await;
    store.create("/p", b"persist".to_vec(), 0).await.unwrap();
    store.create("/q", b"q".to_vec(), 0).await.unwrap();
    drop(store);
    let store = fx.open().await;
    assert_eq!(store.current_revision().await.unwrap(), 2);
    assert_eq!(
        store.get("/p", None).await.unwrap().unwrap().value,
        b"persist"
    );
    assert_eq!(
        store
            .create("/r", b"r".to_vec(), 0)
            .await
            .unwrap()
            .mod_revision,
        3
    );
    fx.cleanup(&store).await;
}

#[tokio::test]
async fn in_memory_sqlite_works_with_watches() {
    let store = Store::open("sqlite::memory:").await.unwrap();
    let mut watch = store.watch("/", 0).await.unwrap();
    store.create("/m", b"1".to_vec(), 0).await.unwrap();
    store.update("/m", b"2".to_vec(), 1, 0).await.unwrap();
    let got = take_events(&mut watch, 2, DEADLINE).await;
    assert_eq!(got[1].kv.value, b"2");
    assert_eq!(
        store
            .list("/", ListOptions::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
}

#[tokio::test]
async fn bad_configuration_is_refused() {
    let config = cellfed_store::Config::new("sqlite::memory:").with_table_prefix("x; DROP");
    assert!(matches!(
        Store::open_with(config).await,
        Err(Error::InvalidConfig { .. })
    ));
    assert!(matches!(
        Store::open("etcd://127.0.0.1:2379").await,
        Err(Error::InvalidConfig { .. })
    ));
}
