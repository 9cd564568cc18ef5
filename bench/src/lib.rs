//! Benchmarks of the store, apiserver and propagation; each prints its figures.
