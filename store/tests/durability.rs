//! SQLite acknowledges a write only once it is on disk (`synchronous=FULL`) unless the URL
//! relaxes it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use cellfed_store::{Config, Error, Store};
use common::{Db, Fixture};

/// `PRAGMA synchronous` of every connection of the pool (0 off, 1 normal, 2 full, 3 extra).
async fn synchronous(store: &Store) -> Vec<i64> {
    let mut conns = Vec::new();
    for _ in 0..2 {
        conns.push(store.pool().acquire().await.unwrap());
    }
    let mut levels = Vec::new();
    for conn in &mut conns {
        let level: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut **conn)
            .await
            .unwrap();
        levels.push(level);
    }
    levels
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_syncs_every_commit_unless_the_url_relaxes_it() {
    let fx = Fixture::new(Db::Sqlite, "durability");
    let store = fx.open().await;
    assert_eq!(synchronous(&store).await, [2, 2], "FULL by default");
    let kv = store.create("/a", b"1".to_vec(), 0).await.unwrap();
    drop(store);

    let relaxed = format!("{}?synchronous=normal", fx.url);
    let store = Store::open_with(Config::new(relaxed).with_table_prefix(&fx.prefix))
        .await
        .unwrap();
    assert_eq!(synchronous(&store).await, [1, 1]);
    // Same file, same data.
    assert_eq!(store.get("/a", None).await.unwrap(), Some(kv));

    let bad = format!("{}?synchronous=sometimes", fx.url);
    let refused = Store::open_with(Config::new(bad).with_table_prefix(&fx.prefix)).await;
    assert!(
        matches!(refused, Err(Error::InvalidConfig { .. })),
        "{:?}",
        refused.err()
    );
    fx.cleanup(&store).await;
}
