//! The Rust encoder against a numpy reference (`scripts/embed-reference.py`, run once on
//! all-MiniLM-L6-v2 with the Hugging Face `tokenizers` package): the same token ids, and
//! embeddings equal to 1e-5 in their first dimensions; and the encoder's short-input path
//! (row dot products) against its sgemm path on inputs of every length from 1 to 120 word
//! pieces. The model comes from
//! `scripts/test-deps.sh` (`SWITCHBOARD_TEST_EMBEDDING_MODEL`); the test fails, not skips,
//! without it.

use std::path::PathBuf;

use switchboard_search::embed::bert::SHORT_TOKENS;
use switchboard_search::embed::{Kernel, MAX_QUERY_TOKENS, Model};

fn model() -> Model {
    let dir = std::env::var_os("SWITCHBOARD_TEST_EMBEDDING_MODEL").expect(
        "SWITCHBOARD_TEST_EMBEDDING_MODEL is not set: run `bash scripts/test-deps.sh` and source .test-deps/env.sh",
    );
    Model::load(&PathBuf::from(dir)).unwrap()
}

const WEATHER: &str = "What's the weather forecast for Paris tomorrow?";
const FILE: &str = "Reads a file from disk and returns its contents.";
const MIXED: &str =
    "Crème brûlée — naïve café, 北京 unaffable_tokens!! x=3.5e-2 <tag> \"quoted\" ünïcödé";

#[test]
fn the_tokenizer_gives_the_reference_token_ids() {
    let m = model();
    let t = m.tokenizer();
    assert_eq!(
        t.encode(WEATHER, 256),
        [
            101, 2054, 1005, 1055, 1996, 4633, 19939, 2005, 3000, 4826, 1029, 102
        ]
    );
    assert_eq!(
        t.encode(FILE, 256),
        [
            101, 9631, 1037, 5371, 2013, 9785, 1998, 5651, 2049, 8417, 1012, 102
        ]
    );
    assert_eq!(
        t.encode(MIXED, 256),
        [
            101, 13675, 21382, 7987, 9307, 2063, 1517, 15743, 7668, 1010, 1781, 1755, 14477, 20961,
            3468, 1035, 19204, 2015, 999, 999, 1060, 1027, 1017, 1012, 1019, 2063, 1011, 1016,
            1026, 6415, 1028, 1000, 9339, 1000, 27260, 102
        ]
    );
    assert_eq!(
        t.encode(&"word ".repeat(500), MAX_QUERY_TOKENS).len(),
        MAX_QUERY_TOKENS
    );
}

#[test]
fn embeddings_match_the_numpy_reference() {
    let m = model();
    assert_eq!(m.dims(), 384);
    for (text, want) in [
        (
            WEATHER,
            [-0.0078112, -0.0041837, 0.0814951, 0.0235019, 0.0075837],
        ),
        (
            FILE,
            [0.0187005, 0.0496721, -0.0956366, 0.003781, 0.0298839],
        ),
        (
            MIXED,
            [0.0075732, -0.0097078, 0.0210491, -0.003408, 0.027417],
        ),
    ] {
        let e = m.embed(text, 256);
        let norm: f32 = e.iter().map(|a| a * a).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{text}: norm {norm}");
        for (got, want) in e.iter().zip(want) {
            assert!(
                (got - want).abs() < 1e-5,
                "{text}: {:?} vs {want:?}",
                &e[..5]
            );
        }
    }
    let a = m.embed("weather tomorrow", MAX_QUERY_TOKENS);
    let close = m.embed("forecast for a city", MAX_QUERY_TOKENS);
    let far = m.embed("delete a git branch", MAX_QUERY_TOKENS);
    let dot = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>();
    assert!(dot(&a, &close) > dot(&a, &far) + 0.1);
}

/// Long enough for 120 word pieces after `[CLS]`: prose, identifiers, numbers, punctuation.
const LONG: &str = "Create a new calendar event titled 'Quarterly planning' on 2024-03-15 at \
    10:30 in Conference Room B, invite alice@example.com and bob, and send a reminder 15 \
    minutes before. Then list the open pull requests in octocat/hello-world labelled \
    bug or needs-triage, sorted by last update, and summarise each in one sentence. \
    Finally convert 250 US dollars to euros at today's rate, fetch the weather forecast \
    for Tokyo and Osaka for the next three days, and compute the area of a circle with \
    radius 4.5 cm; getUserProfileById(user_id=42) should return JSON.";

#[test]
fn the_short_input_path_matches_sgemm_on_every_length_up_to_120_word_pieces() {
    let m = model();
    assert!(m.tokenizer().encode(LONG, 256).len() > 122);
    // [CLS] + 1..=120 word pieces of LONG + [SEP]: every length up to a little past the
    // switch between the paths, every eighth above; then the other sentences whole.
    let cut = (1..=SHORT_TOKENS + 8)
        .chain((SHORT_TOKENS + 16..=120).step_by(8))
        .map(|n| (LONG, n + 2));
    let whole = [WEATHER, FILE, MIXED].map(|t| (t, MAX_QUERY_TOKENS));
    let (mut short, mut worst_cosine, mut worst_diff) = (0, 1f32, 0f32);
    for (text, max) in cut.chain(whole) {
        let len = m.tokenizer().encode(text, max).len();
        let fast = m.embed_with(text, max, Kernel::Auto);
        let plain = m.embed_with(text, max, Kernel::Sgemm);
        let cosine: f32 = fast.iter().zip(&plain).map(|(a, b)| a * b).sum();
        let diff = fast
            .iter()
            .zip(&plain)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(
            cosine >= 0.99999 && diff <= 1e-5,
            "{len} word pieces of {text:?}: cosine {cosine}, max |difference| {diff}"
        );
        short += usize::from(len <= SHORT_TOKENS);
        worst_cosine = worst_cosine.min(cosine);
        worst_diff = worst_diff.max(diff);
    }
    assert!(
        short >= SHORT_TOKENS - 2,
        "only {short} inputs took the short path"
    );
    eprintln!("worst cosine {worst_cosine}, worst max |difference| {worst_diff}");
}

#[test]
fn a_missing_or_corrupt_model_directory_is_an_error_naming_the_file() {
    let dir = std::env::temp_dir().join(format!("sb-embed-corrupt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let err = Model::load(&dir).err().unwrap();
    assert!(err.contains("config.json"), "{err}");
    let src = PathBuf::from(std::env::var_os("SWITCHBOARD_TEST_EMBEDDING_MODEL").unwrap());
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    std::fs::write(
        dir.join("model.safetensors"),
        b"\x10\x00\x00\x00\x00\x00\x00\x00{not json",
    )
    .unwrap();
    let err = Model::load(&dir).err().unwrap();
    assert!(err.contains("model.safetensors"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
