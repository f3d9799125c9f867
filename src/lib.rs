//! # shelf
//!
//! A product search engine for shopping. A catalogue ([`catalog`]) is imported into an index
//! directory ([`index`]) holding a BM25 index ([`lexical`]); an [`engine::Engine`] answers
//! [`search::SearchRequest`]s over it, from the CLI or the HTTP [`server`]. Candidates from
//! BM25 and the vector index ([`dense`]) are fused ([`retrieve`]), described as
//! [`features`] and reordered by a learned ranker ([`rank`]); [`train`] fits the rankers
//! and [`eval`] measures everything on judged queries; [`events`] logs what was shown and
//! what shoppers did, and learns from it.
//!
//! The bundled demo catalogue and its judged queries come from [`demo`]; what searches work
//! out and later searches reuse (query vectors, typo matches, parsed products) is [`kept`].

pub mod catalog;
pub mod demo;
pub mod dense;
pub mod engine;
pub mod eval;
pub mod events;
pub mod features;
pub mod index;
pub mod kept;
pub mod latency;
pub mod lexical;
pub mod progress;
pub mod rank;
pub mod retrieve;
pub mod search;
pub mod server;
pub mod train;
