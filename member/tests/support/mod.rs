//! A real member server for these tests: the apiserver's test harness (one copy, shared with the
//! apiserver's tests) with a [`Member`] as its write hook and the simulator running next to it.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

#[path = "../../../apiserver/tests/common/mod.rs"]
pub mod common;

use std::sync::Arc;

use cellfed_member::{Member, SimConfig, run_simulator};

/// A member server (one simulated node): defaulting and allocation on every write, workload
/// statuses moved forward by the simulator until the test's runtime ends.
pub async fn start_member(tag: &str) -> common::Running {
    let member = Arc::new(Member::new(SimConfig::default()));
    let hook = member.clone();
    let srv = common::start_with(tag, |c| c.write_hook = Some(hook)).await;
    tokio::spawn(run_simulator(srv.state.clone(), member));
    srv
}
