//! From user text and filters to a tantivy query, without any query syntax.

use std::collections::HashSet;
use std::ops::Bound;

use tantivy::query::{
    BooleanQuery, BoostQuery, ConstScoreQuery, EmptyQuery, FuzzyTermQuery, Occur, Query, RangeQuery, TermQuery,
    TermSetQuery,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{Searcher, Term};

use super::{text, LexicalIndex};
use crate::index::LexicalConfig;
use crate::search::Filters;

/// The terms a query text becomes, field by field.
#[derive(Clone)]
pub(super) struct QueryPlan {
    /// Each searched field with its boost and its distinct terms.
    fields: Vec<(Field, f32, Vec<Term>)>,
    /// Unstemmed title terms matched within an edit distance.
    fuzzy: Vec<Term>,
    /// Terms that may be matched fuzzily if the exact query finds too little.
    widen: Vec<Term>,
    fuzzy_boost: f32,
}

impl QueryPlan {
    pub(super) fn new(
        index: &LexicalIndex,
        searcher: &Searcher,
        text: &str,
        config: &LexicalConfig,
    ) -> tantivy::Result<QueryPlan> {
        let f = index.fields();
        let b = &config.boosts;
        let split = text::split_letters_and_digits(text);
        let joined = text::joined_pairs(text);
        let searched = [
            (f.title, b.title, text),
            (f.title_raw, b.title_raw, split.as_str()),
            (f.title_raw, b.joined, joined.as_str()),
            (f.description, b.description, text),
            (f.brand, b.brand, text),
            (f.category, b.category, text),
            (f.attributes, b.attributes, text),
        ];
        let mut fields = Vec::new();
        for (field, boost, input) in searched {
            if boost > 0.0 {
                let terms = terms(index, field, input, config.max_query_terms)?;
                if !terms.is_empty() {
                    fields.push((field, boost, terms));
                }
            }
        }
        let (mut fuzzy, mut widen) = (Vec::new(), Vec::new());
        if config.fuzzy.enabled {
            for term in terms(index, f.title_raw, text, config.max_query_terms)? {
                let value = term.value();
                let word = value.as_str().unwrap_or_default();
                if word.chars().count() < config.fuzzy.min_term_len || !word.chars().all(char::is_alphabetic) {
                    continue;
                }
                // A word no title contains is most likely a typo: match it fuzzily at once.
                if searcher.doc_freq(&term)? == 0 {
                    fuzzy.push(term);
                } else {
                    widen.push(term);
                }
            }
        }
        Ok(QueryPlan { fields, fuzzy, widen, fuzzy_boost: config.fuzzy.boost })
    }

    pub(super) fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.fuzzy.is_empty()
    }

    pub(super) fn has_fuzzy(&self) -> bool {
        !self.fuzzy.is_empty()
    }

    pub(super) fn can_widen(&self) -> bool {
        !self.widen.is_empty()
    }

    /// The same plan with every eligible term also matched fuzzily.
    pub(super) fn widened(&self) -> QueryPlan {
        let mut wider = self.clone();
        wider.fuzzy.append(&mut wider.widen);
        wider
    }

    /// The scoring query, restricted by `filter` when there is one.
    pub(super) fn query(&self, filter: Option<&dyn Query>) -> Box<dyn Query> {
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for (_, boost, terms) in &self.fields {
            let union: Vec<Box<dyn Query>> = terms
                .iter()
                .map(|term| Box::new(TermQuery::new(term.clone(), IndexRecordOption::WithFreqs)) as Box<dyn Query>)
                .collect();
            clauses.push((Occur::Should, Box::new(BoostQuery::new(Box::new(BooleanQuery::union(union)), *boost))));
        }
        for term in &self.fuzzy {
            let length = term.value().as_str().map_or(0, |w| w.chars().count());
            let distance = if length >= 8 { 2 } else { 1 };
            let fuzzy = FuzzyTermQuery::new(term.clone(), distance, true);
            clauses.push((Occur::Should, Box::new(BoostQuery::new(Box::new(fuzzy), self.fuzzy_boost))));
        }
        let text = Box::new(BooleanQuery::new(clauses));
        match filter {
            None => text,
            Some(filter) => Box::new(BooleanQuery::new(vec![(Occur::Must, text), (Occur::Must, filter.box_clone())])),
        }
    }
}

/// The distinct terms `field`'s analyzer makes of `text`, at most `max`.
fn terms(index: &LexicalIndex, field: Field, text: &str, max: usize) -> tantivy::Result<Vec<Term>> {
    let mut analyzer = index.tantivy().tokenizer_for_field(field)?;
    let mut stream = analyzer.token_stream(text);
    let mut seen = HashSet::new();
    let mut terms = Vec::new();
    while terms.len() < max && stream.advance() {
        let token = stream.token().text.clone();
        if seen.insert(token.clone()) {
            terms.push(Term::from_field_text(field, &token));
        }
    }
    Ok(terms)
}

/// A query that matches exactly the products with these ids, scoring nothing.
pub(super) fn only_ids(index: &LexicalIndex, ids: &[String]) -> Box<dyn Query> {
    let terms = ids.iter().map(|id| Term::from_field_text(index.fields().id, id));
    Box::new(ConstScoreQuery::new(Box::new(TermSetQuery::new(terms)), 0.0))
}

/// A query that matches exactly the products `filters` allow, scoring nothing.
pub(super) fn filters(index: &LexicalIndex, filters: &Filters) -> Option<Box<dyn Query>> {
    if filters.is_empty() {
        return None;
    }
    let f = index.fields();
    let term_query = |term: Term| Box::new(TermQuery::new(term, IndexRecordOption::Basic)) as Box<dyn Query>;
    let mut musts: Vec<Box<dyn Query>> = Vec::new();
    if !filters.brand.is_empty() {
        let brands: Vec<Box<dyn Query>> = filters
            .brand
            .iter()
            .filter_map(|name| index.brand(name))
            .map(|facet| term_query(Term::from_facet(f.brand_facet, facet)))
            .collect();
        musts.push(if brands.is_empty() { Box::new(EmptyQuery) } else { Box::new(BooleanQuery::union(brands)) });
    }
    if let Some(category) = &filters.category {
        musts.push(match index.category(category) {
            Some(facet) => term_query(Term::from_facet(f.category_facet, &facet)),
            None => Box::new(EmptyQuery),
        });
    }
    let bound = |value: Option<f64>, field: Field| {
        value.map_or(Bound::Unbounded, |v| Bound::Included(Term::from_field_f64(field, v)))
    };
    if filters.price_min.is_some() || filters.price_max.is_some() {
        musts.push(Box::new(RangeQuery::new(bound(filters.price_min, f.price), bound(filters.price_max, f.price))));
    }
    if filters.min_rating.is_some() {
        musts.push(Box::new(RangeQuery::new(bound(filters.min_rating, f.rating), Bound::Unbounded)));
    }
    if let Some(in_stock) = filters.in_stock {
        musts.push(term_query(Term::from_field_bool(f.in_stock, in_stock)));
    }
    Some(Box::new(ConstScoreQuery::new(Box::new(BooleanQuery::intersection(musts)), 0.0)))
}
