//! Text preparation shared by indexing and querying, so both sides see the same terms.

/// Whether `text` has nothing a shopper can see: a query of it is refused (evaluation and
/// training skip it, as they skip an empty one), a product titled with it is not imported.
pub fn is_blank(text: &str) -> bool {
    !text.chars().any(visible)
}

/// Whether `c` is something a shopper can see: not whitespace, a control character or one
/// of Unicode's invisible format characters (zero-width spaces and joiners, the byte-order
/// mark, the soft hyphen).
fn visible(c: char) -> bool {
    let invisible_format = matches!(c, '\u{00AD}' | '\u{200B}'..='\u{200F}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}');
    !(c.is_whitespace() || c.is_control() || invisible_format)
}

/// Adds the letter and digit runs of mixed words: `"36in SC-141"` becomes
/// `"36in 36 in SC 141"` (the tokenizer splits on `-`), so "36 in" finds "36in" and
/// "36in" finds "36 in.". Used for the unstemmed title field.
pub fn split_letters_and_digits(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for word in text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
        let runs = digit_runs(word);
        if runs.len() > 1 {
            for run in runs {
                out.push(' ');
                out.push_str(run);
            }
        }
    }
    out
}

/// Adjacent words written together, for compounds a shopper splits: `"deck over"` gives
/// `"deckover"`, which finds "DeckOver" titles. Only used on the query side.
pub fn joined_pairs(text: &str) -> String {
    let words: Vec<&str> = text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
    words.windows(2).map(|pair| format!("{}{}", pair[0], pair[1])).collect::<Vec<_>>().join(" ")
}

/// Splits a word where it switches between digits and other characters.
fn digit_runs(word: &str) -> Vec<&str> {
    let mut runs = Vec::new();
    let mut start = 0;
    let mut previous: Option<bool> = None;
    for (at, c) in word.char_indices() {
        let digit = c.is_ascii_digit();
        if previous.is_some_and(|p| p != digit) {
            runs.push(&word[start..at]);
            start = at;
        }
        previous = Some(digit);
    }
    runs.push(&word[start..]);
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixed_words_gain_their_runs() {
        assert_eq!(split_letters_and_digits("36in vanity"), "36in 36 in vanity");
        assert_eq!(split_letters_and_digits("2x4 stud"), "2x4 2 x 4 stud");
        assert_eq!(split_letters_and_digits("#SC-141 (Tugboat)"), "SC 141 Tugboat");
        assert_eq!(split_letters_and_digits("café 😀 12"), "café 12");
        assert_eq!(split_letters_and_digits(""), "");
    }

    #[test]
    fn adjacent_words_join() {
        assert_eq!(joined_pairs("deck over"), "deckover");
        assert_eq!(joined_pairs("tool box, red"), "toolbox boxred");
        assert_eq!(joined_pairs("lamp"), "");
    }
}
