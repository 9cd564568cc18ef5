#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The example of docs/api.md is valid and converts as the document says.

use serde::Deserialize;
use serde_json::Value;

fn yaml_blocks() -> Vec<String> {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/api.md")).unwrap();
    doc.split("```yaml\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap().to_owned())
        .collect()
}

#[test]
fn docs_example_converts_to_the_stored_form_shown() {
    let blocks = yaml_blocks();
    assert_eq!(blocks.len(), 2, "the example and its stored form");
    let objects: Vec<Value> = serde_yaml::Deserializer::from_str(&blocks[0])
        .map(|d| Value::deserialize(d).unwrap())
        .collect();
    assert_eq!(objects.len(), 3);
    for cell in &objects[..2] {
        let cell: cellfed_api::Cell = serde_json::from_value(cell.clone()).unwrap();
        assert!(cell.derived_cluster_name().unwrap().ends_with(".shop"));
    }
    let v2 = &objects[2];
    let _typed: cellfed_api::TopologyResource = serde_json::from_value(v2.clone()).unwrap();
    let stored = cellfed_api::to_v1beta1(v2).unwrap();
    let shown: Value = serde_yaml::from_str(&blocks[1]).unwrap();
    assert_eq!(stored["metadata"], shown["metadata"]);
    for field in ["placement", "placementMask", "overrides"] {
        assert_eq!(stored["spec"][field], shown["spec"][field], "spec.{field}");
    }
    assert_eq!(cellfed_api::to_v1beta2(&stored).unwrap(), *v2);
}
