//! The plan is the run: for every bundled sample, the POSTs the dry run's report and the
//! import's plan announce (bulk and single creates, inline image uploads, every later
//! message and closing note) are exactly the POSTs the sandbox receives, so the duration
//! a lead confirms is the one they get.

use crate::import::{Run, text};
use crate::support::{Hfmigrate, root, start_sandbox};

/// `api.total_posts` of the dry run's report.json.
fn dry_run_posts(mapping: &str, input: &std::path::Path, report: &std::path::Path) -> u64 {
    let o = Hfmigrate::new(["dry-run", "--mapping", mapping, "--schema"])
        .command()
        .arg("samples/happyfox-schema.json")
        .arg("--input")
        .arg(input)
        .arg("--report")
        .arg(report)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report.join("report.json")).unwrap())
            .unwrap();
    json["api"]["total_posts"].as_u64().unwrap()
}

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
    for sample in [
        "zendesk",
        "freshdesk",
        "generic-csv",
        "zoho-desk",
        "freshservice",
        "jira-service-management",
        "servicenow",
        "help-scout",
        "intercom",
    ] {
        let sb = start_sandbox(crate::support::unlimited).await;
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("run.db");
        let mapping = format!("mappings/{sample}.yaml");
        let input = root().join("samples").join(sample);
        let run = Run::new(&sb.url, &journal, &mapping, &input);
        let o = run.output().await;
        // Each sample has invalid records on purpose.
        assert_eq!(o.status.code(), Some(3), "{sample}: {}", text(&o));
        let plan = planned(&String::from_utf8_lossy(&o.stdout))
            .unwrap_or_else(|| panic!("{sample}: no POST total in the plan\n{}", text(&o)));
        let stats = sb.stats();
        let sent = crate::support::post_count(&stats);
        assert_eq!(
            plan, sent,
            "{sample}: planned {plan}, sent {:?}",
            stats.requests
        );
        let dry = dry_run_posts(&mapping, &input, &dir.path().join("report"));
        assert_eq!(
            dry, sent,
            "{sample}: the dry run planned {dry}, sent {:?}",
            stats.requests
        );
    }
}
