//! Features: what the learned ranker knows about one product for one query.
//!
//! Every candidate of a query becomes a row of [`NAMES`] numbers. They are chosen to mean the
//! same thing in any catalogue, so a model trained on one shop ranks another: ranks, scores
//! relative to the query's best, cosines, shares of the query's words a field holds, rather
//! than raw BM25 magnitudes that depend on one catalogue's statistics. A value the product
//! does not have (no price, no brand, not proposed by a source) is missing (`NaN`, which
//! LightGBM treats as missing), never 0.
//!
//! The schema is versioned: a model records [`SCHEMA_VERSION`] and [`NAMES`], and a model
//! trained on another schema is refused.
//!
//! ```
//! use shelf::catalog::Product;
//! use shelf::features::{self, QueryText, Signals};
//!
//! let product: Product = serde_json::from_str(r#"{"id": "1", "title": "Oak Vanity 36 in. Grey"}"#).unwrap();
//! let query = QueryText::new("36 in vanity grey");
//! let row = features::extract(&query, &product, &Signals::default());
//! assert_eq!(row[features::index_of("title_word_share").unwrap()], 1.0);
//! assert_eq!(row[features::index_of("number_share").unwrap()], 1.0);
//! assert!(row[features::index_of("log_price").unwrap()].is_nan()); // no price: missing
//! ```

use tantivy::tokenizer::{Language, LowerCaser, SimpleTokenizer, Stemmer, TextAnalyzer};

use crate::catalog::Product;

/// Bumped whenever a feature is added, removed, reordered or changes meaning.
pub const SCHEMA_VERSION: u32 = 2;

/// The features, in the order of a row. Documented in the README's feature table.
pub const NAMES: [&str; 40] = [
    // Candidate sources (scale-free).
    "bm25_rel",     // BM25 / the query's best BM25
    "bm25_rank",    // rank in the BM25 list (missing beyond its depth)
    "bm25_z",       // BM25 z-score over the query's BM25 list
    "dense_cosine", // cosine of query and product vectors
    "dense_gap",    // the query's best cosine − this cosine
    "dense_rank",   // rank in the dense list (missing beyond its depth)
    "fused_score",  // the hybrid convex score, from the two normalised scores
    "fused_rank",   // rank in the fused list (its length + 1 when not in it)
    "sources",      // how many sources proposed the product (0, 1, 2)
    // Query–title matching.
    "title_word_share",   // share of query words in the title, exactly
    "title_stem_share",   // … by stem ("chairs" ~ "chair")
    "title_fuzzy_share",  // … within one edit (words of 4+ letters)
    "title_idf_share",    // share of the query's IDF mass the title matches (rare words weigh more)
    "title_missing_idf",  // IDF of the rarest query word the title lacks / the query's highest IDF
    "title_all_words",    // 1 when every query word is in the title (by stem)
    "title_phrase",       // 1 when the whole query appears in the title as a phrase
    "title_in_order",     // 1 when the matched words keep the query's order (missing if < 2)
    "title_first_match",  // position of the first matched title word / title length
    "title_coverage",     // share of title words the query matched (specificity)
    "title_bigram_share", // share of adjacent query word pairs adjacent in the title
    "number_share",       // share of the query's numbers ("36", "3/4", "2x4") in title/attributes
    "unit_share",         // share of the query's number+unit pairs ("36 in") in the title
    "last_word_match",    // 1 when the query's last word (usually the product type) matches
    // Other fields.
    "brand_match",         // 1 when the product's brand is named in the query (missing: no brand)
    "category_share",      // share of query words in the category path
    "category_head_match", // 1 when a query word is the last word of the product's leaf category (by stem)
    // 0 when only other categories' last words are (missing: none is, or no category)
    "description_share", // share of query words in the description
    "attributes_share",  // share of query words in the attributes
    "any_field_share",   // share of query words in any field
    // The query.
    "query_words",
    "query_has_digits",
    // The product.
    "title_words",
    "log_price",
    "rating",
    "log_reviews",
    "log_popularity",
    "in_stock",
    "has_description",
    // Query–category affinity.
    "category_affinity",     // cosine of the query and the centroid of the product's category
    "category_affinity_gap", // the query's best category affinity − this one
];

