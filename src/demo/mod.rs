//! The bundled demo shop: a catalogue of invented home products and a judged query set,
//! generated deterministically from the tables in `vocab.rs`.
//!
//! The grades say how well a product fits what the shopper meant, not how many words it
//! shares with the query. A query carries an intent: a kind of product (named, named by a
//! synonym, misspelled, or only described: "something to put my tv on"), and maybe a
//! colour, size, material or brand. Grades run 0 to 6 like the Home Depot set. A product's
//! **fit** to the intent comes first:
//!
//! | product | fit |
//! | --- | --- |
//! | the wanted kind, every constraint met (a perfect fit) | 5 |
//! | the wanted kind, a constraint missed | 5 minus 1 (a near colour, another material) or 2 (wrong colour, size or brand) per miss, at least 2 |
//! | a kind the shopper may accept instead | 2 |
//! | the same department | 1 |
//! | anything else | 0 |
//!
//! Judges then grade it, as people do, with noise:
//!
//! | judged grade | when |
//! | --- | --- |
//! | 6 | a perfect fit whose quality the judge rates high: latent quality + N(0, 0.5²) > 0.6 (about 30% of perfect fits) |
//! | fit ± 1 | otherwise, 12% of the time the grade slips one step up or down (kept within 0 to 5) |
//! | fit | otherwise |
//!
//! Every product has a latent **quality** ~ N(0, 1) that no field shows directly. Its
//! rating follows it only loosely: 85% of products are rated (with a review count), at
//! clamp(3.9 + 0.3 × quality + N(0, 0.5²), 1, 5) rounded to 0.1, so rating and quality
//! correlate at about 0.5. No rating threshold decides a grade: a high rating hints at
//! quality, as in a real shop, and never at fit. Popularity, stock and prices ignore quality.
//!
//! Most queries take their constraints from a real product, so something fits perfectly.
//! **Unmet** queries ask for a size and a colour the shop has for that kind, but never
//! together: their best answers are the kind's near misses, not a related kind that names
//! every word. The judging pools follow the best fit the shop has: each query's first pool is
//! the wanted kind's products within a step of it (and at least fit 3).
//!
//! The draws come from seeded ChaCha8 streams: the main one builds the catalogue, the
//! queries and the judging pools; quality, the judges' noise and the unmet queries each have
//! their own, so the same code always writes the same files.
//!
//! ```
//! let demo = shelf::demo::generate();
//! assert!(demo.products.len() >= 5000);
//! assert!(demo.queries.len() >= 200);
//! ```

mod vocab;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;

use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::catalog::Product;
use crate::eval::trec::{write_qrels, Qrels};
use vocab::{Kind, COLOURS, COLOUR_SPELLINGS, DEPARTMENTS, KINDS, STYLES};

/// Where the demo files live, relative to the repository root.
pub const CATALOG_PATH: &str = "demo/products.jsonl";
pub const QUERIES_PATH: &str = "queries/demo.tsv";
pub const QRELS_PATH: &str = "queries/demo.qrels";

const SEED: u64 = 20_261_125;
const PRODUCTS_PER_KIND: usize = 55;
/// Judged products per query, at most, from each group.
const JUDGED_RELEVANT: usize = 30;
const JUDGED_SAME_KIND: usize = 8;
const JUDGED_NEARBY: usize = 6;
const JUDGED_DECOYS: usize = 6;
const JUDGED_RANDOM: usize = 2;

