//! The tantivy schema: which product data is searchable text, which is a facet, which is a
//! number to filter on.

use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions, FAST, INDEXED, STORED, STRING,
};

/// English stemming: "chairs" and "chair" are one term.
pub const STEMMED: &str = "en_stem";
/// Lowercased words without stemming, for model numbers and units.
pub const UNSTEMMED: &str = "default";

/// Handles to every field of the schema.
#[derive(Debug, Clone, Copy)]
pub struct Fields {
    pub id: Field,
    pub title: Field,
    pub title_raw: Field,
    pub description: Field,
    pub brand: Field,
    pub category: Field,
    pub attributes: Field,
    pub brand_facet: Field,
    pub category_facet: Field,
    pub price: Field,
    pub rating: Field,
    pub review_count: Field,
    pub popularity: Field,
    pub in_stock: Field,
    /// The whole product as JSON, returned with results.
    pub product: Field,
}

fn text(tokenizer: &str) -> TextOptions {
    TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(tokenizer)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    )
}

impl Fields {
    pub fn schema() -> (Schema, Fields) {
        let mut builder = Schema::builder();
        let number = || NumericOptions::default() | FAST | INDEXED;
        let fields = Fields {
            // A column too: a hit's id is read without reading its stored product.
            id: builder.add_text_field("id", STRING | STORED | FAST),
            title: builder.add_text_field("title", text(STEMMED)),
            title_raw: builder.add_text_field("title_raw", text(UNSTEMMED)),
            description: builder.add_text_field("description", text(STEMMED)),
            brand: builder.add_text_field("brand", text(UNSTEMMED)),
            category: builder.add_text_field("category", text(STEMMED)),
            attributes: builder.add_text_field("attributes", text(STEMMED)),
            brand_facet: builder.add_facet_field("brand_facet", INDEXED),
            category_facet: builder.add_facet_field("category_facet", INDEXED),
            price: builder.add_f64_field("price", number()),
            rating: builder.add_f64_field("rating", number()),
            review_count: builder.add_u64_field("review_count", number()),
            popularity: builder.add_f64_field("popularity", number()),
            in_stock: builder.add_bool_field("in_stock", number()),
            product: builder.add_text_field("product", STORED),
        };
        (builder.build(), fields)
    }
}
