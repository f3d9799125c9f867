use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// One sellable item. `id` and `title` are required; everything else is optional, and a
/// missing value stays missing (it is never read as 0).
// In the OpenAPI document a missing value is absent, never `null` (`nullable = false`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, ToSchema)]
pub struct Product {
    pub id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub brand: Option<String>,
    /// A path from broad to narrow, written `Furniture > Chairs > Office`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub price: Option<f64>,
    /// Mean customer rating, 0 to 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, minimum = 0, maximum = 5)]
    pub rating: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub review_count: Option<u64>,
    /// Any non-negative number the shop uses for popularity (sales, clicks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub popularity: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub in_stock: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub image_url: Option<String>,
    /// Everything else the shop knows, such as `colour`, `size` or `material`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
}

/// Splits a category written `A > B > C` into its non-empty parts.
pub fn category_path(category: &str) -> Vec<&str> {
    category.split('>').map(str::trim).filter(|part| !part.is_empty()).collect()
}

impl Product {
    /// Checks the rules every reader shares, and tidies whitespace.
    pub(crate) fn validated(mut self) -> Result<Product, String> {
        self.id = self.id.trim().to_string();
        self.title = collapse_whitespace(&self.title);
        if self.id.is_empty() {
            return Err("id: missing or empty".into());
        }
        if self.title.is_empty() {
            return Err("title: missing or empty".into());
        }
        if crate::lexical::text::is_blank(&self.title) {
            return Err("title: only control or zero-width characters".into());
        }
        for text in [&mut self.description, &mut self.brand, &mut self.category, &mut self.image_url] {
            if let Some(value) = text.as_deref() {
                let tidy = collapse_whitespace(value);
                *text = (!tidy.is_empty()).then_some(tidy);
            }
        }
        if let Some(category) = &self.category {
            let parts = category_path(category);
            self.category = (!parts.is_empty()).then(|| parts.join(" > "));
        }
        if let Some(price) = self.price {
            if !price.is_finite() || price < 0.0 {
                return Err(format!("price: must be a non-negative number, got {price}"));
            }
        }
        if let Some(rating) = self.rating {
            if !(0.0..=5.0).contains(&rating) {
                return Err(format!("rating: must be between 0 and 5, got {rating}"));
            }
        }
        if let Some(popularity) = self.popularity {
            if !popularity.is_finite() || popularity < 0.0 {
                return Err(format!("popularity: must be a non-negative number, got {popularity}"));
            }
        }
        self.attributes.retain(|key, value| !key.trim().is_empty() && !value.trim().is_empty());
        Ok(self)
    }

    /// Reads a product from a JSON object: the known fields with their types checked, and
    /// every other key kept as an attribute.
    pub fn from_json(object: Map<String, Value>) -> Result<Product, String> {
        let mut product = Product::default();
        for (key, value) in object {
            match key.as_str() {
                "id" => product.id = id_value(&value)?,
                "title" => product.title = string(&key, &value)?.unwrap_or_default(),
                "description" => product.description = string(&key, &value)?,
                "brand" => product.brand = string(&key, &value)?,
                "category" => product.category = category_value(&value)?,
                "image_url" => product.image_url = string(&key, &value)?,
                "price" => product.price = number(&key, &value)?,
                "rating" => product.rating = number(&key, &value)?,
                "popularity" => product.popularity = number(&key, &value)?,
                "review_count" => product.review_count = count(&key, &value)?,
                "in_stock" => product.in_stock = boolean(&key, &value)?,
                "attributes" => match value {
                    Value::Object(map) => {
                        for (name, value) in map {
                            if let Some(text) = attribute_text(&value) {
                                product.attributes.insert(name, text);
                            }
                        }
                    }
                    Value::Null => {}
                    other => return Err(format!("attributes: expected an object, got {}", kind(&other))),
                },
                _ => {
                    if let Some(text) = attribute_text(&value) {
                        product.attributes.insert(key, text);
                    }
                }
            }
        }
        Ok(product)
    }

    /// The text of every searchable attribute, as `name: value` pairs.
    pub fn attribute_text(&self) -> String {
        let mut text = String::new();
        for (name, value) in &self.attributes {
            if !text.is_empty() {
                text.push_str("; ");
            }
            text.push_str(&name.replace('_', " "));
            text.push_str(": ");
            text.push_str(value);
        }
        text
    }
}

/// Parses a number the way shops write them in text columns: `1,299.00`, `$15`, ` 4.5 `.
pub(crate) fn parse_number(field: &str, text: &str) -> Result<Option<f64>, String> {
    let cleaned: String = text.trim().chars().filter(|c| !matches!(c, '$' | '€' | '£' | ',')).collect();
    if cleaned.is_empty() {
        return Ok(None);
    }
    match cleaned.parse::<f64>() {
        Ok(value) if value.is_finite() => Ok(Some(value)),
        _ => Err(format!("{field}: expected a number, got '{}'", shorten(text))),
    }
}

pub(crate) fn parse_count(field: &str, text: &str) -> Result<Option<u64>, String> {
    match parse_number(field, text)? {
        None => Ok(None),
        Some(value) if value >= 0.0 && value.fract() == 0.0 && value <= u64::MAX as f64 => Ok(Some(value as u64)),
        Some(_) => Err(format!("{field}: expected a whole non-negative number, got '{}'", shorten(text))),
    }
}