pub const COUNT: usize = NAMES.len();

/// One candidate's features, in [`NAMES`] order.
pub type Row = [f32; COUNT];

/// The position of a feature in a row (a `const fn`, so that the extractor finds its
/// slots while compiling).
pub const fn index_of(name: &str) -> Option<usize> {
    let mut at = 0;
    while at < COUNT {
        let (a, b) = (NAMES[at].as_bytes(), name.as_bytes());
        if a.len() == b.len() {
            let mut i = 0;
            while i < a.len() && a[i] == b[i] {
                i += 1;
            }
            if i == a.len() {
                return Some(at);
            }
        }
        at += 1;
    }
    None
}

/// [`index_of`] for the extractor, evaluated while compiling: a misspelt name fails the
/// build instead of dropping a feature.
const fn at(name: &str) -> usize {
    match index_of(name) {
        Some(at) => at,
        None => panic!("not a feature name"),
    }
}

/// What retrieval knows about a candidate (each `None` becomes missing).
#[derive(Debug, Clone, Default)]
pub struct Signals {
    /// BM25 score, and rank when in the lexical list.
    pub bm25: Option<f32>,
    pub bm25_rank: Option<usize>,
    pub cosine: Option<f32>,
    pub dense_rank: Option<usize>,
    pub fused_rank: Option<usize>,
    /// The query's best BM25, mean and standard deviation over its lexical list.
    pub bm25_top: Option<f32>,
    pub bm25_mean_sd: Option<(f32, f32)>,
    /// The lowest BM25 of the lexical list (for min-max normalisation).
    pub bm25_floor: Option<f32>,
    /// The best and lowest cosine of the dense list.
    pub cosine_top: Option<f32>,
    pub cosine_floor: Option<f32>,
    /// The hybrid convex weight of the dense score.
    pub alpha: f32,
    pub category_affinity: Option<f32>,
    pub category_affinity_top: Option<f32>,
    /// Whether a query word is the last word of one of the catalogue's leaf categories, by
    /// stem: the query names a kind of product (known when the index holds category centroids).
    /// A query naming two ("vanity mirror") matches both kinds; irregular plurals ("Shelves")
    /// stem apart from their singulars and never match.
    pub query_names_kind: bool,
}

/// A query, analysed once for all its candidates.
pub struct QueryText {
    pub text: String,
    /// Lowercased words.
    words: Vec<String>,
    stems: Vec<String>,
    numbers: Vec<String>,
    /// "36in"-style number+unit pairs.
    units: Vec<String>,
    phrase: String,
    /// Inverse document frequency of each word in titles (1 for every word until
    /// [`QueryText::with_idf`]).
    idf: Vec<f32>,
}

impl QueryText {
    pub fn new(text: &str) -> QueryText {
        let words = words(text);
        let stems = words.iter().map(|w| stem(w)).collect();
        QueryText {
            text: text.to_string(),
            numbers: numbers(text),
            units: units(&words),
            phrase: words.join(" "),
            idf: vec![1.0; words.len()],
            words,
            stems,
        }
    }

    /// The query's word stems, in order.
    pub fn stems(&self) -> &[String] {
        &self.stems
    }

    /// Sets each word's IDF (in [`QueryText::stems`] order), from the catalogue's titles.
    pub fn with_idf(mut self, idf: Vec<f32>) -> QueryText {
        if idf.len() == self.words.len() {
            self.idf = idf;
        }
        self
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }
}

fn stemming_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default()).filter(LowerCaser).filter(Stemmer::new(Language::English)).build()
}

/// Stems remembered per thread: product texts repeat their words, and stemming costs more
/// than a lookup.
const STEM_CACHE: usize = 200_000;

thread_local! {
    static STEMMER: std::cell::RefCell<(TextAnalyzer, std::collections::HashMap<String, String>)> =
        std::cell::RefCell::new((stemming_analyzer(), std::collections::HashMap::new()));
}

