//! A handle with a value transformer stores only the transformed bytes and reads the values
//! back everywhere: get, list, watch events (both versions), write results, conflicts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use cellfed_store::{Error, EventKind, Store, ValueTransformer};
use common::{Fixture, take_events};

/// Stores `sealed:<key>:` + the value reversed; `old:` + the value is a readable older form.
struct Sealed;

impl ValueTransformer for Sealed {
    fn encode(&self, key: &str, mut value: Vec<u8>) -> Result<Vec<u8>, String> {
        if value == b"refuse" {
            return Err("refused".into());
        }
        value.reverse();
        Ok([format!("sealed:{key}:").into_bytes(), value].concat())
    }
    fn decode(&self, key: &str, stored: Vec<u8>) -> Result<(Vec<u8>, bool), String> {
        if let Some(old) = stored.strip_prefix(b"old:") {
            return Ok((old.to_vec(), true));
        }
        let prefix = format!("sealed:{key}:");
        let mut value = stored
            .strip_prefix(prefix.as_bytes())
            .ok_or("not sealed to this key")?
            .to_vec();
        value.reverse();
        Ok((value, false))
    }
}

/// An event's kind, value and previous value.
type Seen<'a> = (EventKind, &'a [u8], Option<&'a [u8]>);

/// The raw value column of the key's newest row.
async fn raw(store: &Store, key: &str) -> Vec<u8> {
    sqlx::query_scalar::<_, Vec<u8>>(&format!(
        "SELECT value FROM {} WHERE name = '{key}' ORDER BY revision DESC LIMIT 1",
        store.log_table()
    ))
    .fetch_one(store.pool())
    .await
    .unwrap()
}

async fn values_are_transformed_on_write_and_read(f: Fixture) {
    let plain = f.open().await;
    let store = plain.with_value_transformer(Arc::new(Sealed));
    let mut watch = store.watch("/t/", 0).await.unwrap();

    let created = store.create("/t/a", b"one".to_vec(), 0).await.unwrap();
    assert_eq!(created.value, b"one");
    assert_eq!(raw(&plain, "/t/a").await, b"sealed:/t/a:eno");
    assert_eq!(
        store.get("/t/a", None).await.unwrap().unwrap().value,
        b"one"
    );
    // a handle without the transformer sees the stored bytes
    assert_eq!(
        plain.get("/t/a", None).await.unwrap().unwrap().value,
        b"sealed:/t/a:eno"
    );

    let updated = store
        .update("/t/a", b"two".to_vec(), created.mod_revision, 0)
        .await
        .unwrap();
    assert_eq!(updated.value, b"two");
    match store
        .update("/t/a", b"three".to_vec(), created.mod_revision, 0)
        .await
    {
        Err(Error::Conflict {
            current: Some(c), ..
        }) => assert_eq!(c.value, b"two"),
        other => panic!("expected a conflict with the current value, got {other:?}"),
    }
    let list = store.list("/t/", Default::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    assert_eq!(list.items[0].value, b"two");
    assert!(!list.items[0].stale);

    // refused by the transformer: nothing written
    let before = common::row_count(&plain).await;
    assert!(matches!(
        store.create("/t/b", b"refuse".to_vec(), 0).await,
        Err(Error::Transform { .. })
    ));
    assert_eq!(common::row_count(&plain).await, before);

    let deleted = store.delete("/t/a", None).await.unwrap();
    assert_eq!(deleted.value, b"two");

    let events = take_events(&mut watch, 3, Duration::from_secs(10)).await;
    let seen: Vec<Seen> = events
        .iter()
        .map(|e| {
            (
                e.kind,
                e.kv.value.as_slice(),
                e.prev.as_ref().map(|p| p.value.as_slice()),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (EventKind::Created, &b"one"[..], None),
            (EventKind::Updated, &b"two"[..], Some(&b"one"[..])),
            (EventKind::Deleted, &b"two"[..], Some(&b"two"[..])),
        ]
    );

    // an older stored form reads as stale; one no key reads fails the read with the key named
    plain.create("/t/old", b"old:v".to_vec(), 0).await.unwrap();
    let old = store.get("/t/old", None).await.unwrap().unwrap();
    assert_eq!((old.value.as_slice(), old.stale), (&b"v"[..], true));
    plain.create("/t/junk", b"junk".to_vec(), 0).await.unwrap();
    match store.get("/t/junk", None).await {
        Err(Error::Transform { key, reason }) => {
            assert_eq!(key, "/t/junk");
            assert_eq!(reason, "not sealed to this key");
        }
        other => panic!("expected a transform error, got {other:?}"),
    }
    assert!(matches!(
        store.list("/t/", Default::default()).await,
        Err(Error::Transform { .. })
    ));
    f.cleanup(&plain).await;
}

for_each_backend!(values_are_transformed_on_write_and_read);