pub(crate) fn parse_bool(field: &str, text: &str) -> Result<Option<bool>, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "" => Ok(None),
        "true" | "yes" | "y" | "1" | "in stock" | "instock" => Ok(Some(true)),
        "false" | "no" | "n" | "0" | "out of stock" | "outofstock" => Ok(Some(false)),
        _ => Err(format!("{field}: expected true or false, got '{}'", shorten(text))),
    }
}

fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn shorten(text: &str) -> String {
    const MAX: usize = 40;
    if text.chars().count() <= MAX {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(MAX).collect::<String>())
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Ids are strings; whole numbers are accepted too, since many shops number their products.
fn id_value(value: &Value) -> Result<String, String> {
    match value {
        Value::String(text) => Ok(text.clone()),
        Value::Number(number) if number.is_u64() || number.is_i64() => Ok(number.to_string()),
        other => Err(format!("id: expected a string, got {}", kind(other))),
    }
}

fn string(key: &str, value: &Value) -> Result<Option<String>, String> {
    match value {
        Value::String(text) => Ok(Some(text.clone())),
        Value::Null => Ok(None),
        other => Err(format!("{key}: expected a string, got {}", kind(other))),
    }
}

/// A category is `"A > B"` or a list of parts `["A", "B"]`.
fn category_value(value: &Value) -> Result<Option<String>, String> {
    match value {
        Value::Array(parts) => {
            let parts: Option<Vec<&str>> = parts.iter().map(Value::as_str).collect();
            match parts {
                Some(parts) => Ok(Some(parts.join(" > "))),
                None => Err("category: expected a string or a list of strings".into()),
            }
        }
        other => string("category", other),
    }
}

fn number(key: &str, value: &Value) -> Result<Option<f64>, String> {
    match value {
        Value::Number(number) => Ok(number.as_f64()),
        Value::String(text) => parse_number(key, text),
        Value::Null => Ok(None),
        other => Err(format!("{key}: expected a number, got {}", kind(other))),
    }
}

fn count(key: &str, value: &Value) -> Result<Option<u64>, String> {
    match value {
        Value::Number(number) => match number.as_u64() {
            Some(n) => Ok(Some(n)),
            None => parse_count(key, &number.to_string()),
        },
        Value::String(text) => parse_count(key, text),
        Value::Null => Ok(None),
        other => Err(format!("{key}: expected a whole number, got {}", kind(other))),
    }
}

fn boolean(key: &str, value: &Value) -> Result<Option<bool>, String> {
    match value {
        Value::Bool(flag) => Ok(Some(*flag)),
        Value::String(text) => parse_bool(key, text),
        Value::Number(number) if number.as_u64() == Some(0) => Ok(Some(false)),
        Value::Number(number) if number.as_u64() == Some(1) => Ok(Some(true)),
        Value::Null => Ok(None),
        other => Err(format!("{key}: expected true or false, got {}", kind(other))),
    }
}

/// Attribute values are text; scalars are written as text, and nested values as JSON.
fn attribute_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(text) => Some(text.clone()),
        Value::Bool(_) | Value::Number(_) => Some(value.to_string()),
        Value::Array(items) if items.iter().all(Value::is_string) => {
            Some(items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "))
        }
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(value: Value) -> Result<Product, String> {
        match value {
            Value::Object(map) => Product::from_json(map).and_then(Product::validated),
            _ => unreachable!("tests pass objects"),
        }
    }

    #[test]
    fn unknown_keys_become_attributes_and_types_are_checked() {
        let product = read(json!({"id": 7, "title": "  Oak   Desk ", "colour": "oak", "width_in": 48,
            "category": ["Furniture", "Desks"], "price": "$1,299.50"}))
        .unwrap();
        assert_eq!(product.id, "7");
        assert_eq!(product.title, "Oak Desk");
        assert_eq!(product.category.as_deref(), Some("Furniture > Desks"));
        assert_eq!(product.price, Some(1299.5));
        assert_eq!(product.attributes["width_in"], "48");

        assert_eq!(
            read(json!({"id": "x", "title": "t", "price": "cheap"})).unwrap_err(),
            "price: expected a number, got 'cheap'"
        );
        assert!(read(json!({"id": "x", "title": "t", "rating": 7})).unwrap_err().starts_with("rating"));
        assert!(read(json!({"id": "x", "title": "t", "review_count": -3})).unwrap_err().starts_with("review_count"));
        assert!(read(json!({"id": "x", "title": "t", "in_stock": "maybe"})).unwrap_err().starts_with("in_stock"));
        assert!(read(json!({"id": ["x"], "title": "t"})).unwrap_err().starts_with("id"));
        assert!(read(json!({"id": "x", "title": "   "})).unwrap_err().starts_with("title"));
        assert!(read(json!({"id": "x", "title": "\u{200B}\u{0}"})).unwrap_err().contains("zero-width"));
        assert!(read(json!({"title": "no id"})).unwrap_err().starts_with("id"));
    }

    #[test]
    fn missing_values_stay_missing() {
        let product = read(json!({"id": "a", "title": "Lamp", "price": null, "brand": ""})).unwrap();
        assert_eq!(product.price, None);
        assert_eq!(product.brand, None);
        assert_eq!(product.rating, None);
    }
}
