//! Relevance evaluation: judged query sets in TREC format.
//!
//! - queries: `qid<TAB>query` (further columns are ignored),
//! - qrels: `qid 0 docid grade`, whitespace-separated,
//! - runs: `qid Q0 docid rank score tag`.

pub mod trec;
