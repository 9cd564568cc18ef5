//! Reconcilers of the federation plane. Planning is pure; I/O stays at the edges.
