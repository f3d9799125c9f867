//! Delimited text catalogues: CSV and TSV with a header row, and the two public layouts built
//! on them (Kaggle Home Depot, WANDS).
//!
//! Columns are matched to product fields by a [`ColumnMap`]: a column named like a field
//! (`title`, `price`, ...) needs no mapping, `--map title=product_title` names another column,
//! and every column that is not mapped is kept as an attribute under its own name.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::str::FromStr;

use super::product::{parse_bool, parse_count, parse_number};
use super::{CatalogError, Format, ImportOptions, Product};

/// The product fields a column can be mapped to.
pub const FIELDS: [&str; 11] = [
    "id",
    "title",
    "description",
    "brand",
    "category",
    "price",
    "rating",
    "review_count",
    "popularity",
    "in_stock",
    "image_url",
];

/// Which column holds which product field: `field -> column`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ColumnMap {
    fields: BTreeMap<String, String>,
}

impl ColumnMap {
    pub fn new<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        ColumnMap { fields: pairs.into_iter().map(|(f, c)| (f.to_string(), c.to_string())).collect() }
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

impl FromStr for ColumnMap {
    type Err = String;

    /// Parses `field=column,field=column`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut map = ColumnMap::default();
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, column) =
                pair.split_once('=').ok_or_else(|| format!("--map expects field=column pairs, got '{pair}'"))?;
            let field = field.trim();
            if !FIELDS.contains(&field) {
                return Err(format!("--map: unknown product field '{field}' (fields: {})", FIELDS.join(", ")));
            }
            map.fields.insert(field.to_string(), column.trim().to_string());
        }
        Ok(map)
    }
}

/// What each column of a file becomes.
#[derive(Debug, Clone, PartialEq)]
enum Target {
    Field(&'static str),
    Attribute(String),
    /// `key:value|key:value` pairs, each an attribute (WANDS `product_features`).
    FeatureList,
    Ignore,
}

/// A layout: column mapping plus the text encoding and quirks of one source.
struct Layout {
    delimiter: u8,
    latin1: bool,
    columns: ColumnMap,
    ignored: &'static [&'static str],
    feature_list: Option<&'static str>,
    /// Category levels are separated by this instead of `>`.
    category_separator: Option<&'static str>,
}

impl Layout {
    fn for_options(options: &ImportOptions) -> Layout {
        let custom = |delimiter| Layout {
            delimiter,
            latin1: false,
            columns: options.columns.clone(),
            ignored: &[],
            feature_list: None,
            category_separator: None,
        };
        match options.format {
            Format::Csv | Format::Jsonl => custom(b','),
            Format::Tsv => custom(b'\t'),
            Format::KaggleHd => Layout {
                delimiter: b',',
                latin1: true,
                columns: ColumnMap::new([("id", "product_uid"), ("title", "product_title")]),
                ignored: &["id", "search_term", "relevance"],
                feature_list: None,
                category_separator: None,
            },
            Format::Wands => Layout {
                delimiter: b'\t',
                latin1: false,
                columns: ColumnMap::new([
                    ("id", "product_id"),
                    ("title", "product_name"),
                    ("description", "product_description"),
                    ("category", "category hierarchy"),
                    ("rating", "average_rating"),
                    ("review_count", "review_count"),
                ]),
                ignored: &["rating_count"],
                feature_list: Some("product_features"),
                category_separator: Some("/"),
            },
        }
    }

    fn targets(&self, header: &[String]) -> Result<Vec<Target>, CatalogError> {
        let present: HashSet<&str> = header.iter().map(String::as_str).collect();
        for (field, column) in &self.columns.fields {
            if !present.contains(column.as_str()) {
                return Err(CatalogError::Columns(format!(
                    "column '{column}' (mapped to {field}) is not in the header; the header has: {}",
                    header.join(", ")
                )));
            }
        }
        let targets: Vec<Target> = header
            .iter()
            .map(|column| {
                if let Some((field, _)) = self.columns.fields.iter().find(|(_, c)| *c == column) {
                    let field = FIELDS.iter().find(|f| *f == field).copied().unwrap_or("id");
                    return Target::Field(field);
                }
                if self.feature_list == Some(column.as_str()) {
                    return Target::FeatureList;
                }
                if self.ignored.contains(&column.as_str()) {
                    return Target::Ignore;
                }
                match FIELDS.iter().find(|f| **f == column) {
                    Some(field) if !self.columns.fields.contains_key(*field) => Target::Field(field),
                    Some(_) => Target::Ignore,
                    None => Target::Attribute(column.clone()),
                }
            })
            .collect();
        for required in ["id", "title"] {
            if !targets.contains(&Target::Field(required)) {
                return Err(CatalogError::Columns(format!(
                    "no column for the product {required}; name one with --map {required}=COLUMN (the header has: {})",
                    header.join(", ")
                )));
            }
        }
        Ok(targets)
    }

