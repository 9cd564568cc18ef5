//! Kubernetes Events on federated resources, with KubeFed's reasons and messages: a member write
//! records `CreateInCluster`, `UpdateInCluster`, `DeleteInCluster` or
//! `RemoveManagedLabelFromInCluster` (Normal) when it starts, and the same reason with `Failed`
//! appended (Warning) when it fails, e.g. `Creating Deployment "demo/web" in cluster "member1"`.
//! Only actual writes record events, so a resource in sync records none.
//!
//! Events are `core/v1` Events, as KubeFed's client-go recorder writes them (kube-runtime's
//! `events::Recorder` writes `events.k8s.io/v1` only, which cellfed's apiserver does not serve;
//! every Kubernetes host serves `core/v1`). As client-go's correlator does, an event identical to
//! one recorded in the last [`SERIES_WINDOW`] bumps that event's `count` and `lastTimestamp`
//! instead of creating another object. Recording never holds a reconcile: it runs in the
//! background and a failure is only logged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::plan::MemberAction;

/// How long an identical event is counted on the same Event object.
pub const SERIES_WINDOW: Duration = Duration::from_secs(600);
/// At most this many distinct events are remembered for counting.
const REMEMBERED: usize = 4096;

/// What to record.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Note {
    /// Warning (true) or Normal.
    pub warning: bool,
    /// KubeFed's reason, e.g. `CreateInCluster`.
    pub reason: String,
    /// The sentence `kubectl describe` shows.
    pub message: String,
}

/// The Normal note of a member write starting, and the operation's verb for its failure (pure):
/// KubeFed's `"%s %s %q in cluster %q"` with the target kind and the member object's
/// `namespace/name` (its name for cluster-scoped kinds).
pub fn starting(action: &MemberAction, kind: &str) -> (Note, &'static str) {
    let (op, continuous, reason) = match action {
        MemberAction::Create { .. } => ("create", "Creating", "CreateInCluster"),
        MemberAction::Update { .. } => ("update", "Updating", "UpdateInCluster"),
        MemberAction::Delete { .. } => ("delete", "Deleting", "DeleteInCluster"),
        MemberAction::RemoveManagedLabel { .. } => (
            "remove managed label from",
            "Removing managed label from",
            "RemoveManagedLabelFromInCluster",
        ),
    };
    let note = Note {
        warning: false,
        reason: reason.into(),
        message: format!(
            "{continuous} {kind} {:?} in cluster {:?}",
            qualified(action),
            action.cluster()
        ),
    };
    (note, op)
}

/// The Warning note of a failed member write (pure): KubeFed's `<Reason>Failed` and
/// `Failed to <op> <Kind> "<ns/name>" in cluster "<cluster>": <error>`.
pub fn failed(action: &MemberAction, kind: &str, error: &str) -> Note {
    let (start, op) = starting(action, kind);
    Note {
        warning: true,
        reason: format!("{}Failed", start.reason),
        message: format!(
            "Failed to {op} {kind} {:?} in cluster {:?}: {error}",
            qualified(action),
            action.cluster()
        ),
    }
}

/// `namespace/name` of the member object an action writes (`name` when cluster-scoped).
fn qualified(action: &MemberAction) -> String {
    let (namespace, name) = match action {
        MemberAction::Create { object, .. } | MemberAction::Update { object, .. } => {
            let meta = |k: &str| {
                object
                    .pointer(&format!("/metadata/{k}"))
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_string)
            };
            (meta("namespace"), meta("name").unwrap_or_default())
        }
        MemberAction::Delete {
            namespace, name, ..
        }
        | MemberAction::RemoveManagedLabel {
            namespace, name, ..
        } => (namespace.clone(), name.clone()),
    };
    match namespace.filter(|ns| !ns.is_empty()) {
        Some(ns) => format!("{ns}/{name}"),
        None => name,
    }
}

/// One recorded event, to count repeats on.
struct Recorded {
    namespace: String,
    name: String,
    count: i32,
    at: Instant,
}

/// Records events on the host.
pub struct Recorder {
    client: kube::Client,
    recorded: Mutex<HashMap<(String, String, Note), Recorded>>,
}

impl Recorder {
    /// A recorder writing through `client`.
    pub fn new(client: kube::Client) -> Self {
        Self {
            client,
            recorded: Mutex::new(HashMap::new()),
        }
    }

