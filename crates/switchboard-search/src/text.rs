//! Text analysis for tool search: splitting identifiers and prose into words, dropping stop
//! words, and stemming.
//!
//! Tool names are identifiers (`get_weather`, `listPullRequests`, `fs.read-file`), so words
//! are split at every non-alphanumeric character, at lower→upper case changes, at the end of
//! an upper-case run followed by a lower-case letter (`HTTPServer` → `http`, `server`), and
//! between letters and digits. Every word is lower-cased and stemmed with the Snowball English
//! stemmer, so `files`, `filing` and `file` meet.

use rust_stemmers::{Algorithm, Stemmer};

/// Words too common in tool descriptions and questions to tell tools apart.
const STOP_WORDS: &[&str] = &[
    "a", "about", "after", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be",
    "been", "being", "both", "but", "by", "can", "could", "did", "do", "does", "doing", "each",
    "for", "from", "had", "has", "have", "having", "he", "her", "here", "hers", "him", "his",
    "how", "i", "if", "in", "into", "is", "it", "its", "itself", "just", "let", "me", "my",
    "myself", "of", "on", "or", "our", "ours", "please", "she", "should", "so", "some", "such",
    "than", "that", "the", "their", "theirs", "them", "then", "there", "these", "they", "this",
    "those", "to", "too", "us", "very", "was", "we", "were", "what", "when", "where", "which",
    "while", "who", "whom", "why", "will", "with", "would", "you", "your", "yours",
];

/// Splits text into analysed terms. One per process is enough: it holds no state but the
/// stemmer's tables.
pub struct Analyzer {
    /// `None` for the plain analyzer: no stemming, no stop words, no case-change splits.
    stemmer: Option<Stemmer>,
}

impl Default for Analyzer {
    fn default() -> Self {
        Self::new()
    }
}

impl Analyzer {
    pub fn new() -> Self {
        Self {
            stemmer: Some(Stemmer::create(Algorithm::English)),
        }
    }

    /// The naive baseline's analysis: split at non-alphanumerics and lower-case, nothing
    /// else. Only the search benchmark uses it.
    pub fn plain() -> Self {
        Self { stemmer: None }
    }

    /// Appends the terms of `text` to `out`: split, lower-cased, stop words dropped, stemmed.
    pub fn terms_into(&self, text: &str, out: &mut Vec<String>) {
        let Some(stemmer) = &self.stemmer else {
            out.extend(
                text.split(|c: char| !c.is_alphanumeric())
                    .filter(|w| !w.is_empty())
                    .map(str::to_lowercase),
            );
            return;
        };
        let mut word = String::new();
        for_each_word(text, |w| {
            word.clear();
            word.extend(w.chars().flat_map(char::to_lowercase));
            if is_stop_word(&word) {
                return;
            }
            out.push(stemmer.stem(&word).into_owned());
        });
    }

    /// The terms of `text`.
    pub fn terms(&self, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        self.terms_into(text, &mut out);
        out
    }
}

fn is_stop_word(w: &str) -> bool {
    STOP_WORDS.binary_search(&w).is_ok()
}

/// The words of `text` as split for identifiers and prose (not lower-cased).
pub fn words(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for_each_word(text, |w| out.push(w));
    out
}

/// Calls `f` with each word of `text`, in order.
fn for_each_word<'a>(text: &'a str, mut f: impl FnMut(&'a str)) {
    let mut start: Option<usize> = None;
    let mut prev: Option<char> = None;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if !c.is_alphanumeric() {
            if let Some(s) = start.take() {
                f(&text[s..i]);
            }
            prev = None;
            continue;
        }
        if let (Some(s), Some(p)) = (start, prev) {
            let next = chars.peek().map(|&(_, n)| n);
            let boundary = (p.is_lowercase() && c.is_uppercase())
                || (p.is_alphabetic() && c.is_ascii_digit())
                || (p.is_ascii_digit() && c.is_alphabetic())
                || (p.is_uppercase() && c.is_uppercase() && next.is_some_and(char::is_lowercase));
            if boundary {
                f(&text[s..i]);
                start = Some(i);
            }
        }
        if start.is_none() {
            start = Some(i);
        }
        prev = Some(c);
    }
    if let Some(s) = start {
        f(&text[s..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_words_are_sorted_for_binary_search() {
        let mut sorted = STOP_WORDS.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, STOP_WORDS);
    }

    #[test]
    fn identifiers_split_at_separators_case_changes_and_digits() {
        assert_eq!(words("get_weather"), ["get", "weather"]);
        assert_eq!(words("listPullRequests"), ["list", "Pull", "Requests"]);
        assert_eq!(words("fs.read-file"), ["fs", "read", "file"]);
        assert_eq!(words("HTTPServer2go"), ["HTTP", "Server", "2", "go"]);
        assert_eq!(words("  sha256 "), ["sha", "256"]);
        assert_eq!(words("ÜberSchön"), ["Über", "Schön"]);
    }

    #[test]
    fn terms_are_lower_cased_stemmed_and_stop_words_dropped() {
        let a = Analyzer::new();
        assert_eq!(
            a.terms("Reads the files of a directory"),
            ["read", "file", "directori"]
        );
        assert_eq!(a.terms("read_file"), ["read", "file"]);
        assert_eq!(a.terms("Calculating areas"), ["calcul", "area"]);
        assert!(a.terms("the of and").is_empty());
    }
}