/// The English stem of a lowercased word, as the index's `en_stem` analyzer makes it.
fn stem(word: &str) -> String {
    STEMMER.with(|cell| {
        let (analyzer, cache) = &mut *cell.borrow_mut();
        if let Some(stem) = cache.get(word) {
            return stem.clone();
        }
        let mut stream = analyzer.token_stream(word);
        let mut out = String::new();
        while stream.advance() {
            out.push_str(&stream.token().text);
        }
        if cache.len() >= STEM_CACHE {
            cache.clear();
        }
        cache.insert(word.to_string(), out.clone());
        out
    })
}

/// Lowercased alphanumeric words.
fn words(text: &str) -> Vec<String> {
    tokens(text).map(str::to_lowercase).collect()
}

/// The words of `text` as written: runs of letters and digits.
fn tokens(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty())
}

/// Numbers as written in product data: `36`, `3/4`, `2x4`, `1.5` (a number glued to a
/// unit, `36in`, gives `36`).
fn numbers(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = lower.chars().peekable();
    while let Some(c) = chars.next() {
        let joins = matches!(c, '/' | '.' | 'x')
            && !current.is_empty()
            && current.chars().last().is_some_and(|l| l.is_ascii_digit())
            && chars.peek().is_some_and(|n| n.is_ascii_digit());
        if c.is_ascii_digit() || joins {
            current.push(c);
        } else if !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out.dedup();
    out
}

/// Units shoppers write after numbers, mapped to one spelling.
fn unit(word: &str) -> Option<&'static str> {
    Some(match word.trim_end_matches('.') {
        "in" | "inch" | "inches" | "\"" => "in",
        "ft" | "foot" | "feet" => "ft",
        "gal" | "gallon" | "gallons" => "gal",
        "lb" | "lbs" | "pound" | "pounds" => "lb",
        "oz" | "ounce" | "ounces" => "oz",
        "v" | "volt" | "volts" => "v",
        "w" | "watt" | "watts" => "w",
        "mm" => "mm",
        "cm" => "cm",
        "qt" | "quart" => "qt",
        "pk" | "pack" => "pack",
        "amp" | "amps" | "a" => "amp",
        _ => return None,
    })
}

/// "36 in", "36in", "36-inch" → "36in": a number with the unit after it.
fn units(words: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for (at, word) in words.iter().enumerate() {
        let digits: String = word.chars().take_while(char::is_ascii_digit).collect();
        if digits.is_empty() {
            continue;
        }
        let rest = &word[digits.len()..];
        let unit_word = if rest.is_empty() { words.get(at + 1).map(String::as_str) } else { Some(rest) };
        if let Some(u) = unit_word.and_then(unit) {
            out.push(format!("{digits}{u}"));
        }
    }
    out
}

fn share(matched: usize, of: usize) -> f32 {
    if of == 0 {
        f32::NAN
    } else {
        matched as f32 / of as f32
    }
}

fn flag(value: bool) -> f32 {
    if value {
        1.0
    } else {
        0.0
    }
}

/// How far `value` is below the query's best (`top`); missing when either is.
fn gap(value: Option<f32>, top: Option<f32>) -> f32 {
    match (value, top) {
        (Some(value), Some(top)) => top - value,
        _ => f32::NAN,
    }
}

fn opt(value: Option<f32>) -> f32 {
    value.unwrap_or(f32::NAN)
}

/// Whether `a` (of 4 letters or more) and `b` are within one edit: insert, delete,
/// substitute, or swap two neighbours. Runs once per unmatched query word and title word,
/// so it compares in one pass instead of computing an edit distance.
fn one_edit(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        return a.len() >= 4 && within_one_edit(a.as_bytes(), b.as_bytes());
    }
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    a.len() >= 4 && within_one_edit(&a, &b)
}

fn within_one_edit<T: PartialEq>(a: &[T], b: &[T]) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if long.len() - short.len() > 1 {
        return false;
    }
    let Some(at) = short.iter().zip(long).position(|(x, y)| x != y) else { return true };
    if short.len() < long.len() {
        return short[at..] == long[at + 1..];
    }
    let substituted = short[at + 1..] == long[at + 1..];
    let swapped = at + 1 < short.len()
        && short[at] == long[at + 1]
        && short[at + 1] == long[at]
        && short[at + 2..] == long[at + 2..];
    substituted || swapped
}

