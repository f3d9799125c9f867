//! Scoring a fixed set of products, as evaluation needs it: the rerank protocol orders each
//! query's judged products only, and `eval compare` asks why a learned ranker put one
//! product above another. Learned rankers score a query they were trained on with the
//! fold model that never saw it ([`Scoring::HeldOut`]).

use std::collections::HashSet;

use crate::engine::{Candidate, Engine, SearchError};
use crate::rank::Scoring;
use crate::retrieve::{fuse, Source};
use crate::search::RankerKind;

/// Scores only the given products for `query` (the rerank protocol). Products the ranker
/// cannot score are left out; callers rank them last.
pub fn score_products(
    engine: &Engine,
    query: &str,
    ranker: RankerKind,
    ids: &[String],
) -> Result<Vec<(String, f32)>, SearchError> {
    engine.check_ranker(ranker)?;
    let index = engine.index();
    let lexical = || {
        let plan = index.lexical.analyze(query, &index.config.lexical)?;
        index.lexical.score_ids(&plan, ids)
    };
    let dense = || -> Result<Vec<(String, f32)>, SearchError> {
        let Some(store) = engine.vectors() else { return Ok(Vec::new()) };
        let vector = engine.embed_query(query)?;
        let mut scored: Vec<(String, f32)> = ids
            .iter()
            .filter_map(|id| store.row_of(id).map(|row| (id.clone(), store.similarity(row, &vector))))
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(scored)
    };
    Ok(match ranker {
        learned if learned.is_learned() => {
            let candidates = judged_candidates(engine, query, ids)?;
            engine.rank_candidates(query, candidates, ranker, Scoring::HeldOut)?
        }
        RankerKind::Dense => dense()?,
        RankerKind::Hybrid => {
            let (bm25, dense) = (lexical()?, dense()?);
            fuse(&[(Source::Bm25, &bm25[..]), (Source::Dense, &dense[..])], &index.config.hybrid)
                .into_iter()
                .map(|c| (c.id, c.score))
                .collect()
        }
        _ => lexical()?,
    })
}

/// The given products as candidates of `query`, with the features they have when the
/// hybrid list is gathered as deep as serving gathers it.
fn judged_candidates(engine: &Engine, query: &str, ids: &[String]) -> Result<Vec<Candidate>, SearchError> {
    let depth = engine.index().config.hybrid.candidates;
    let wanted: HashSet<&String> = ids.iter().collect();
    Ok(engine.candidates_with_features(query, depth, ids)?.into_iter().filter(|c| wanted.contains(&c.id)).collect())
}

/// Why a learned ranker scores `winner` above `loser` for `query`: each feature's
/// contribution to the winner minus its contribution to the loser, largest first.
pub fn why(
    engine: &Engine,
    ranker: RankerKind,
    query: &str,
    winner: &str,
    loser: &str,
) -> Result<Vec<(String, f64)>, SearchError> {
    let ids = [winner.to_string(), loser.to_string()];
    let mut candidates = judged_candidates(engine, query, &ids)?;
    candidates.sort_by_key(|c| c.id != winner);
    if candidates.len() != 2 {
        return Ok(Vec::new());
    }
    let explained = engine.explain_candidates(query, &candidates, ranker, Scoring::HeldOut)?;
    let (w, l) = (&explained[0], &explained[1]);
    let mut diffs: Vec<(String, f64)> =
        w.contributions.iter().zip(&l.contributions).map(|((name, a), (_, b))| (name.clone(), a - b)).collect();
    diffs.sort_by(|x, y| y.1.total_cmp(&x.1));
    Ok(diffs)
}
