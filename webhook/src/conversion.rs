//! The conversion webhook: `ConversionReview` (apiextensions.k8s.io/v1) between
//! `types.kubefed.io/v1beta1` and `v1beta2`, with the pure functions of `cellfed_api`.

use serde_json::{Value, json};

/// Converts every object to `desired_api_version`; the error names the object that failed.
pub fn convert_objects(
    objects: Vec<Value>,
    desired_api_version: &str,
) -> Result<Vec<Value>, String> {
    objects
        .into_iter()
        .map(|obj| {
            let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default().to_string();
            let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
            if !kind.starts_with("Federated") {
                return Err(format!("cannot convert {kind:?} {name:?}: only federated kinds (Federated<Kind>) of types.kubefed.io are converted here"));
            }
            cellfed_api::convert(&obj, desired_api_version).map_err(|e| format!("{kind} {name:?}: {e}"))
        })
        .collect()
}

/// Answers one ConversionReview body. Malformed input gets a review with a Failure result (or,
/// when not even the uid can be read, a Failure with an empty uid), never a panic.
pub fn review(body: &[u8]) -> Value {
    let parsed: Result<Value, _> = serde_json::from_slice(body);
    let review = match parsed {
        Ok(v) => v,
        Err(e) => {
            return response(
                "",
                Err(format!(
                    "the request body is not a ConversionReview: invalid JSON: {e}"
                )),
            );
        }
    };
    let uid = review
        .pointer("/request/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if review.get("apiVersion").and_then(Value::as_str) != Some("apiextensions.k8s.io/v1")
        || review.get("kind").and_then(Value::as_str) != Some("ConversionReview")
    {
        return response(
            &uid,
            Err("expected apiVersion apiextensions.k8s.io/v1, kind ConversionReview".into()),
        );
    }
    let Some(request) = review.get("request") else {
        return response(&uid, Err("the ConversionReview has no request".into()));
    };
    let Some(desired) = request.get("desiredAPIVersion").and_then(Value::as_str) else {
        return response(&uid, Err("request.desiredAPIVersion is missing".into()));
    };
    let Some(objects) = request.get("objects").and_then(Value::as_array) else {
        return response(&uid, Err("request.objects is missing or not a list".into()));
    };
    response(&uid, convert_objects(objects.clone(), desired))
}

fn response(uid: &str, outcome: Result<Vec<Value>, String>) -> Value {
    let (result, converted) = match outcome {
        Ok(objects) => (json!({"status": "Success"}), objects),
        Err(message) => (json!({"status": "Failure", "message": message}), Vec::new()),
    };
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "ConversionReview",
        "response": {"uid": uid, "convertedObjects": converted, "result": result},
    })
}