/// Words of a field, with their stems.
struct FieldWords {
    words: Vec<String>,
    stems: Vec<String>,
}

impl FieldWords {
    fn new(text: &str) -> FieldWords {
        let words = words(text);
        let stems = words.iter().map(|w| stem(w)).collect();
        FieldWords { words, stems }
    }
}

/// Which of the query's words `text` holds, exactly or by stem. A field is read once,
/// without keeping its words (descriptions run to hundreds), and stops when every query
/// word is found; a field word is stemmed only when it could share a stem with a query
/// word still unmatched (a stem keeps its word's first letter).
fn field_matches(text: &str, query: &QueryText) -> Vec<bool> {
    let mut matched = vec![false; query.words.len()];
    let mut unmatched = matched.len();
    let mut lower = String::new();
    for word in tokens(text) {
        if unmatched == 0 {
            break;
        }
        lower.clear();
        match word.is_ascii() {
            true => {
                lower.push_str(word);
                lower.make_ascii_lowercase();
            }
            false => lower.push_str(&word.to_lowercase()),
        }
        let first = lower.chars().next();
        let mut stemmed: Option<String> = None;
        for (at, (w, s)) in query.words.iter().zip(&query.stems).enumerate() {
            if matched[at] {
                continue;
            }
            if *w == lower || (s.chars().next() == first && *stemmed.get_or_insert_with(|| stem(&lower)) == *s) {
                matched[at] = true;
                unmatched -= 1;
            }
        }
    }
    matched
}

/// The stem of the last word of a category path's leaf: what kind of product it is
/// ("Bath > Bathroom Furniture > Vanity Mirrors" gives "mirror").
pub fn category_head(category: &str) -> Option<String> {
    let leaf = category.rsplit('>').next()?;
    let last = words(leaf).pop()?;
    Some(stem(&last))
}