/// The seeded streams besides the main one (stream 0), so each kind of draw has its own.
const QUALITY_STREAM: u64 = 1;
const JUDGES_STREAM: u64 = 2;
const UNMET_STREAM: u64 = 3;
/// Unmet queries per kind that has sizes and colours (see [`make_unmet_queries`]). With one
/// per kind (50 of 592 queries) LightGBM still put a grey 36-inch mirror above the 36-inch
/// vanities for "36 in vanity grey"; with three, and the `category_head_match` feature, it
/// learns that the kind comes first.
const UNMET_PER_KIND: usize = 3;
/// Queries the generator never judges, so the README's examples show how a ranker does on
/// text it never trained on.
const SHOWCASE_QUERIES: &[&str] = &["36 in vanity grey"];
/// Stars = clamp(RATING_MEAN + RATING_PER_QUALITY × quality + RATING_NOISE × N(0, 1), 1, 5):
/// ratings follow the latent quality loosely (correlation about 0.5).
const RATING_MEAN: f64 = 3.9;
const RATING_PER_QUALITY: f64 = 0.3;
const RATING_NOISE: f64 = 0.5;
/// A judge perceives quality with this much noise (standard deviation) and gives a perfect
/// fit grade 6 when the perceived quality is above `TOP_QUALITY`.
const PERCEIVED_NOISE: f64 = 0.5;
const TOP_QUALITY: f64 = 0.6;
/// How often a judge's grade slips one step, up or down.
const SLIP: f64 = 0.12;

/// A judged query: its text, what kind of phrasing it is, and the intent behind it.
#[derive(Debug, Clone)]
pub struct DemoQuery {
    pub qid: String,
    pub text: String,
    /// `category`, `synonym`, `typo`, `attribute`, `brand`, `vague` or `unmet` (a size and colour no product has together).
    pub class: &'static str,
    intent: Intent,
}

#[derive(Debug, Clone, Default)]
struct Intent {
    kind: usize,
    colour: Option<&'static str>,
    size: Option<&'static str>,
    material: Option<&'static str>,
    brand: Option<&'static str>,
}

/// The generated shop.
pub struct Demo {
    pub products: Vec<Product>,
    pub queries: Vec<DemoQuery>,
    pub qrels: Qrels,
}

/// What the generator knows of each product besides its public fields.
struct Facts {
    kind: usize,
    colour: Option<&'static str>,
    size: Option<&'static str>,
    material: &'static str,
    brand: &'static str,
    /// Latent quality, N(0, 1): what judges perceive and ratings only loosely reflect.
    quality: f64,
}

/// The main stream's seed on another of its streams.
fn stream(number: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    rng.set_stream(number);
    rng
}

/// A standard normal draw from two uniform ones (Box–Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    // `random` gives [0, 1); 1 - u is in (0, 1], so the logarithm is finite.
    let u = 1.0 - rng.random::<f64>();
    let angle = std::f64::consts::TAU * rng.random::<f64>();
    (-2.0 * u.ln()).sqrt() * angle.cos()
}

