//! Reading and writing TREC files the way trec_eval does.
//!
//! ```
//! use shelf::eval::trec::{read_qrels, read_queries};
//!
//! let queries = read_queries("q1\tgrey sofa\tclass\n\nq2\tdesk\n".as_bytes()).unwrap();
//! assert_eq!(queries[0], ("q1".to_string(), "grey sofa".to_string()));
//! let qrels = read_qrels("q1 0 p9 3\nq1 0 p4 0\n".as_bytes()).unwrap();
//! assert_eq!(qrels["q1"]["p9"], 3);
//! ```

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

/// Judgments: query id → product id → grade.
pub type Qrels = BTreeMap<String, BTreeMap<String, i32>>;

#[derive(Debug, thiserror::Error)]
pub enum TrecError {
    #[error("line {line}: {message}")]
    Format { line: usize, message: String },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A run: query id → scored documents (in file order; rank them with
/// [`rank_like_trec_eval`](super::metrics::rank_like_trec_eval)).
pub type Run = BTreeMap<String, Vec<(String, f64)>>;

/// Reads `qid Q0 docid rank score tag` lines. A document listed twice for one query is an
/// error, as in trec_eval.
pub fn read_run(reader: impl BufRead) -> Result<Run, TrecError> {
    let mut run = Run::new();
    let mut seen = std::collections::HashSet::new();
    for_each_line(reader, 6, "qid Q0 docid rank score tag", |columns, error| {
        let score: f64 = columns[4].parse().map_err(|_| error("the score is not a number"))?;
        if !seen.insert((columns[0].to_string(), columns[2].to_string())) {
            return Err(error("the document is listed twice for this query"));
        }
        run.entry(columns[0].to_string()).or_default().push((columns[2].to_string(), score));
        Ok(())
    })?;
    Ok(run)
}

/// Calls `each` with the whitespace-separated columns of every non-blank line, once their
/// count is checked, and a maker of errors that name the line.
fn for_each_line(
    reader: impl BufRead,
    count: usize,
    layout: &str,
    mut each: impl FnMut(&[&str], &dyn Fn(&str) -> TrecError) -> Result<(), TrecError>,
) -> Result<(), TrecError> {
    for (at, line) in reader.lines().enumerate() {
        let line = line?;
        let columns: Vec<&str> = line.split_whitespace().collect();
        if columns.is_empty() {
            continue;
        }
        let error = |message: &str| TrecError::Format { line: at + 1, message: message.to_string() };
        if columns.len() != count {
            return Err(error(&format!("expected `{layout}`")));
        }
        each(&columns, &error)?;
    }
    Ok(())
}

/// Writes one query's ranking (best first) as run lines.
pub fn write_run_query(mut out: impl Write, qid: &str, ranked: &[(String, f64)], tag: &str) -> std::io::Result<()> {
    for (at, (doc, score)) in ranked.iter().enumerate() {
        writeln!(out, "{qid} Q0 {doc} {} {score:.6} {tag}", at + 1)?;
    }
    Ok(())
}

/// Reads `qid<TAB>query` lines, in file order. Blank lines are skipped.
pub fn read_queries(reader: impl BufRead) -> Result<Vec<(String, String)>, TrecError> {
    let mut queries = Vec::new();
    for (at, line) in reader.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let mut columns = line.split('\t');
        let qid = columns.next().unwrap_or_default().trim();
        let text = columns.next().map(str::trim).unwrap_or_default();
        if qid.is_empty() {
            return Err(TrecError::Format { line: at + 1, message: "expected qid<TAB>query".into() });
        }
        queries.push((qid.to_string(), text.to_string()));
    }
    Ok(queries)
}

/// Reads `qid iter docid grade` lines (any whitespace between columns).
pub fn read_qrels(reader: impl BufRead) -> Result<Qrels, TrecError> {
    let mut qrels = Qrels::new();
    for_each_line(reader, 4, "qid 0 docid grade", |columns, error| {
        let grade: i32 = columns[3].parse().map_err(|_| error("the grade is not an integer"))?;
        qrels.entry(columns[0].to_string()).or_default().insert(columns[2].to_string(), grade);
        Ok(())
    })?;
    Ok(qrels)
}

/// Writes queries as `qid<TAB>query`.
pub fn write_queries(mut out: impl Write, queries: &[(String, String)]) -> std::io::Result<()> {
    for (qid, text) in queries {
        writeln!(out, "{qid}\t{text}")?;
    }
    Ok(())
}

/// Writes qrels as `qid 0 docid grade`, queries and products in sorted order.
pub fn write_qrels(mut out: impl Write, qrels: &Qrels) -> std::io::Result<()> {
    for (qid, judged) in qrels {
        for (doc, grade) in judged {
            writeln!(out, "{qid} 0 {doc} {grade}")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_qrels_name_their_line() {
        let error = read_qrels("q1 0 a 1\nq1 0 b\n".as_bytes()).unwrap_err();
        assert_eq!(error.to_string(), "line 2: expected `qid 0 docid grade`");
        let error = read_qrels("q1 0 a high\n".as_bytes()).unwrap_err();
        assert_eq!(error.to_string(), "line 1: the grade is not an integer");
        let error = read_run("q1 Q0 a 1 2.5 t\nq1 Q0 a 2 1.0 t\n".as_bytes()).unwrap_err();
        assert_eq!(error.to_string(), "line 2: the document is listed twice for this query");
        let run = read_run("q1 Q0 a 1 2.5 t\n\nq2\tQ0 b 1 -1e2 t\n".as_bytes()).unwrap();
        assert_eq!(run["q2"], [("b".to_string(), -100.0)]);
    }
}