    fn decode(&self, bytes: &[u8]) -> Result<String, String> {
        if self.latin1 {
            return Ok(bytes.iter().map(|&b| b as char).collect());
        }
        std::str::from_utf8(bytes)
            .map(str::to_string)
            .map_err(|_| "encoding: the field is not valid UTF-8 (is the file latin-1? try --format kaggle-hd)".into())
    }

    fn product(&self, targets: &[Target], record: &csv::ByteRecord) -> Result<Product, String> {
        if record.len() != targets.len() {
            return Err(format!("columns: expected {} fields, got {}", targets.len(), record.len()));
        }
        let mut product = Product::default();
        for (target, bytes) in targets.iter().zip(record.iter()) {
            let text = self.decode(bytes)?;
            match target {
                Target::Ignore => {}
                Target::Attribute(name) => {
                    product.attributes.insert(name.clone(), text);
                }
                Target::FeatureList => {
                    for pair in text.split('|') {
                        if let Some((key, value)) = pair.split_once(':') {
                            product.attributes.insert(key.trim().to_string(), value.trim().to_string());
                        }
                    }
                }
                Target::Field(field) => self.set_field(&mut product, field, text)?,
            }
        }
        Ok(product)
    }

    fn set_field(&self, product: &mut Product, field: &str, text: String) -> Result<(), String> {
        let optional = |text: String| (!text.trim().is_empty()).then_some(text);
        match field {
            "id" => product.id = text,
            "title" => product.title = text,
            "description" => product.description = optional(text),
            "brand" => product.brand = optional(text),
            "category" => {
                product.category = optional(match self.category_separator {
                    Some(separator) => text.split(separator).collect::<Vec<_>>().join(">"),
                    None => text,
                })
            }
            "image_url" => product.image_url = optional(text),
            "price" => product.price = parse_number(field, &text)?,
            "rating" => product.rating = parse_number(field, &text)?,
            "popularity" => product.popularity = parse_number(field, &text)?,
            "review_count" => product.review_count = parse_count(field, &text)?,
            "in_stock" => product.in_stock = parse_bool(field, &text)?,
            _ => unreachable!("targets only name FIELDS"),
        }
        Ok(())
    }
}

pub(super) fn read(
    reader: impl Read,
    options: &ImportOptions,
    sink: &mut dyn FnMut(u64, Result<Product, String>) -> Result<(), CatalogError>,
) -> Result<(), CatalogError> {
    let layout = Layout::for_options(options);
    let mut csv = csv::ReaderBuilder::new()
        .delimiter(layout.delimiter)
        .flexible(true)
        .has_headers(false)
        // WANDS descriptions hold stray quotes; only CSV uses quoting.
        .quoting(layout.delimiter == b',')
        .from_reader(reader);
    let mut record = csv::ByteRecord::new();
    if !csv.read_byte_record(&mut record).map_err(csv_error)? {
        return Err(CatalogError::NoHeader);
    }
    let header: Vec<String> = record
        .iter()
        .map(|bytes| layout.decode(bytes).map(|h| h.trim_start_matches('\u{feff}').trim().to_string()))
        .collect::<Result<_, _>>()
        .map_err(CatalogError::Columns)?;
    let targets = layout.targets(&header)?;
    loop {
        match csv.read_byte_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) => {
                if record.len() == 1 && record[0].is_empty() {
                    continue;
                }
                let line = record.position().map_or(0, |p| p.line());
                sink(line, layout.product(&targets, &record))?;
            }
            Err(error) => {
                let line = error.position().map_or(0, |p| p.line());
                sink(line, Err(format!("csv: {error}")))?;
            }
        }
    }
}

