//! Storage encoding, in one place: what a stored value is and how an object becomes one —
//! decoding ([`codec`]), conversion to the storage version, the size and depth limits every
//! stored object respects ([`limits`]), encryption at rest ([`encryption`], a value transformer
//! on the store) — and what keeps in-memory views and the store's history current ([`follow`],
//! [`compaction`]). Below it is `cellfed-store`, which knows nothing of Kubernetes objects.

pub mod codec;
pub mod compaction;
pub mod encryption;
pub mod follow;
pub mod limits;
