//! JSON Lines: one product object a line.

use std::io::BufRead;

use serde_json::Value;

use super::{CatalogError, Product};

pub(super) fn read(
    mut reader: impl BufRead,
    sink: &mut dyn FnMut(u64, Result<Product, String>) -> Result<(), CatalogError>,
) -> Result<(), CatalogError> {
    let mut buffer = Vec::new();
    let mut line_no = 0u64;
    loop {
        buffer.clear();
        if reader.read_until(b'\n', &mut buffer)? == 0 {
            return Ok(());
        }
        line_no += 1;
        let line = match std::str::from_utf8(&buffer) {
            Ok(line) => line.trim_start_matches('\u{feff}').trim(),
            Err(_) => {
                sink(line_no, Err("encoding: the line is not valid UTF-8".into()))?;
                continue;
            }
        };
        if line.is_empty() {
            continue;
        }
        sink(line_no, parse(line))?;
    }
}

fn parse(line: &str) -> Result<Product, String> {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(object)) => Product::from_json(object),
        Ok(_) => Err("json: expected an object with id and title".into()),
        Err(error) => Err(format!("json: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use crate::catalog::{import_reader, CatalogError, Format, ImportOptions, OnError};

    const MIXED: &[u8] = b"{\"id\": \"1\", \"title\": \"Oak Desk\"}\n\
        \n\
        {\"id\": \"2\", \"title\": \"Lamp\"\n\
        [1, 2]\n\
        {\"id\": \"3\", \"title\": \"Rug\", \"price\": \"free\"}\n\
        {\"id\": \"4\", \"title\": \"Caf\xe9 Chair\"}\n\
        {\"id\": \"1\", \"title\": \"Oak Desk, large\"}\n\
        {\"id\": \"5\", \"title\": \"Mirror \xf0\x9f\xaa\x9e\"}";

    #[test]
    fn bad_lines_are_reported_with_line_numbers_and_good_ones_kept() {
        let catalog = import_reader(MIXED, &ImportOptions::new(Format::Jsonl)).unwrap();
        let ids: Vec<_> = catalog.products.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["1", "5"]);
        assert_eq!(catalog.products[0].title, "Oak Desk, large", "the last duplicate wins");
        assert_eq!(catalog.products[1].title, "Mirror 🪞");
        let report = &catalog.report;
        assert_eq!((report.records, report.imported, report.skipped, report.duplicates), (7, 2, 4, 1));
        let lines: Vec<_> = report.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [3, 4, 5, 6]);
        assert!(report.errors[0].reason.starts_with("json: EOF while parsing"), "{:?}", report.errors[0]);
        assert_eq!(report.errors[2].reason, "price: expected a number, got 'free'");
        assert_eq!(report.skipped_by_reason["json"], 2);
        assert_eq!(report.skipped_by_reason["encoding"], 1);
    }

    #[test]
    fn stop_policy_stops_at_the_first_bad_line() {
        let options = ImportOptions { on_error: OnError::Stop, ..ImportOptions::new(Format::Jsonl) };
        match import_reader(MIXED, &options) {
            Err(CatalogError::Stopped { error, imported }) => {
                assert_eq!(error.line, 3);
                assert_eq!(imported, 1);
            }
            other => panic!("expected a stop, got {other:?}"),
        }
    }

    #[test]
    fn a_catalogue_without_any_good_line_is_an_error() {
        let result = import_reader(&b"nope\n{}\n"[..], &ImportOptions::new(Format::Jsonl));
        assert!(matches!(result, Err(CatalogError::Empty { skipped: 2 })));
    }
}