fn title_case(text: &str) -> String {
    text.split(' ')
        .map(|word| {
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Sizes are written many ways in real titles: `36 in`, `36in`, `36-inch`, `36 in.`.
fn written_size(size: &str, rng: &mut ChaCha8Rng) -> String {
    if let Some(number) = size.strip_suffix(" in") {
        if !number.contains(' ') {
            return match rng.random_range(0..4) {
                0 => format!("{number} in."),
                1 => format!("{number}in"),
                2 => format!("{number}-inch"),
                _ => size.to_string(),
            };
        }
    }
    title_case(size)
}

fn colour_family(colour: &str) -> &'static str {
    COLOURS.iter().find(|(name, _)| *name == colour).map_or("", |(_, family)| family)
}

/// Makes one product: its public fields from `rng`, its latent quality and the rating that
/// loosely follows it from `qualities`.
fn make_product(number: usize, kind_at: usize, rng: &mut ChaCha8Rng, qualities: &mut ChaCha8Rng) -> (Product, Facts) {
    let kind: &Kind = &KINDS[kind_at];
    let department = &DEPARTMENTS[kind.department];
    let brand = *department.brands.choose(rng).unwrap_or(&"Generic");
    let material = *kind.materials.choose(rng).unwrap_or(&"");
    let size = kind.sizes.choose(rng).copied();
    let colour = kind.coloured.then(|| COLOURS.choose(rng).map_or("white", |c| c.0));
    let style = *STYLES.choose(rng).unwrap_or(&"Modern");
    // Some titles use a synonym instead of the usual noun, as real catalogues do.
    let noun = if rng.random_bool(0.2) && !kind.synonyms.is_empty() {
        title_case(kind.synonyms.choose(rng).unwrap_or(&kind.noun))
    } else {
        kind.noun.to_string()
    };

    let mut title = vec![brand.to_string()];
    if rng.random_bool(0.5) {
        title.push(style.to_string());
    }
    if let Some(size) = size.filter(|_| rng.random_bool(0.7)) {
        title.push(written_size(size, rng));
    }
    if rng.random_bool(0.6) {
        title.push(title_case(material));
    }
    title.push(noun.clone());
    // Colour is often only in the attributes, not the title.
    if let Some(colour) = colour.filter(|_| rng.random_bool(0.6)) {
        title.push(format!("in {}", title_case(colour)));
    }

    let mut description =
        format!("A {} {} in {}. {}", style.to_lowercase(), noun.to_lowercase(), material, kind.use_text);
    if let Some(colour) = colour.filter(|_| rng.random_bool(0.5)) {
        description.push_str(&format!(" Finished in {colour}."));
    }
    if rng.random_bool(0.3) {
        description.push_str(" Easy assembly; ships in one box.");
    }

    let (low, high) = kind.price;
    let price = (low * (high / low).powf(rng.random::<f64>())).floor() + 0.99;
    let rated = rng.random_bool(0.85);
    if rated {
        // Unused: the main stream keeps its draw here, so titles, prices, stock and the
        // queries drawn after the products do not depend on how ratings are modelled.
        let _ = rng.random_range(25..=50);
    }
    let quality = normal(qualities);
    let stars = RATING_MEAN + RATING_PER_QUALITY * quality + RATING_NOISE * normal(qualities);
    let rating = rated.then(|| (stars.clamp(1.0, 5.0) * 10.0).round() / 10.0);
    let review_count = rated.then(|| (10f64.powf(rng.random_range(0.0..3.5))) as u64);
    let popularity = (rng.random::<f64>() * 1000.0).round() / 10.0;

    let mut attributes = BTreeMap::new();
    attributes.insert("material".to_string(), material.to_string());
    attributes.insert("style".to_string(), style.to_lowercase());
    if let Some(colour) = colour {
        attributes.insert("colour".to_string(), colour.to_string());
    }
    if let Some(size) = size {
        attributes.insert("size".to_string(), size.to_string());
    }
    let product = Product {
        id: format!("D{number:05}"),
        title: title.join(" "),
        description: Some(description),
        brand: Some(brand.to_string()),
        category: Some(format!("{} > {}", department.name, kind.category)),
        price: Some(price),
        rating,
        review_count,
        popularity: Some(popularity),
        in_stock: Some(rng.random_bool(0.9)),
        image_url: None,
        attributes,
    };
    (product, Facts { kind: kind_at, colour, size, material, brand, quality })
}

/// How well a product fits `intent`, 0 to 5 (the module's fit table). Only what the product
/// is counts here: kind, colour, size, material and brand.
fn fit(intent: &Intent, facts: &Facts) -> i32 {
    let wanted = &KINDS[intent.kind];
    if facts.kind != intent.kind {
        if wanted.related.contains(&KINDS[facts.kind].noun) {
            return 2;
        }
        return i32::from(KINDS[facts.kind].department == wanted.department);
    }
    let mut grade = 5;
    if let Some(colour) = intent.colour {
        match facts.colour {
            Some(c) if c == colour => {}
            Some(c) if colour_family(c) == colour_family(colour) => grade -= 1,
            _ => grade -= 2,
        }
    }
    if intent.size.is_some() && intent.size != facts.size {
        grade -= 2;
    }
    if intent.material.is_some_and(|m| m != facts.material) {
        grade -= 1;
    }
    if intent.brand.is_some_and(|b| b != facts.brand) {
        grade -= 2;
    }
    grade.max(2)
}

/// The grade a judge gives a product of this `fit` and latent `quality` (the module's judged
/// grade table): a perfect fit the judge finds of high quality gets 6; otherwise the grade
/// sometimes slips a step. Draws the same amount from `judges` every time, so each judgment
/// has its own draws whatever the grades before it were.
fn judged_grade(fit: i32, quality: f64, judges: &mut ChaCha8Rng) -> i32 {
    let perceived = quality + PERCEIVED_NOISE * normal(judges);
    let slips = judges.random_bool(SLIP);
    let step = if judges.random_bool(0.5) { 1 } else { -1 };
    if fit == 5 && perceived > TOP_QUALITY {
        6
    } else if slips {
        // A slip never reaches 6: that grade is for perfect fits judged of high quality.
        (fit + step).clamp(0, 5)
    } else {
        fit
    }
}

/// A deterministic typo: two neighbouring letters swapped inside the longest word.
fn misspell(text: &str) -> Option<String> {
    let words: Vec<&str> = text.split(' ').collect();
    let (at, word) = words.iter().enumerate().max_by_key(|(_, w)| w.len())?;
    if word.len() < 5 || !word.is_ascii() {
        return None;
    }
    let mut bytes = word.as_bytes().to_vec();
    let middle = bytes.len() / 2;
    bytes.swap(middle - 1, middle);
    let typo = String::from_utf8(bytes).ok()?;
    let mut words: Vec<String> = words.iter().map(|w| w.to_string()).collect();
    words[at] = typo;
    Some(words.join(" "))
}

fn make_queries(facts: &[Facts], rng: &mut ChaCha8Rng) -> Vec<DemoQuery> {
    let mut queries = Vec::new();
    let mut push = |text: String, class: &'static str, intent: Intent| {
        let text = text.to_lowercase();
        if !queries.iter().any(|q: &DemoQuery| q.text == text) {
            queries.push(DemoQuery { qid: String::new(), text, class, intent });
        }
    };
    let example = |kind: usize, rng: &mut ChaCha8Rng| -> &Facts {
        let of_kind: Vec<&Facts> = facts.iter().filter(|f| f.kind == kind).collect();
        of_kind.choose(rng).copied().unwrap_or(&facts[0])
    };
    let plural = |noun: &str| if noun.ends_with('s') { noun.to_string() } else { format!("{noun}s") };
    for (kind_at, kind) in KINDS.iter().enumerate() {
        let plain = Intent { kind: kind_at, ..Default::default() };
        let noun = kind.noun.to_lowercase();
        // The kind by its name, sometimes plural.
        push(if kind_at % 3 == 0 { plural(&noun) } else { noun.clone() }, "category", plain.clone());
        // By a synonym.
        if let Some(synonym) = kind.synonyms.choose(rng) {
            push(synonym.to_string(), "synonym", plain.clone());
        }
        // Only described.
        if let Some(vague) = kind.vague.choose(rng) {
            push(vague.to_string(), "vague", plain.clone());
        }
        // With constraints taken from a real product, so at least one fits perfectly.
        let model = example(kind_at, rng);
        if let Some(colour) = model.colour {
            let spelled = COLOUR_SPELLINGS
                .iter()
                .find(|(c, _)| *c == colour)
                .filter(|_| rng.random_bool(0.5))
                .map_or(colour, |s| s.1);
            let text = if rng.random_bool(0.5) { format!("{spelled} {noun}") } else { format!("{noun} {spelled}") };
            push(text, "attribute", Intent { colour: Some(colour), ..plain.clone() });
        }
        let model = example(kind_at, rng);
        if let (Some(size), Some(colour)) = (model.size, model.colour) {
            // Messy order, as typed into a search box: "36 in vanity grey".
            let short = noun.split(' ').next_back().unwrap_or(&noun).to_string();
            push(
                format!("{size} {short} {colour}"),
                "attribute",
                Intent { size: Some(size), colour: Some(colour), ..plain.clone() },
            );
        } else if let Some(size) = model.size {
            push(format!("{size} {noun}"), "attribute", Intent { size: Some(size), ..plain.clone() });
        }
        let model = example(kind_at, rng);
        if kind.materials.len() > 1 && rng.random_bool(0.5) {
            push(
                format!("{} {noun}", model.material),
                "attribute",
                Intent { material: Some(model.material), ..plain.clone() },
            );
        }
        let model = example(kind_at, rng);
        if rng.random_bool(0.6) {
            push(format!("{} {noun}", model.brand), "brand", Intent { brand: Some(model.brand), ..plain.clone() });
        }
        if kind_at % 4 == 1 {
            if let Some(typo) = misspell(&noun) {
                push(typo, "typo", plain.clone());
            }
        }
    }
    queries
}

/// Size-and-colour queries that no product meets: the shopper asks for a size and a colour
/// the shop has, but never together ("36 in vanity grey" when no grey vanity is 36 inches).
/// The best answers are then products of the wanted kind that miss a constraint (fit 3 or
/// 4), not products of a related kind that happen to name every word (a grey 36-inch
/// vanity mirror, fit 2): a ranker only learns that from queries like these.
///
/// They come after the others and draw from their own stream, so adding them changed no
/// other query or judgment.
fn make_unmet_queries(facts: &[Facts], known: &[DemoQuery], rng: &mut ChaCha8Rng) -> Vec<DemoQuery> {
    let mut queries: Vec<DemoQuery> = Vec::new();
    for (kind_at, kind) in KINDS.iter().enumerate() {
        let of_kind: Vec<&Facts> = facts.iter().filter(|f| f.kind == kind_at).collect();
        let met: BTreeSet<(&str, &str)> = of_kind.iter().filter_map(|f| Some((f.size?, f.colour?))).collect();
        let sizes: BTreeSet<&str> = of_kind.iter().filter_map(|f| f.size).collect();
        let colours: BTreeSet<&str> = of_kind.iter().filter_map(|f| f.colour).collect();
        let unmet: Vec<(&str, &str)> = sizes
            .iter()
            .flat_map(|&size| colours.iter().map(move |&colour| (size, colour)))
            .filter(|pair| !met.contains(pair))
            .collect();
        let noun = kind.noun.to_lowercase();
        let short = noun.split(' ').next_back().unwrap_or(&noun).to_string();
        for &(size, colour) in unmet.choose_multiple(rng, UNMET_PER_KIND) {
            let text = if rng.random_bool(0.5) {
                format!("{size} {short} {colour}")
            } else {
                format!("{colour} {size} {short}")
            };
            let taken = |t: &str| known.iter().chain(&queries).any(|q| q.text == t) || SHOWCASE_QUERIES.contains(&t);
            if !taken(&text) {
                let intent = Intent { kind: kind_at, size: Some(size), colour: Some(colour), ..Default::default() };
                queries.push(DemoQuery { qid: String::new(), text, class: "unmet", intent });
            }
        }
    }
    queries
}

/// Picks the products to judge for `query` (pools by fit, shuffled with `rng`, the main
/// stream) and grades each (with noise from `judges`).
fn judge(
    query: &DemoQuery,
    products: &[Product],
    facts: &[Facts],
    rng: &mut ChaCha8Rng,
    judges: &mut ChaCha8Rng,
) -> BTreeMap<String, i32> {
    let words: Vec<&str> = query.text.split(' ').filter(|w| w.len() > 2).collect();
    // The pools follow the true fit; the judges' noise only changes the grades given. The
    // first pool holds the wanted kind's products that fit within a step of the best the
    // shop has (and at least 3): a perfect fit's near misses, or, when nothing fits
    // perfectly (an unmet query), the near misses themselves.
    let fits: Vec<i32> = facts.iter().map(|f| fit(&query.intent, f)).collect();
    let first = (fits.iter().copied().max().unwrap_or(5) - 1).max(3);
    let mut groups: [Vec<(usize, i32)>; 5] = Default::default();
    for (at, ((product, facts), &fit)) in products.iter().zip(facts).zip(&fits).enumerate() {
        let title = product.title.to_lowercase();
        let of_kind = facts.kind == query.intent.kind;
        let group = match fit {
            _ if of_kind && fit >= first => 0,
            2..=3 if of_kind => 1,
            1..=3 => 2,
            _ if words.iter().any(|w| title.contains(w)) => 3,
            _ => 4,
        };
        groups[group].push((at, fit));
    }
    let limits = [JUDGED_RELEVANT, JUDGED_SAME_KIND, JUDGED_NEARBY, JUDGED_DECOYS, JUDGED_RANDOM];
    let mut judged = BTreeMap::new();
    for (group, limit) in groups.iter_mut().zip(limits) {
        group.shuffle(rng);
        for &(at, fit) in group.iter().take(limit) {
            judged.insert(products[at].id.clone(), judged_grade(fit, facts[at].quality, judges));
        }
    }
    judged
}

/// Generates the demo shop. The same code always gives the same files.
pub fn generate() -> Demo {
    generate_with_facts().0
}

/// The demo shop and what the generator knows of each product, in catalogue order.
fn generate_with_facts() -> (Demo, Vec<Facts>) {
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let mut qualities = stream(QUALITY_STREAM);
    let mut judges = stream(JUDGES_STREAM);
    let mut products = Vec::new();
    let mut facts = Vec::new();
    for round in 0..PRODUCTS_PER_KIND {
        for kind in 0..KINDS.len() {
            let (product, fact) = make_product(round * KINDS.len() + kind + 1, kind, &mut rng, &mut qualities);
            products.push(product);
            facts.push(fact);
        }
    }
    let mut queries = make_queries(&facts, &mut rng);
    let unmet = make_unmet_queries(&facts, &queries, &mut stream(UNMET_STREAM));
    queries.extend(unmet);
    for (at, query) in queries.iter_mut().enumerate() {
        query.qid = format!("demo{:03}", at + 1);
    }
    let qrels = queries.iter().map(|q| (q.qid.clone(), judge(q, &products, &facts, &mut rng, &mut judges))).collect();
    (Demo { products, queries, qrels }, facts)
}

impl Demo {
    /// Writes the catalogue, queries and qrels under `root` (the repository root).
    pub fn write(&self, root: &Path) -> std::io::Result<()> {
        let create = |relative: &str| -> std::io::Result<std::io::BufWriter<std::fs::File>> {
            let path = root.join(relative);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            Ok(std::io::BufWriter::new(std::fs::File::create(path)?))
        };
        let mut catalog = create(CATALOG_PATH)?;
        for product in &self.products {
            serde_json::to_writer(&mut catalog, product)?;
            catalog.write_all(b"\n")?;
        }
        catalog.flush()?;
        let mut queries = create(QUERIES_PATH)?;
        for query in &self.queries {
            writeln!(queries, "{}\t{}\t{}", query.qid, query.text, query.class)?;
        }
        queries.flush()?;
        let mut qrels = create(QRELS_PATH)?;
        write_qrels(&mut qrels, &self.qrels)?;
        qrels.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pearson(pairs: &[(f64, f64)]) -> f64 {
        let n = pairs.len() as f64;
        let (mean_x, mean_y) = (pairs.iter().map(|p| p.0).sum::<f64>() / n, pairs.iter().map(|p| p.1).sum::<f64>() / n);
        let covariance: f64 = pairs.iter().map(|(x, y)| (x - mean_x) * (y - mean_y)).sum();
        let spread_x: f64 = pairs.iter().map(|(x, _)| (x - mean_x).powi(2)).sum();
        let spread_y: f64 = pairs.iter().map(|(_, y)| (y - mean_y).powi(2)).sum();
        covariance / (spread_x * spread_y).sqrt()
    }

    #[test]
    fn normal_draws_have_mean_zero_and_unit_spread() {
        let mut rng = stream(99);
        let draws: Vec<f64> = (0..20_000).map(|_| normal(&mut rng)).collect();
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        let variance = draws.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / draws.len() as f64;
        assert!(mean.abs() < 0.03 && (variance - 1.0).abs() < 0.05, "mean {mean}, variance {variance}");
    }

    /// An unmet query has no perfect fit in the catalogue, its near misses (fit 3 or more,
    /// of the wanted kind) are judged, and the first 542 queries are as they were before
    /// unmet queries existed.
    #[test]
    fn unmet_queries_have_no_perfect_answer_and_their_near_misses_are_judged() {
        let (demo, facts) = generate_with_facts();
        let at: BTreeMap<&str, usize> = demo.products.iter().enumerate().map(|(i, p)| (p.id.as_str(), i)).collect();
        let unmet: Vec<&DemoQuery> = demo.queries.iter().filter(|q| q.class == "unmet").collect();
        assert!(unmet.len() >= 100, "{} unmet queries", unmet.len());
        assert!(demo.queries[..542].iter().all(|q| q.class != "unmet"));
        assert!(!demo.queries.iter().any(|q| SHOWCASE_QUERIES.contains(&q.text.as_str())));
        for query in unmet {
            let best = facts.iter().map(|f| fit(&query.intent, f)).max().unwrap_or(0);
            assert!((3..5).contains(&best), "{}: best fit {best}", query.text);
            let near_misses =
                facts.iter().filter(|f| f.kind == query.intent.kind && fit(&query.intent, f) >= 3).count();
            let judged = demo.qrels[&query.qid]
                .keys()
                .filter(|id| {
                    let f = &facts[at[id.as_str()]];
                    f.kind == query.intent.kind && fit(&query.intent, f) >= 3
                })
                .count();
            assert_eq!(judged, near_misses.min(JUDGED_RELEVANT), "{}", query.text);
        }
    }

    /// Grades come from fit plus the judges' view of a quality that ratings show only
    /// loosely: no rating threshold decides a grade, so a ranker cannot learn one.
    #[test]
    fn ratings_hint_at_quality_but_do_not_decide_grades() {
        let (demo, facts) = generate_with_facts();
        let at: BTreeMap<&str, usize> = demo.products.iter().enumerate().map(|(i, p)| (p.id.as_str(), i)).collect();

        let rated: Vec<(f64, f64)> =
            demo.products.iter().zip(&facts).filter_map(|(p, f)| Some((p.rating?, f.quality))).collect();
        let rating_quality = pearson(&rated);
        let rated_share = rated.len() as f64 / demo.products.len() as f64;

        // Judged products of the wanted kind that meet every constraint.
        let (mut perfect, mut perfect_rated) = (0, Vec::new());
        let (mut top, mut histogram) = (0, [0usize; 7]);
        for query in &demo.queries {
            for (id, &grade) in &demo.qrels[&query.qid] {
                let i = at[id.as_str()];
                histogram[grade as usize] += 1;
                if fit(&query.intent, &facts[i]) < 5 {
                    assert!(grade < 6, "{}: grade 6 for {id}, not a perfect fit", query.qid);
                    continue;
                }
                perfect += 1;
                top += usize::from(grade == 6);
                if let Some(rating) = demo.products[i].rating {
                    perfect_rated.push((rating, f64::from(grade)));
                }
            }
        }
        let rating_grade = pearson(&perfect_rated);
        let top_share = top as f64 / perfect as f64;
        eprintln!(
            "corr(rating, quality) {rating_quality:.3} over {} rated ({rated_share:.3}); perfect fits judged {perfect}, \
             grade 6 share {top_share:.3}, corr(rating, grade) {rating_grade:.3} over {} rated; grades {histogram:?}",
            rated.len(),
            perfect_rated.len()
        );
        assert!((0.35..0.65).contains(&rating_quality), "corr(rating, quality) {rating_quality}");
        assert!((0.8..0.9).contains(&rated_share), "{rated_share} rated");
        assert!(rating_grade < 0.5, "corr(rating, grade) among perfect fits {rating_grade}");
        assert!((0.2..0.4).contains(&top_share), "grade 6 share of perfect fits {top_share}");
        // Both sides of any rating threshold hold both grades.
        let seen = |grade: f64, high: bool| perfect_rated.iter().any(|&(r, g)| g == grade && (r >= 4.2) == high);
        assert!(seen(5.0, true) && seen(5.0, false) && seen(6.0, true) && seen(6.0, false));
        assert!(histogram.iter().all(|&n| n > 0), "every grade is used: {histogram:?}");
    }
}
