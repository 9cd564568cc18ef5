//! The cellfed controller: keeps member clusters in line with the federated resources on the host.
//! Planning ([`plan`]) is pure; everything else is thin I/O around it. It never serves HTTP APIs
//! other than metrics and never depends on the apiserver or webhook crates.

pub mod plan;
