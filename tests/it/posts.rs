//! The plan is the run: for every bundled sample, the POSTs the import's plan announces
//! (bulk and single creates, inline image uploads, every later message) are exactly the
//! POSTs the sandbox receives, so the duration a lead confirms is the one they get.

use std::collections::BTreeMap;

use crate::import::{Run, text};
use crate::support::{KEY, root, start_sandbox};

/// "POSTs: N in all, …" from the plan the import prints.
fn planned(stdout: &str) -> Option<u64> {
    stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("POSTs: "))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sample_sends_exactly_the_posts_its_plan_announced() {
    for sample in ["zendesk", "freshdesk", "generic-csv"] {
        let sb = start_sandbox(crate::support::unlimited).await;
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("run.db");
        let mapping = format!("mappings/{sample}.yaml");
        let input = root().join("samples").join(sample);
        let run = Run {
            url: &sb.url,
            journal: &journal,
            mapping: &mapping,
            input: &input,
            extra: vec![],
            key: KEY,
        };
        let o = run.output().await;
        // Each sample has invalid records on purpose.
        assert_eq!(o.status.code(), Some(3), "{sample}: {}", text(&o));
        let plan = planned(&String::from_utf8_lossy(&o.stdout))
            .unwrap_or_else(|| panic!("{sample}: no POST total in the plan\n{}", text(&o)));
        let stats = sb.stats();
        let posts: BTreeMap<&str, u64> = stats
            .requests
            .iter()
            .filter(|(endpoint, _)| endpoint.starts_with("POST "))
            .map(|(endpoint, by_status)| (endpoint.as_str(), by_status.values().sum()))
            .collect();
        let sent: u64 = posts.values().sum();
        assert_eq!(plan, sent, "{sample}: planned {plan}, sent {posts:?}");
    }
}
