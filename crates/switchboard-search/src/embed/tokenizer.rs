//! BERT's WordPiece tokenizer, read from a Hugging Face `tokenizer.json`.
//!
//! Normalisation as `BertNormalizer`: drop control characters and turn whitespace into
//! spaces, put spaces around CJK ideographs, lowercase and strip accents (NFD, combining
//! marks removed) when the file asks for it. Pre-tokenisation as `BertPreTokenizer`: split on
//! whitespace, and every punctuation character is a word of its own. Then WordPiece: the
//! longest vocabulary entry from the start of each word, continued with `##` pieces; a word
//! that cannot be covered (or is longer than `max_input_chars_per_word`) becomes `[UNK]`.
//! The sequence is `[CLS] pieces… [SEP]`, truncated to the length asked for.

use std::collections::HashMap;

use serde_json::Value;
use unicode_normalization::UnicodeNormalization;

pub struct Tokenizer {
    vocab: HashMap<String, u32>,
    prefix: String,
    max_word_chars: usize,
    lowercase: bool,
    strip_accents: bool,
    chinese: bool,
    clean: bool,
    unk: u32,
    cls: u32,
    sep: u32,
}

impl Tokenizer {
    /// Reads a `tokenizer.json` with a WordPiece model.
    pub fn from_json(text: &str) -> Result<Tokenizer, String> {
        let json: Value =
            serde_json::from_str(text).map_err(|e| format!("tokenizer.json is not JSON: {e}"))?;
        let model = json.get("model").ok_or("tokenizer.json has no model")?;
        if let Some(kind) = model.get("type").and_then(Value::as_str)
            && kind != "WordPiece"
        {
            return Err(format!("tokenizer model is {kind}, not WordPiece"));
        }
        let vocab: HashMap<String, u32> = model
            .get("vocab")
            .and_then(Value::as_object)
            .ok_or("tokenizer.json has no model.vocab")?
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), u32::try_from(v.as_u64()?).ok()?)))
            .collect();
        let id = |name: &str| {
            vocab
                .get(name)
                .copied()
                .ok_or_else(|| format!("the vocabulary has no {name}"))
        };
        let unk_name = model
            .get("unk_token")
            .and_then(Value::as_str)
            .unwrap_or("[UNK]");
        let norm = json.get("normalizer").filter(|n| !n.is_null());
        let flag = |key: &str, default: bool| {
            norm.and_then(|n| n.get(key))
                .and_then(Value::as_bool)
                .unwrap_or(default)
        };
        let lowercase = flag("lowercase", true);
        Ok(Tokenizer {
            unk: id(unk_name)?,
            cls: id("[CLS]")?,
            sep: id("[SEP]")?,
            prefix: model
                .get("continuing_subword_prefix")
                .and_then(Value::as_str)
                .unwrap_or("##")
                .to_owned(),
            max_word_chars: model
                .get("max_input_chars_per_word")
                .and_then(Value::as_u64)
                .unwrap_or(100) as usize,
            // `strip_accents: null` follows `lowercase`, as in BERT.
            strip_accents: flag("strip_accents", lowercase),
            lowercase,
            chinese: flag("handle_chinese_chars", true),
            clean: flag("clean_text", true),
            vocab,
        })
    }

    /// The token ids of `text`: `[CLS]`, at most `max_len - 2` pieces, `[SEP]`.
    pub fn encode(&self, text: &str, max_len: usize) -> Vec<u32> {
        let budget = max_len.saturating_sub(2);
        let mut ids = vec![self.cls];
        let normal = self.normalize(text);
        let mut word = String::new();
        let flush = |word: &mut String, ids: &mut Vec<u32>| {
            if !word.is_empty() && ids.len() <= budget {
                self.word_pieces(word, ids);
            }
            word.clear();
        };
        for c in normal.chars() {
            if c.is_whitespace() {
                flush(&mut word, &mut ids);
            } else if is_punctuation(c) {
                flush(&mut word, &mut ids);
                word.push(c);
                flush(&mut word, &mut ids);
            } else {
                word.push(c);
            }
        }
        flush(&mut word, &mut ids);
        ids.truncate(budget + 1);
        ids.push(self.sep);
        ids
    }

    fn normalize(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            if self.clean {
                if c == '\0' || c == '\u{fffd}' || (is_control(c)) {
                    continue;
                }
                if c.is_whitespace() {
                    out.push(' ');
                    continue;
                }
            }
            if self.chinese && is_cjk(c) {
                out.push(' ');
                out.push(c);
                out.push(' ');
                continue;
            }
            out.push(c);
        }
        if self.strip_accents {
            out = out
                .nfd()
                .filter(|&c| !unicode_normalization::char::is_combining_mark(c))
                .collect();
        }
        if self.lowercase {
            out = out.to_lowercase();
        }
        out
    }

    /// Appends the WordPiece ids of one word.
    fn word_pieces(&self, word: &str, ids: &mut Vec<u32>) {
        let chars: Vec<(usize, char)> = word.char_indices().collect();
        if chars.len() > self.max_word_chars {
            ids.push(self.unk);
            return;
        }
        let mark = ids.len();
        let mut start = 0;
        let mut key = String::new();
        while start < chars.len() {
            let mut end = chars.len();
            let mut found = None;
            while end > start {
                let from = chars[start].0;
                let to = chars.get(end).map_or(word.len(), |c| c.0);
                key.clear();
                if start > 0 {
                    key.push_str(&self.prefix);
                }
                key.push_str(&word[from..to]);
                if let Some(&id) = self.vocab.get(key.as_str()) {
                    found = Some(id);
                    break;
                }
                end -= 1;
            }
            match found {
                Some(id) => ids.push(id),
                None => {
                    ids.truncate(mark);
                    ids.push(self.unk);
                    return;
                }
            }
            start = end;
        }
    }
}