/// The features of `product` for `query`, given what retrieval knows (`signals`).
pub fn extract(query: &QueryText, product: &Product, signals: &Signals) -> Row {
    let title = FieldWords::new(&product.title);
    let mut row = [f32::NAN; COUNT];
    macro_rules! set {
        ($name:literal, $value:expr $(,)?) => {{
            const AT: usize = at($name);
            row[AT] = $value;
        }};
    }

    // Sources.
    let s = signals;
    set!(
        "bm25_rel",
        match (s.bm25, s.bm25_top) {
            (Some(score), Some(top)) if top > 0.0 => score / top,
            _ => f32::NAN,
        },
    );
    set!("bm25_rank", opt(s.bm25_rank.map(|r| r as f32)));
    set!(
        "bm25_z",
        match (s.bm25, s.bm25_mean_sd) {
            (Some(score), Some((mean, sd))) if sd > 0.0 => (score - mean) / sd,
            _ => f32::NAN,
        },
    );
    set!("dense_cosine", opt(s.cosine));
    set!("dense_gap", gap(s.cosine, s.cosine_top));
    set!("dense_rank", opt(s.dense_rank.map(|r| r as f32)));
    let normalised = |value: Option<f32>, top: Option<f32>, floor: Option<f32>| match (value, top, floor) {
        (Some(v), Some(t), Some(f)) if t > f => ((v - f) / (t - f)).max(0.0),
        (Some(_), Some(_), Some(_)) => 1.0,
        _ => 0.0,
    };
    let fused = s.alpha * normalised(s.cosine, s.cosine_top, s.cosine_floor)
        + (1.0 - s.alpha) * normalised(s.bm25, s.bm25_top, s.bm25_floor);
    set!("fused_score", fused);
    set!("fused_rank", opt(s.fused_rank.map(|r| r as f32)));
    set!("sources", (usize::from(s.bm25_rank.is_some()) + usize::from(s.dense_rank.is_some())) as f32);

    // Title matching.
    let n = query.words.len();
    // Titles and queries are a few words: scanning them beats hashing them.
    let exact = query.words.iter().filter(|w| title.words.contains(w)).count();
    let by_stem: Vec<bool> =
        query.words.iter().zip(&query.stems).map(|(w, s)| title.words.contains(w) || title.stems.contains(s)).collect();
    let stemmed = by_stem.iter().filter(|m| **m).count();
    let fuzzy =
        query.words.iter().zip(&by_stem).filter(|(w, m)| **m || title.words.iter().any(|t| one_edit(w, t))).count();
    let idf_total: f32 = query.idf.iter().sum();
    let idf_matched: f32 = query.idf.iter().zip(&by_stem).filter(|(_, m)| **m).map(|(idf, _)| idf).sum();
    set!("title_idf_share", if n == 0 || idf_total <= 0.0 { f32::NAN } else { idf_matched / idf_total });
    let idf_top = query.idf.iter().copied().fold(0.0f32, f32::max);
    let idf_missing = query.idf.iter().zip(&by_stem).filter(|(_, m)| !**m).map(|(idf, _)| *idf).fold(0.0f32, f32::max);
    set!("title_missing_idf", if n == 0 || idf_top <= 0.0 { f32::NAN } else { idf_missing / idf_top });
    set!("title_word_share", share(exact, n));
    set!("title_stem_share", share(stemmed, n));
    set!("title_fuzzy_share", share(fuzzy, n));
    set!("title_all_words", if n == 0 { f32::NAN } else { flag(stemmed == n) });
    set!("title_phrase", if n == 0 { f32::NAN } else { flag(title.words.join(" ").contains(&query.phrase)) });
    // Where each matched query word first appears in the title.
    let positions: Vec<usize> = query
        .words
        .iter()
        .zip(&query.stems)
        .filter_map(|(w, s)| title.words.iter().zip(&title.stems).position(|(tw, ts)| tw == w || ts == s))
        .collect();
    set!(
        "title_in_order",
        if positions.len() < 2 { f32::NAN } else { flag(positions.windows(2).all(|p| p[0] <= p[1])) },
    );
    set!(
        "title_first_match",
        match positions.iter().min() {
            Some(first) if !title.words.is_empty() => *first as f32 / title.words.len() as f32,
            _ => f32::NAN,
        },
    );
    let covered = title.stems.iter().filter(|s| query.stems.contains(s)).count();
    set!("title_coverage", share(covered, title.words.len()));
    let query_pairs = query.stems.windows(2);
    let pairs = query_pairs.clone().filter(|q| title.stems.windows(2).any(|t| t == *q)).count();
    set!("title_bigram_share", share(pairs, query_pairs.len()));
    let attribute_text: String = product.attributes.values().map(String::as_str).collect::<Vec<_>>().join(" ");
    let numbers_matched = match query.numbers.is_empty() {
        true => 0,
        false => {
            let product_numbers: Vec<String> =
                numbers(&product.title).into_iter().chain(numbers(&attribute_text)).collect();
            query.numbers.iter().filter(|x| product_numbers.contains(x)).count()
        }
    };
    set!("number_share", share(numbers_matched, query.numbers.len()));
    let units_matched = match query.units.is_empty() {
        true => 0,
        false => {
            let product_units = units(&title.words);
            query.units.iter().filter(|u| product_units.contains(u)).count()
        }
    };
    set!("unit_share", share(units_matched, query.units.len()));
    set!("last_word_match", by_stem.last().map_or(f32::NAN, |m| flag(*m)));

    // Other fields.
    set!(
        "brand_match",
        match &product.brand {
            Some(brand) if !brand.trim().is_empty() => {
                let brand_words = words(brand);
                flag(!brand_words.is_empty() && brand_words.iter().all(|b| query.words.contains(b)))
            }
            _ => f32::NAN,
        },
    );
    // Which query words each other field holds; a field the product lacks is missing.
    let mut anywhere = by_stem.clone();
    let mut field_share = |text: Option<&str>| match text {
        Some(text) if !text.trim().is_empty() => {
            let matched = field_matches(text, query);
            anywhere.iter_mut().zip(&matched).for_each(|(any, m)| *any |= *m);
            share(matched.iter().filter(|m| **m).count(), n)
        }
        _ => f32::NAN,
    };
    let category_share = field_share(product.category.as_deref());
    let description_share = field_share(product.description.as_deref());
    let attributes_share = field_share(Some(&attribute_text));
    field_share(product.brand.as_deref());
    set!("category_share", category_share);
    set!(
        "category_head_match",
        match product.category.as_deref().and_then(category_head) {
            Some(head) if s.query_names_kind => flag(query.stems.contains(&head)),
            _ => f32::NAN,
        }
    );
    set!("description_share", description_share);
    set!("attributes_share", attributes_share);
    set!("any_field_share", share(anywhere.iter().filter(|m| **m).count(), n));

    // The query and the product.
    set!("query_words", n as f32);
    set!("query_has_digits", flag(query.text.chars().any(|c| c.is_ascii_digit())));
    set!("title_words", title.words.len() as f32);
    set!("log_price", opt(product.price.filter(|p| *p >= 0.0).map(|p| (p as f32).ln_1p())));
    set!("rating", opt(product.rating.map(|r| r as f32)));
    set!("log_reviews", opt(product.review_count.map(|r| (r as f32).ln_1p())));
    set!("log_popularity", opt(product.popularity.filter(|p| *p >= 0.0).map(|p| (p as f32).ln_1p())));
    set!("in_stock", opt(product.in_stock.map(flag)));
    set!("has_description", flag(product.description.as_deref().is_some_and(|d| !d.trim().is_empty())));
    set!("category_affinity", opt(s.category_affinity));
    set!("category_affinity_gap", gap(s.category_affinity, s.category_affinity_top));
    row
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(json: &str) -> Product {
        serde_json::from_str(json).unwrap()
    }

    fn value(row: &Row, name: &str) -> f32 {
        row[index_of(name).unwrap()]
    }

    #[test]
    fn one_edit_agrees_with_the_edit_distance() {
        // Every pair of words of up to 5 letters over a small alphabet, and some non-ASCII.
        let mut words = vec![String::new()];
        for _ in 0..5 {
            let longer: Vec<String> = words
                .iter()
                .filter(|w| w.len() == words.last().map_or(0, String::len))
                .flat_map(|w| ['a', 'b', 'c'].map(|c| format!("{w}{c}")))
                .collect();
            words.extend(longer);
        }
        words.extend(["café", "cafe", "caféé", "écaf", "naïve", "naive", "ñandu", "nandú"].map(String::from));
        for a in &words {
            for b in &words {
                let expected = a.chars().count() >= 4 && strsim::damerau_levenshtein(a, b) <= 1;
                assert_eq!(one_edit(a, b), expected, "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn field_matching_reads_each_word_as_the_title_does() {
        // What `field_matches` must equal: every word of the field, exactly or by stem.
        let slow = |text: &str, query: &QueryText| -> Vec<bool> {
            let field = FieldWords::new(text);
            query
                .words
                .iter()
                .zip(&query.stems)
                .map(|(w, s)| field.words.contains(w) || field.stems.contains(s))
                .collect()
        };
        let texts = [
            "Dying, lying and tying: the SKIES were skiing; Skis ski.",
            "Generously generous generation GENERATIONS generate",
            "Hoping hopes hoped hopeful; Ties tie tying; Happy happiness happily",
            "36 in. Vanity 36in 2x4 3/4 Grey gray greys",
            "Caf\u{e9} CAF\u{c9} na\u{ef}ve \u{d1}andu \u{130}stanbul stra\u{df}e STRASSE",
            "yellow Yellows yelled y Y ys",
            "",
            "!!! --- ...",
        ];
        let queries = [
            "dying skies skiing",
            "generation generous",
            "hope tie happy",
            "36 in vanity greys",
            "caf\u{e9} naive \u{f1}andu istanbul stra\u{df}e",
            "yellow y",
            "ski",
        ];
        for query in queries.map(QueryText::new) {
            for text in texts {
                assert_eq!(field_matches(text, &query), slow(text, &query), "{:?} in {text:?}", query.text);
            }
        }
    }

    #[test]
    fn names_are_unique() {
        let unique: std::collections::HashSet<&str> = NAMES.iter().copied().collect();
        assert_eq!(unique.len(), COUNT);
    }

    #[test]
    fn numbers_and_units_are_read_as_shoppers_write_them() {
        assert_eq!(numbers("3/4 in. x 3 in. 2x4 1.5 gal"), vec!["3/4", "3", "2x4", "1.5"]);
        assert_eq!(units(&words("36 in vanity 8ft 3-gal")), vec!["36in", "8ft", "3gal"]);
        let q = QueryText::new("36 in vanity");
        let row = extract(&q, &product(r#"{"id":"1","title":"Vanity 36 in. Grey"}"#), &Signals::default());
        assert_eq!(value(&row, "unit_share"), 1.0);
        let row = extract(&q, &product(r#"{"id":"1","title":"Vanity 30 in. Grey"}"#), &Signals::default());
        assert_eq!(value(&row, "number_share"), 0.0);
        assert_eq!(value(&row, "unit_share"), 0.0);
    }

    #[test]
    fn typos_stems_and_order() {
        let q = QueryText::new("chairs ofice");
        let row = extract(&q, &product(r#"{"id":"1","title":"Office Chair"}"#), &Signals::default());
        assert_eq!(value(&row, "title_word_share"), 0.0);
        assert_eq!(value(&row, "title_stem_share"), 0.5);
        assert_eq!(value(&row, "title_fuzzy_share"), 1.0);
        let q = QueryText::new("office chair");
        let row = extract(&q, &product(r#"{"id":"1","title":"Chair for the Office"}"#), &Signals::default());
        assert_eq!(value(&row, "title_in_order"), 0.0);
        assert_eq!(value(&row, "title_phrase"), 0.0);
        assert_eq!(value(&row, "title_all_words"), 1.0);
    }

    #[test]
    fn missing_product_data_is_missing_not_zero() {
        let q = QueryText::new("lamp");
        let row = extract(&q, &product(r#"{"id":"1","title":"Lamp"}"#), &Signals::default());
        for name in ["log_price", "rating", "in_stock", "brand_match", "number_share", "bm25_rel", "dense_cosine"] {
            assert!(value(&row, name).is_nan(), "{name} should be missing");
        }
        let row = extract(&q, &product(r#"{"id":"1","title":"Lamp","price":0,"in_stock":false}"#), &Signals::default());
        assert_eq!(value(&row, "log_price"), 0.0);
        assert_eq!(value(&row, "in_stock"), 0.0);
    }

    /// The query names a kind ("vanity"): a vanity is of it, a vanity mirror is not, though
    /// both categories hold the word. A query naming no kind, or a product without a
    /// category, leaves the feature missing.
    #[test]
    fn the_category_head_says_which_kind_the_query_names() {
        let q = QueryText::new("36 in vanity grey");
        let of = |category: &str| format!(r#"{{"id":"1","title":"36 in. Grey","category":"{category}"}}"#);
        let names_kind = Signals { query_names_kind: true, ..Signals::default() };
        let vanity = product(&of("Bath > Bathroom Furniture > Vanities"));
        let mirror = product(&of("Bath > Bathroom Furniture > Vanity Mirrors"));
        assert_eq!(category_head("Bath > Bathroom Furniture > Vanity Mirrors").as_deref(), Some("mirror"));
        assert_eq!(value(&extract(&q, &vanity, &names_kind), "category_head_match"), 1.0);
        assert_eq!(value(&extract(&q, &mirror, &names_kind), "category_head_match"), 0.0);
        assert!(value(&extract(&q, &vanity, &Signals::default()), "category_head_match").is_nan());
        let uncategorised = product(r#"{"id":"1","title":"36 in. Grey Vanity"}"#);
        assert!(value(&extract(&q, &uncategorised, &names_kind), "category_head_match").is_nan());
    }

    #[test]
    fn odd_queries_do_not_panic() {
        for text in ["", "   ", "!!!", "ñandú 3/", "x".repeat(5000).as_str(), "1/2/3/4 x x 5"] {
            let q = QueryText::new(text);
            let row = extract(&q, &product(r#"{"id":"1","title":"Thing 1/2 in."}"#), &Signals::default());
            assert_eq!(row.len(), COUNT);
        }
    }
}
