//! From user text and filters to a tantivy query, without any query syntax.

use std::collections::HashSet;
use std::ops::Bound;
use std::sync::Arc;

use tantivy::query::{BooleanQuery, BoostQuery, ConstScoreQuery, EmptyQuery, Occur, Query, RangeQuery, TermQuery};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{Searcher, Term};

use super::fuzzy::{CachedFuzzyQuery, FuzzyCache};
use super::{text, LexicalIndex};
use super::{LexicalConfig, MatchConfig};
use crate::search::Filters;

/// The terms a query text becomes, field by field, and which of its words are matched
/// fuzzily: a request analyses its text once ([`LexicalIndex::analyze`]) for both its search
/// and the BM25 scores of the candidates the search did not find.
#[derive(Clone)]
pub struct QueryPlan {
    /// Each searched field with its boost and its distinct terms.
    fields: Vec<(Field, f32, Vec<Term>)>,
    /// Unstemmed title terms matched within an edit distance.
    fuzzy: Vec<Term>,
    /// Terms that may be matched fuzzily if the exact query finds too little.
    widen: Vec<Term>,
    fuzzy_boost: f32,
    /// The index's remembered fuzzy matches.
    remembered: Arc<FuzzyCache>,
    /// Each word of the query with every term (of every field) that stands for it.
    words: Vec<Vec<Term>>,
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
        let words = words(index, &searched, text, config.max_query_terms)?;
        Ok(QueryPlan { fields, fuzzy, widen, fuzzy_boost: config.fuzzy.boost, remembered: index.fuzzy.clone(), words })
    }

    /// How many of the query's words a product must match under `rule`.
    pub(super) fn required_words(&self, rule: &MatchConfig) -> usize {
        let n = self.words.len();
        if n <= rule.all_up_to {
            n
        } else {
            ((n as f64 * rule.share).ceil() as usize).clamp(1, n)
        }
    }

    /// A non-scoring query that matches products holding at least `required` of the query's
    /// words in any field (a word counts when any of its terms, or its fuzzy variant, matches).
    pub(super) fn word_filter(&self, required: usize) -> Option<Box<dyn Query>> {
        if required <= 1 {
            return None;
        }
        let clauses: Vec<Box<dyn Query>> = self
            .words
            .iter()
            .map(|terms| {
                let mut alternatives: Vec<Box<dyn Query>> = terms
                    .iter()
                    .map(|t| Box::new(TermQuery::new(t.clone(), IndexRecordOption::Basic)) as Box<dyn Query>)
                    .collect();
                alternatives.extend(terms.iter().filter(|t| self.fuzzy.contains(t)).map(|t| self.fuzzy_query(t)));
                Box::new(BooleanQuery::union(alternatives)) as Box<dyn Query>
            })
            .collect();
        let at_least = BooleanQuery::union_with_minimum_required_clauses(clauses, required);
        Some(Box::new(ConstScoreQuery::new(Box::new(at_least), 0.0)))
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

    /// A term matched within 1 edit, or 2 for words of 8 letters or more.
    fn fuzzy_query(&self, term: &Term) -> Box<dyn Query> {
        let length = term.value().as_str().map_or(0, |w| w.chars().count());
        let distance = if length >= 8 { 2 } else { 1 };
        Box::new(CachedFuzzyQuery::new(term.clone(), distance, self.remembered.clone()))
    }

    /// The scoring query, restricted by every given non-scoring filter.
    pub(super) fn query(&self, filters: &[Option<&dyn Query>]) -> Box<dyn Query> {
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for (_, boost, terms) in &self.fields {
            let union: Vec<Box<dyn Query>> = terms
                .iter()
                .map(|term| Box::new(TermQuery::new(term.clone(), IndexRecordOption::WithFreqs)) as Box<dyn Query>)
                .collect();
            clauses.push((Occur::Should, Box::new(BoostQuery::new(Box::new(BooleanQuery::union(union)), *boost))));
        }
        for term in &self.fuzzy {
            clauses.push((Occur::Should, Box::new(BoostQuery::new(self.fuzzy_query(term), self.fuzzy_boost))));
        }
        let text: Box<dyn Query> = Box::new(BooleanQuery::new(clauses));
        let restrictions: Vec<Box<dyn Query>> = filters.iter().flatten().map(|f| f.box_clone()).collect();
        if restrictions.is_empty() {
            return text;
        }
        let mut all = vec![(Occur::Must, text)];
        all.extend(restrictions.into_iter().map(|r| (Occur::Must, r)));
        Box::new(BooleanQuery::new(all))
    }
}

/// The query's words (at most `max`), each with the terms every searched field makes of it.
/// A compound ("deck over" → "deckover") stands for both of its words.
fn words(
    index: &LexicalIndex,
    searched: &[(Field, f32, &str)],
    text: &str,
    max: usize,
) -> tantivy::Result<Vec<Vec<Term>>> {
    let f = index.fields();
    let raw: Vec<&str> = text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).take(max).collect();
    let mut words = Vec::with_capacity(raw.len());
    for word in &raw {
        let mut terms = Vec::new();
        for (field, boost, _) in searched {
            if *boost > 0.0 {
                let input = if *field == f.title_raw { text::split_letters_and_digits(word) } else { word.to_string() };
                terms.extend(self::terms(index, *field, &input, max)?);
            }
        }
        words.push(terms);
    }
    for (at, pair) in raw.windows(2).enumerate() {
        let joined = self::terms(index, f.title_raw, &format!("{}{}", pair[0], pair[1]), 1)?;
        words[at].extend(joined.iter().cloned());
        words[at + 1].extend(joined);
    }
    Ok(words)
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