    /// Records `note` about `regarding` as `component` (KubeFed: `<federated kind>-controller`),
    /// in the background.
    pub fn record(self: &Arc<Self>, regarding: ObjectReference, component: String, note: Note) {
        let me = self.clone();
        tokio::spawn(async move {
            // network: one Event create or patch
            if let Err(e) = me.publish(&regarding, &component, &note).await {
                tracing::debug!(reason = %note.reason, error = %e, "recording an event");
            }
        });
    }

    async fn publish(
        &self,
        regarding: &ObjectReference,
        component: &str,
        note: &Note,
    ) -> Result<(), kube::Error> {
        let namespace = regarding
            .namespace
            .clone()
            .filter(|ns| !ns.is_empty())
            .unwrap_or_else(|| "default".into());
        let key = (
            component.to_string(),
            regarding.uid.clone().unwrap_or_else(|| {
                format!("{namespace}/{}", regarding.name.clone().unwrap_or_default())
            }),
            note.clone(),
        );
        let now = k8s_openapi::jiff::Timestamp::now();
        let repeat = self.recorded.lock().ok().and_then(|mut r| {
            r.retain(|_, e| e.at.elapsed() < SERIES_WINDOW);
            let e = r.get_mut(&key)?;
            e.count = e.count.saturating_add(1);
            e.at = Instant::now();
            Some((e.namespace.clone(), e.name.clone(), e.count))
        });
        if let Some((ns, name, count)) = repeat {
            let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
            let patch = json!({"count": count, "lastTimestamp": Time(now)});
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => return Ok(()),
                Err(kube::Error::Api(e)) if e.code == 404 => {} // expired: record anew
                Err(e) => return Err(e),
            }
        }
        let name = format!(
            "{}.{:x}",
            regarding.name.as_deref().unwrap_or(component),
            now.as_nanosecond()
        );
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
                ..ObjectMeta::default()
            },
            involved_object: regarding.clone(),
            reason: Some(note.reason.clone()),
            message: Some(note.message.clone()),
            type_: Some(if note.warning { "Warning" } else { "Normal" }.into()),
            source: Some(EventSource {
                component: Some(component.into()),
                host: None,
            }),
            reporting_component: Some(component.into()),
            reporting_instance: Some(component.into()),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            count: Some(1),
            ..Event::default()
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        api.create(&PostParams::default(), &event).await?;
        if let Ok(mut r) = self.recorded.lock() {
            if r.len() >= REMEMBERED
                && let Some(oldest) = r.iter().min_by_key(|(_, e)| e.at).map(|(k, _)| k.clone())
            {
                r.remove(&oldest);
            }
            r.insert(
                key,
                Recorded {
                    namespace,
                    name,
                    count: 1,
                    at: Instant::now(),
                },
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kubefed_reasons_and_messages() {
        let create = MemberAction::Create {
            cluster: "member1".into(),
            object: json!({"metadata": {"name": "web", "namespace": "demo"}}),
        };
        let (note, _) = starting(&create, "Deployment");
        assert_eq!(note.reason, "CreateInCluster");
        assert_eq!(
            note.message,
            r#"Creating Deployment "demo/web" in cluster "member1""#
        );
        assert!(!note.warning);
        let f = failed(&create, "Deployment", "the server refused");
        assert_eq!(f.reason, "CreateInClusterFailed");
        assert_eq!(
            f.message,
            r#"Failed to create Deployment "demo/web" in cluster "member1": the server refused"#
        );
        assert!(f.warning);

        let delete = MemberAction::Delete {
            cluster: "member2".into(),
            namespace: None,
            name: "ops".into(),
            options: None,
        };
        let (note, _) = starting(&delete, "ClusterRole");
        assert_eq!(note.reason, "DeleteInCluster");
        assert_eq!(
            note.message,
            r#"Deleting ClusterRole "ops" in cluster "member2""#
        );
        let unlabel = MemberAction::RemoveManagedLabel {
            cluster: "member2".into(),
            namespace: Some("demo".into()),
            name: "web".into(),
        };
        assert_eq!(
            failed(&unlabel, "Deployment", "x").reason,
            "RemoveManagedLabelFromInClusterFailed"
        );
        let update = MemberAction::Update {
            cluster: "member1".into(),
            object: json!({"metadata": {"name": "web", "namespace": "demo"}}),
        };
        assert_eq!(starting(&update, "Deployment").0.reason, "UpdateInCluster");
    }
}
