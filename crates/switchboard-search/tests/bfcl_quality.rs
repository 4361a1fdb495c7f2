//! Retrieval quality on the BFCL v4 benchmark (`switchboard_search::bfcl`): the hub's
//! lexical ranking must keep its measured lead over plain BM25. The data comes from
//! `scripts/test-deps.sh` (`SWITCHBOARD_TEST_BFCL`); the test fails, not skips, without it.

use std::path::PathBuf;

use switchboard_search::bfcl::{Split, evaluate, load};
use switchboard_search::{Analyzer, Field, Index, Params, ToolText};

fn data_dir() -> PathBuf {
    let dir = std::env::var_os("SWITCHBOARD_TEST_BFCL").expect(
        "SWITCHBOARD_TEST_BFCL is not set: run `bash scripts/test-deps.sh` and source .test-deps/env.sh",
    );
    PathBuf::from(dir)
}

#[test]
fn lexical_ranking_finds_the_right_tool_in_the_top_five_for_85_percent_of_held_out_questions() {
    let (tools, queries) = load(&data_dir()).unwrap();
    assert!(
        tools.len() > 1000 && queries.len() > 1500,
        "{} tools, {} queries",
        tools.len(),
        queries.len()
    );
    let texts: Vec<ToolText> = tools
        .iter()
        .map(|(name, t)| ToolText::from_tool("", name, t))
        .collect();
    let analyzer = Analyzer::new();
    let index = Index::build(&texts, &analyzer, Params::TUNED);
    let ours = evaluate(&index, &analyzer, &queries, Split::HeldOut);
    assert!(
        ours.recall[1] >= 0.85,
        "lexical R@5 on held-out questions: {:?}",
        ours
    );

    let baseline_texts: Vec<ToolText> = texts
        .iter()
        .map(|t| {
            let mut b = ToolText::default();
            b.fields[Field::Description as usize] = format!(
                "{} {}",
                t.fields[Field::Name as usize],
                t.fields[Field::Description as usize]
            );
            b
        })
        .collect();
    let plain = Analyzer::plain();
    let baseline = Index::build(&baseline_texts, &plain, Params::BASELINE);
    let theirs = evaluate(&baseline, &plain, &queries, Split::HeldOut);
    assert!(
        ours.recall[1] > theirs.recall[1] + 0.05 && ours.mrr > theirs.mrr + 0.05,
        "ours {ours:?} vs naive BM25 {theirs:?}"
    );
}