fn csv_error(error: csv::Error) -> CatalogError {
    CatalogError::Columns(format!("cannot read the header row: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::import_reader;

    fn options(format: Format, map: &str) -> ImportOptions {
        ImportOptions { columns: map.parse().unwrap(), ..ImportOptions::new(format) }
    }

    #[test]
    fn csv_with_a_column_map_keeps_other_columns_as_attributes() {
        let csv = "sku,name,price,colour\n\
                   a1,\"Grey Sofa, 3-seat\",499.00,grey\n\
                   a2,Oak Desk,lots,brown\n\
                   a3,Lamp\n\
                   ,Nameless,1,red\n\
                   a4,Rug,$89,blue\n";
        let catalog = import_reader(csv.as_bytes(), &options(Format::Csv, "id=sku,title=name")).unwrap();
        let ids: Vec<_> = catalog.products.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["a1", "a4"]);
        assert_eq!(catalog.products[0].title, "Grey Sofa, 3-seat");
        assert_eq!(catalog.products[0].price, Some(499.0));
        assert_eq!(catalog.products[0].attributes["colour"], "grey");
        assert_eq!(catalog.products[1].price, Some(89.0));
        let errors: Vec<_> = catalog.report.errors.iter().map(|e| (e.line, e.reason.as_str())).collect();
        assert_eq!(
            errors,
            [
                (3, "price: expected a number, got 'lots'"),
                (4, "columns: expected 4 fields, got 2"),
                (5, "id: missing or empty"),
            ]
        );
    }

    #[test]
    fn a_mapping_to_a_missing_column_or_a_missing_title_is_refused_up_front() {
        let csv = "sku,name\na,b\n";
        let error = import_reader(csv.as_bytes(), &options(Format::Csv, "id=sku,title=label")).unwrap_err();
        assert!(error.to_string().contains("column 'label' (mapped to title) is not in the header"), "{error}");
        let error = import_reader(csv.as_bytes(), &options(Format::Csv, "id=sku")).unwrap_err();
        assert!(error.to_string().contains("--map title=COLUMN"), "{error}");
        assert!("title".parse::<ColumnMap>().is_err());
        assert!("colour=c".parse::<ColumnMap>().unwrap_err().contains("unknown product field"));
    }

    #[test]
    fn tsv_reads_fields_named_like_product_fields_without_a_map() {
        let tsv = "id\ttitle\tin_stock\trating\n1\tChair\tyes\t4.5\n2\tDesk\tsometimes\t\n3\tBed\tno\t9\n";
        let catalog = import_reader(tsv.as_bytes(), &ImportOptions::new(Format::Tsv)).unwrap();
        assert_eq!(catalog.products.len(), 1);
        assert_eq!(catalog.products[0].in_stock, Some(true));
        assert_eq!(catalog.products[0].rating, Some(4.5));
        assert_eq!(catalog.report.skipped_by_reason["in_stock"], 1);
        assert_eq!(catalog.report.skipped_by_reason["rating"], 1);
    }

    #[test]
    fn kaggle_home_depot_rows_are_latin1_and_repeat_products() {
        let mut bytes = b"\"id\",\"product_uid\",\"product_title\",\"search_term\",\"relevance\"\n".to_vec();
        bytes.extend_from_slice(b"2,100001,\"Simpson 90\xb0 Angle\",\"angle bracket\",3.0\n");
        bytes.extend_from_slice(b"3,100001,\"Simpson 90\xb0 Angle\",\"l bracket\",2.5\n");
        bytes.extend_from_slice(b"4,100002,\"\",\"deck over\",3.0\n");
        bytes.extend_from_slice(b"5,100003,\"BEHR\xae Deck\",\"deck\",2.0\n");
        let catalog = import_reader(&bytes[..], &ImportOptions::new(Format::KaggleHd)).unwrap();
        assert_eq!(catalog.products.len(), 2);
        assert_eq!(catalog.products[0].id, "100001");
        assert_eq!(catalog.products[0].title, "Simpson 90° Angle");
        assert!(catalog.products[0].attributes.is_empty(), "query columns are not product data");
        assert_eq!(catalog.products[1].title, "BEHR® Deck");
        assert_eq!(catalog.report.duplicates, 1);
        assert_eq!(catalog.report.errors[0].line, 4);
    }

    #[test]
    fn wands_features_and_category_hierarchy() {
        let tsv = "product_id\tproduct_name\tproduct_class\tcategory hierarchy\tproduct_description\tproduct_features\trating_count\taverage_rating\treview_count\n\
            0\tsolid wood platform bed\tBeds\tFurniture / Bedroom Furniture / Beds & Headboards / Beds\tgood \"sturdy\" bed\toverallwidth-sidetoside:64.7|dsprimaryproductstyle:modern\t15.0\t4.5\t15.0\n\
            1\tbroken row\tBeds\n\
            2\tall-clad 7 qt . slow cooker\tSlow Cookers\tKitchen / Small Appliances\t\tcapacityquarts:7\t\t\t\n";
        let catalog = import_reader(tsv.as_bytes(), &ImportOptions::new(Format::Wands)).unwrap();
        assert_eq!(catalog.products.len(), 2);
        let bed = &catalog.products[0];
        assert_eq!(bed.category.as_deref(), Some("Furniture > Bedroom Furniture > Beds & Headboards > Beds"));
        assert_eq!(bed.description.as_deref(), Some("good \"sturdy\" bed"));
        assert_eq!(bed.attributes["dsprimaryproductstyle"], "modern");
        assert_eq!(bed.attributes["product_class"], "Beds");
        assert_eq!((bed.rating, bed.review_count), (Some(4.5), Some(15)));
        let cooker = &catalog.products[1];
        assert_eq!((cooker.rating, cooker.review_count, cooker.description.as_deref()), (None, None, None));
        assert_eq!(catalog.report.errors[0].line, 3);
    }
}
