//! The store contract's activity-log part (a submodule of `contract.rs`): a batch written
//! in one call, read newest first per tenant with every filter, paged by id, trimmed by time,
//! time windows turned into id ranges without losing late rows, and tool calls counted per
//! hour for the search's usage prior.

use super::*;

fn activity_row(tenant: &str, at: i64, server: &str, tool: &str, ok: bool) -> ActivityRow {
    ActivityRow {
        at,
        tenant: tenant.into(),
        principal: Some(if ok { "alice" } else { "bob" }.into()),
        endpoint: "all".into(),
        session: Some("s1".into()),
        server: Some(server.into()),
        method: "tools/call".into(),
        target: Some(tool.into()),
        status: if ok { "ok" } else { "error" }.into(),
        error_type: (!ok).then(|| "tool_error".into()),
        error: (!ok).then(|| "it broke".into()),
        duration_us: at,
        bytes_in: 10,
        bytes_out: 20,
        trace_id: Some("0af7651916cd43dd8448eb211c80319c".into()),
        protocol: Some("2025-11-25".into()),
        request: None,
        response: Some("{\"x\":1}".into()),
        ..ActivityRow::default()
    }
}

/// The activity log: a batch written in one call (more rows than one statement holds), read
/// newest first per tenant with every filter, paged by id, and trimmed by time.
pub(super) async fn activity(store: &Arc<dyn Store>) {
    let rev = store.revision().await.unwrap();
    let rows: Vec<ActivityRow> = (0..1200)
        .map(|i| {
            activity_row(
                "act-a",
                1000 + i,
                if i % 2 == 0 { "s0" } else { "s1" },
                if i % 3 == 0 { "t0" } else { "t1" },
                i % 5 != 0,
            )
        })
        .collect();
    store.insert_activity(rows.clone().into()).await.unwrap();
    store
        .insert_activity([activity_row("act-b", 5000, "s0", "t0", true)].into())
        .await
        .unwrap();
    assert_eq!(
        store.revision().await.unwrap(),
        rev,
        "activity is not desired state"
    );
    let q = |f: &dyn Fn(&mut ActivityQuery)| {
        let mut q = ActivityQuery {
            tenant: "act-a".into(),
            limit: 1000,
            ..Default::default()
        };
        f(&mut q);
        q
    };
    let all = store.list_activity(&q(&|_| {})).await.unwrap();
    assert_eq!(all.len(), 1000, "the limit caps a page");
    assert_eq!(all[0].at, 2199, "newest first");
    assert_eq!(all[0].tenant, "act-a");
    let mut expected = rows[1199].clone();
    expected.id = all[0].id;
    assert_eq!(all[0], expected, "every column round-trips");
    let rest = store
        .list_activity(&q(&|q| q.before = Some(all[999].id)))
        .await
        .unwrap();
    assert_eq!(rest.len(), 200, "the next page holds the rest");
    assert!(rest[0].id < all[999].id);
    let count = |f: &'static dyn Fn(&mut ActivityQuery)| {
        let store = store.clone();
        async move {
            let mut n = 0;
            let mut before = None;
            loop {
                let mut query = q(&|q| f(q));
                query.before = before;
                let page = store.list_activity(&query).await.unwrap();
                n += page.len();
                match page.last() {
                    Some(r) if page.len() == 1000 => before = Some(r.id),
                    _ => return n,
                }
            }
        }
    };
    assert_eq!(count(&|q| q.server = Some("s0".into())).await, 600);
    assert_eq!(count(&|q| q.target = Some("t0".into())).await, 400);
    assert_eq!(count(&|q| q.status = Some("error".into())).await, 240);
    assert_eq!(count(&|q| q.principal = Some("bob".into())).await, 240);
    assert_eq!(
        count(&|q| {
            q.since = Some(2000);
            q.until = Some(2100);
        })
        .await,
        100
    );
    let samples = store
        .activity_samples("act-a", None, 2190, 100)
        .await
        .unwrap();
    assert_eq!(samples.len(), 10);
    assert_eq!(samples.iter().filter(|s| s.error).count(), 2);
    let mine = store
        .activity_samples("act-a", Some("bob"), 0, 10_000)
        .await
        .unwrap();
    assert_eq!(mine.len(), 240);
    // A straggler: a long call that started before rows written ahead of it finished.
    store
        .insert_activity([activity_row("act-a", 2150, "s0", "t0", true)].into())
        .await
        .unwrap();
    let window = store
        .activity_samples("act-a", None, 2150, 10_000)
        .await
        .unwrap();
    assert_eq!(
        window.len(),
        51,
        "the 50 rows of 2150..=2199 and the straggler"
    );
    assert!(window.iter().all(|s| s.at >= 2150));
    assert!(
        store
            .activity_samples("act-a", None, 9_999_999, 10)
            .await
            .unwrap()
            .is_empty(),
        "nothing started after the newest row"
    );
    let other = store
        .list_activity(&ActivityQuery {
            tenant: "act-b".into(),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(other.len(), 1, "tenants see only their own rows");
    assert_eq!(store.delete_activity_before(1100).await.unwrap(), 100);
    assert_eq!(count(&|_| {}).await, 1101);
    assert_eq!(
        store.delete_activity_before(2160).await.unwrap(),
        1060,
        "rows of 1100..2160; the straggler of 2150, written after newer rows, waits for a \
         later sweep"
    );
    assert_eq!(count(&|_| {}).await, 41);
    store.delete_activity_before(i64::MAX).await.unwrap();

    // Time windows over more than the allowed disorder (rows a minute apart for two hours,
    // one of them 9 minutes late): listed through id bounds, nothing in the window is missed
    // and nothing outside it is listed.
    const MIN: i64 = 60_000;
    let mut hours: Vec<ActivityRow> = (0..120)
        .map(|i| {
            activity_row(
                "act-w",
                i * MIN,
                "s0",
                if i % 10 == 0 { "rare" } else { "t" },
                true,
            )
        })
        .collect();
    hours.insert(70, activity_row("act-w", 61 * MIN, "s0", "rare", false));
    store.insert_activity(hours.into()).await.unwrap();
    let window = |since: Option<i64>, until: Option<i64>, target: Option<&str>| {
        let store = store.clone();
        let target = target.map(str::to_string);
        async move {
            let rows = store
                .list_activity(&ActivityQuery {
                    tenant: "act-w".into(),
                    since,
                    until,
                    target,
                    limit: 1000,
                    ..Default::default()
                })
                .await
                .unwrap();
            let mut at: Vec<i64> = rows.iter().map(|r| r.at / MIN).collect();
            at.sort_unstable();
            at
        }
    };
    assert_eq!(
        window(Some(60 * MIN), Some(63 * MIN), None).await,
        vec![60, 61, 61, 62],
        "the late row of minute 61 is in its window"
    );
    assert_eq!(
        window(Some(30 * MIN), None, Some("rare")).await,
        vec![30, 40, 50, 60, 61, 70, 80, 90, 100, 110]
    );
    assert_eq!(window(None, Some(3 * MIN), None).await, vec![0, 1, 2]);
    assert_eq!(window(Some(119 * MIN), None, None).await, vec![119]);
    assert!(window(Some(120 * MIN), None, None).await.is_empty());
    assert!(
        window(Some(200 * MIN), Some(300 * MIN), None)
            .await
            .is_empty()
    );
    store.delete_activity_before(i64::MAX).await.unwrap();

    // Successful routed tool calls per tool and hour (the search's usage history): not
    // another tenant's, failed ones, prompts, refused ones (no server) or those on a
    // server's own endpoint; `until` excluded; the largest counts first, at most `limit`.
    const HOUR: i64 = 3_600_000;
    let ok = |at: i64, tool: &str| activity_row("act-h", at, "s0", tool, true);
    let mut rows = vec![ok(99 * HOUR, "t")];
    for i in 0..3 {
        rows.push(ok(100 * HOUR + i, "t"));
    }
    for i in 0..2 {
        rows.push(ok(101 * HOUR + i, "t"));
    }
    rows.push(ok(101 * HOUR + 5, "u"));
    rows.push(activity_row("act-h", 101 * HOUR, "s0", "t", false));
    rows.push(activity_row("act-other", 101 * HOUR, "s0", "t", true));
    rows.push(ActivityRow {
        method: "prompts/get".into(),
        ..ok(101 * HOUR, "t")
    });
    rows.push(ActivityRow {
        server: None,
        ..ok(101 * HOUR, "t")
    });
    rows.push(ActivityRow {
        endpoint: "server:s0".into(),
        ..ok(101 * HOUR, "t")
    });
    rows.push(ok(102 * HOUR, "t"));
    store.insert_activity(rows.into()).await.unwrap();
    let hours = |limit: i64| {
        let store = store.clone();
        async move {
            store
                .tool_call_hours("act-h", 100 * HOUR, 102 * HOUR, limit)
                .await
                .unwrap()
                .into_iter()
                .map(|h| (h.target, h.hour, h.calls))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        hours(10).await,
        vec![
            ("t".into(), 100, 3),
            ("t".into(), 101, 2),
            ("u".into(), 101, 1)
        ]
    );
    assert_eq!(hours(1).await, vec![("t".into(), 100, 3)]);
    assert!(
        store
            .tool_call_hours("act-h", 103 * HOUR, 104 * HOUR, 10)
            .await
            .unwrap()
            .is_empty()
    );
    store.delete_activity_before(i64::MAX).await.unwrap();
}