/// BERT's control characters: category C*, except tab, newline and carriage return (which
/// are whitespace).
fn is_control(c: char) -> bool {
    !matches!(c, '\t' | '\n' | '\r')
        && (c.is_control() || matches!(c, '\u{200b}'..='\u{200f}' | '\u{feff}'))
}

/// BERT's punctuation: ASCII symbols and the Unicode punctuation blocks.
fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation()
        || matches!(c,
            '\u{a1}' | '\u{a7}' | '\u{ab}' | '\u{b6}' | '\u{b7}' | '\u{bb}' | '\u{bf}'
            | '\u{37e}' | '\u{387}' | '\u{55a}'..='\u{55f}' | '\u{589}' | '\u{58a}'
            | '\u{5be}' | '\u{5c0}' | '\u{5c3}' | '\u{5c6}' | '\u{5f3}' | '\u{5f4}'
            | '\u{609}' | '\u{60a}' | '\u{60c}' | '\u{60d}' | '\u{61b}' | '\u{61f}'
            | '\u{66a}'..='\u{66d}' | '\u{6d4}' | '\u{964}' | '\u{965}' | '\u{970}'
            | '\u{2010}'..='\u{2027}' | '\u{2030}'..='\u{2043}' | '\u{2045}'..='\u{2051}'
            | '\u{2053}'..='\u{205e}' | '\u{207d}' | '\u{207e}' | '\u{208d}' | '\u{208e}'
            | '\u{2308}'..='\u{230b}' | '\u{2329}' | '\u{232a}' | '\u{2768}'..='\u{2775}'
            | '\u{27c5}' | '\u{27c6}' | '\u{27e6}'..='\u{27ef}' | '\u{2983}'..='\u{2998}'
            | '\u{29d8}'..='\u{29db}' | '\u{29fc}' | '\u{29fd}' | '\u{2cf9}'..='\u{2cfc}'
            | '\u{2cfe}' | '\u{2cff}' | '\u{2e00}'..='\u{2e2e}' | '\u{2e30}'..='\u{2e4f}'
            | '\u{3001}'..='\u{3003}' | '\u{3008}'..='\u{3011}' | '\u{3014}'..='\u{301f}'
            | '\u{3030}' | '\u{303d}' | '\u{30a0}' | '\u{30fb}' | '\u{fe10}'..='\u{fe19}'
            | '\u{fe30}'..='\u{fe52}' | '\u{fe54}'..='\u{fe61}' | '\u{fe63}' | '\u{fe68}'
            | '\u{fe6a}' | '\u{fe6b}' | '\u{ff01}'..='\u{ff03}' | '\u{ff05}'..='\u{ff0a}'
            | '\u{ff0c}'..='\u{ff0f}' | '\u{ff1a}' | '\u{ff1b}' | '\u{ff1f}' | '\u{ff20}'
            | '\u{ff3b}'..='\u{ff3d}' | '\u{ff3f}' | '\u{ff5b}' | '\u{ff5d}'
            | '\u{ff5f}'..='\u{ff65}')
}

/// The CJK ideograph blocks BERT spaces out.
fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{4e00}'..='\u{9fff}' | '\u{3400}'..='\u{4dbf}' | '\u{20000}'..='\u{2a6df}'
        | '\u{2a700}'..='\u{2b73f}' | '\u{2b740}'..='\u{2b81f}' | '\u{2b820}'..='\u{2ceaf}'
        | '\u{f900}'..='\u{faff}' | '\u{2f800}'..='\u{2fa1f}')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Tokenizer {
        let vocab = [
            "[PAD]", "[UNK]", "[CLS]", "[SEP]", "un", "##aff", "##able", "hello", ",", "world",
            "!", "cafe", "北", "京", "a",
        ];
        let map: serde_json::Map<String, Value> = vocab
            .iter()
            .enumerate()
            .map(|(i, t)| (t.to_string(), Value::from(i)))
            .collect();
        let json = serde_json::json!({
            "normalizer": {"type": "BertNormalizer", "clean_text": true,
                           "handle_chinese_chars": true, "strip_accents": null, "lowercase": true},
            "model": {"type": "WordPiece", "unk_token": "[UNK]",
                      "continuing_subword_prefix": "##", "max_input_chars_per_word": 100,
                      "vocab": map}
        });
        Tokenizer::from_json(&json.to_string()).unwrap()
    }

    #[test]
    fn words_split_into_the_longest_pieces_with_continuations() {
        let t = tiny();
        assert_eq!(t.encode("unaffable", 16), [2, 4, 5, 6, 3]);
        assert_eq!(t.encode("Hello,world!", 16), [2, 7, 8, 9, 10, 3]);
    }

    #[test]
    fn accents_case_control_characters_and_cjk_are_normalised() {
        let t = tiny();
        assert_eq!(t.encode("CAFÉ\u{0}\t北京", 16), [2, 11, 12, 13, 3]);
    }

    #[test]
    fn uncoverable_words_become_one_unknown_and_long_input_is_truncated() {
        let t = tiny();
        assert_eq!(t.encode("unknownword a", 16), [2, 1, 14, 3]);
        assert_eq!(t.encode("a a a a a a", 4), [2, 14, 14, 3]);
        assert_eq!(t.encode("", 4), [2, 3]);
    }
}
