//! `report.html`: the dry run as the page a migration lead forwards to whoever signs the
//! migration off, who has neither the terminal nor the JSON. It is rendered by minijinja
//! with HTML escaping on for every value, as `verify.html` is: subjects, category and agent
//! names, messages and paths are the export's or the account's text, and any of them may
//! hold markup. The figures are worked out here, in Rust, so the template only lays out
//! (and a forwarded page reads alike in every mail client: inline CSS, no scripts, nothing
//! fetched).

use minijinja::{AutoEscape, Environment, context};
use serde::Serialize;

use super::{Breakdown, Example, ProblemGroup, Summary, human_duration};
use crate::happyfox::POST_PER_MIN;
use crate::problem::Severity;

const TEMPLATE: &str = include_str!("report.html");

/// The files the dry run writes beside the page, linked relatively so the folder can be
/// zipped and sent as it is.
pub(crate) const REJECTS: &str = "rejects.csv";
pub(crate) const PAYLOADS: &str = "payloads.ndjson";

/// Which of the files beside the page were written: a link to a file that is not there
/// is worse than none.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Beside {
    pub(crate) rejects: bool,
    pub(crate) payloads: bool,
}

/// The page for `s`.
pub(crate) fn render(s: &Summary, beside: Beside) -> Result<String, minijinja::Error> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.add_template("report.html", TEMPLATE)?;
    env.get_template("report.html")?.render(context! {
        s => s,
        page => Page::of(s, beside),
    })
}

/// What the template shows that is not a field of the summary as it is.
#[derive(Debug, Serialize)]
struct Page<'a> {
    /// What the page is about: the account, else the mapping.
    heading: String,
    generated: String,
    all_valid: bool,
    /// Valid, rejected, skipped and valid with warnings, each of the records read.
    records: Vec<Share>,
    /// The rejected records' share of those read, for the verdict.
    rejected_percent: String,
    timeline: Vec<Phase>,
    total_time: String,
    /// The POST ceiling as a share of HappyFox's limit for the whole account.
    ceiling_percent: u64,
    happyfox_post_per_min: u32,
    attachment_size: String,
    breakdowns: Vec<BreakdownTable>,
    problems: Vec<ProblemView<'a>>,
    rejects: Option<&'static str>,
    payloads: Option<&'static str>,
    version: &'static str,
    took: String,
}

/// A count with its share of a whole.
#[derive(Debug, Serialize)]
struct Share {
    /// Stable, for whoever reads the page by machine (the browser test does).
    id: &'static str,
    label: &'static str,
    count: u64,
    percent: String,
    /// The bar's length, 0 to 100.
    width: f64,
}

impl Share {
    fn of(id: &'static str, label: &'static str, count: u64, whole: u64) -> Share {
        Share {
            id,
            label,
            count,
            percent: percent(count, whole),
            width: width(count, whole),
        }
    }
}

/// One step of the import, placed on the run's time line.
#[derive(Debug, Serialize)]
struct Phase {
    name: &'static str,
    detail: String,
    requests: u64,
    starts: String,
    takes: String,
    /// Where its bar starts and how long it is, in percent of the whole run.
    offset: f64,
    width: f64,
}

#[derive(Debug, Serialize)]
struct BreakdownTable {
    field: &'static str,
    rows: Vec<BreakdownRow>,
    /// Tickets whose value is not listed.
    other: Option<BreakdownRow>,
}

#[derive(Debug, Serialize)]
struct BreakdownRow {
    value: String,
    count: u64,
    percent: String,
    width: f64,
}

/// A problem group in words: what it means for the records before what it is called.
#[derive(Debug, Serialize)]
struct ProblemView<'a> {
    severity: &'static str,
    outcome: &'static str,
    title: &'a str,
    count: u64,
    examples: &'a [Example],
    /// Problems of the group beyond the examples kept.
    more: u64,
}

impl Page<'_> {
    fn of(s: &Summary, beside: Beside) -> Page<'_> {
        let c = &s.counts;
        let a = &s.api;
        Page {
            heading: match &s.account {
                Some(account) => format!("Dry run for {account}"),
                None => format!("Dry run of {}", mapping_name(&s.mapping)),
            },
            generated: s
                .generated_at
                .parse::<jiff::Timestamp>()
                .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
                .unwrap_or_else(|_| s.generated_at.clone()),
            all_valid: s.all_valid(),
            records: vec![
                Share::of("valid", "valid", c.valid, c.read),
                Share::of("rejected", "rejected", c.rejected, c.read),
                Share::of("skipped", "skipped by the mapping", c.skipped, c.read),
                Share::of(
                    "with-warnings",
                    "valid with warnings",
                    c.with_warnings,
                    c.read,
                ),
            ],
            rejected_percent: percent(c.rejected, c.read),
            timeline: timeline(s),
            total_time: human_duration(a.estimated_seconds),
            ceiling_percent: u64::from(a.post_ceiling_per_min) * 100 / u64::from(POST_PER_MIN),
            happyfox_post_per_min: POST_PER_MIN,
            attachment_size: size(a.attachment_bytes),
            breakdowns: [
                ("Category", &s.breakdowns.category),
                ("Final status", &s.breakdowns.status),
                ("Priority", &s.breakdowns.priority),
                ("Assignee", &s.breakdowns.assignee),
            ]
            .into_iter()
            .map(|(field, b)| breakdown_table(field, b, c.valid))
            .collect(),
            problems: s.problems.iter().map(problem_view).collect(),
            rejects: beside.rejects.then_some(REJECTS),
            payloads: beside.payloads.then_some(PAYLOADS),
            version: env!("CARGO_PKG_VERSION"),
            took: format!("{:.1} s", s.seconds),
        }
    }
}

/// `mappings/zendesk.yaml` → `zendesk`.
fn mapping_name(path: &str) -> String {
    std::path::Path::new(path)
        .file_stem()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.to_string())
}

/// The POSTs of the plan in the order the import makes them, each with its share of the
/// estimated time: tickets are created first, then each ticket's later entries are posted
/// oldest first, its closing note (when the final state needs one) last.
fn timeline(s: &Summary) -> Vec<Phase> {
    let a = &s.api;
    let cv = &s.conversation;
    let files = if a.attachments == 0 {
        "no files".to_string()
    } else {
        format!(
            "{} files, {} as the export states sizes, sent with their ticket or entry; {} extra posts where one message's files exceed 25 MB{}",
            a.attachments,
            size(a.attachment_bytes),
            a.attachment_extra_posts,
            if a.oversize_attachments > 0 {
                format!(
                    "; {} over 25 MB are not sent (listed under problems)",
                    a.oversize_attachments
                )
            } else {
                String::new()
            }
        )
    };
    let steps: [(&'static str, String, u64); 4] = [
        (
            "Tickets",
            format!(
                "{} bulk creates of up to 100 tickets, {} single creates (tickets whose first message has files)",
                a.bulk_creates, a.single_creates
            ),
            a.bulk_creates + a.single_creates,
        ),
        (
            "Conversations",
            format!(
                "{} staff replies, {} private notes, {} contact replies on {} tickets",
                cv.staff_replies, cv.private_notes, cv.contact_replies, cv.tickets_with_entries
            ),
            a.conversation_posts,
        ),
        (
            "Closing notes",
            "tickets whose final status or fields no entry can carry".to_string(),
            a.final_state_posts,
        ),
        (
            "Attachments",
            if a.inline_images > 0 {
                format!(
                    "{files}; {} inline images uploaded before the body that shows them",
                    a.inline_images
                )
            } else {
                files
            },
            a.attachment_extra_posts + a.inline_images,
        ),
    ];
    let per_min = u64::from(a.post_ceiling_per_min.max(1));
    // Each step ends where the POSTs so far end, so that the steps add up to the estimate
    // (rounding each step alone made 1 s + 13 s start the next one at 13 s).
    let at = |posts: u64| (posts * 60).div_ceil(per_min);
    let total = a.total_posts.max(1);
    let mut before = 0;
    steps
        .into_iter()
        .map(|(name, detail, requests)| {
            let (start, end) = (at(before), at(before + requests));
            let phase = Phase {
                name,
                detail,
                requests,
                starts: human_duration(start),
                takes: human_duration(end - start),
                offset: width(before, total),
                width: width(requests, total),
            };
            before += requests;
            phase
        })
        .collect()
}

fn breakdown_table(field: &'static str, b: &Breakdown, valid: u64) -> BreakdownTable {
    let row = |value: String, count: u64| BreakdownRow {
        value,
        count,
        percent: percent(count, valid),
        width: width(count, valid),
    };
    BreakdownTable {
        field,
        rows: b
            .values
            .iter()
            .map(|v| row(v.value.clone(), v.count))
            .collect(),
        other: (b.other > 0).then(|| row("other values".to_string(), b.other)),
    }
}

fn problem_view(g: &ProblemGroup) -> ProblemView<'_> {
    let (severity, outcome) = match g.severity {
        Severity::Error => ("error", "not migrated until fixed"),
        Severity::Warning => ("warning", "migrated, with a change to check"),
    };
    ProblemView {
        severity,
        outcome,
        title: &g.title,
        count: g.count,
        examples: &g.examples,
        more: g.count.saturating_sub(g.examples.len() as u64),
    }
}

/// `part` of `whole` for people: `70%`, `33.3%`, `<0.1%` for a few in a million (never a
/// `0%` that hides them), `–` of nothing.
fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "–".into();
    }
    if part == 0 {
        return "0%".into();
    }
    let p = part as f64 * 100.0 / whole as f64;
    if p < 0.1 {
        return "<0.1%".into();
    }
    if part < whole && p > 99.9 {
        return ">99.9%".into();
    }
    let text = format!("{p:.1}");
    format!("{}%", text.strip_suffix(".0").unwrap_or(&text))
}

/// Bytes for people, in the unit that keeps them readable (`0.0 MB` hid a few small files).
fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A bar's length in percent, to one decimal (a longer number changes nothing on screen).
fn width(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    (part as f64 * 1000.0 / whole as f64).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{
        ApiPlan, BreakdownValue, Breakdowns, ConversationCounts, Counts, Coverage,
    };

    fn summary() -> Summary {
        Summary {
            mapping: "mappings/generic-csv.yaml".into(),
            inputs: vec!["samples/generic-csv/tickets.csv".into()],
            schema: "samples/happyfox-schema.json".into(),
            account: None,
            generated_at: "2026-12-03T14:11:24Z".into(),
            counts: Counts {
                read: 30,
                valid: 21,
                rejected: 9,
                skipped: 0,
                with_warnings: 2,
            },
            problems: vec![],
            conversation: ConversationCounts::default(),
            api: ApiPlan {
                bulk_creates: 1,
                conversation_posts: 50,
                final_state_posts: 13,
                total_posts: 64,
                post_ceiling_per_min: 240,
                estimated_seconds: 16,
                ..ApiPlan::default()
            },
            side_files: vec![],
            coverage: Coverage::default(),
            breakdowns: Breakdowns::default(),
            window: None,
            seconds: 0.1,
        }
    }

    #[test]
    fn export_text_is_escaped_wherever_it_appears() {
        let mut s = summary();
        let evil = "<script>alert(1)</script>";
        s.account = Some(format!("acme {evil}"));
        s.mapping = format!("mappings/{evil}.yaml");
        s.breakdowns.category.values = vec![BreakdownValue {
            value: evil.into(),
            count: 21,
        }];
        s.problems = vec![ProblemGroup {
            kind: crate::problem::ProblemKind::EmptySubject,
            severity: Severity::Error,
            title: "empty subject".into(),
            count: 1,
            examples: vec![Example {
                location: format!("tickets.csv:3 {evil}"),
                source_id: Some(evil.into()),
                field: format!("ticket.subject{evil}"),
                message: format!("subject {evil}"),
            }],
        }];
        s.coverage.fields = vec![crate::report::CoverageField {
            path: evil.into(),
            records: 1,
            mapped: false,
            hidden_by_side_file: Some(evil.into()),
        }];
        let html = render(&s, Beside::default()).unwrap();
        assert!(!html.contains("<script"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
            "{html}"
        );
    }

    #[test]
    fn the_page_fetches_nothing_and_runs_nothing() {
        let html = render(
            &summary(),
            Beside {
                rejects: true,
                payloads: true,
            },
        )
        .unwrap();
        for forbidden in [
            "<script", "<link", "src=", "url(", "@import", "http://", "https://",
        ] {
            assert!(!html.contains(forbidden), "{forbidden} in {html}");
        }
        assert!(html.contains("href=\"rejects.csv\""), "{html}");
    }

    #[test]
    fn counts_carry_their_share_of_the_records_read() {
        let html = render(&summary(), Beside::default()).unwrap();
        assert!(html.contains("70%"), "21 of 30 valid: {html}");
        assert!(html.contains("30%"), "9 of 30 rejected: {html}");
        assert!(html.contains("6.7%"), "2 of 30 with warnings: {html}");
        assert!(html.contains("Dry run of generic-csv"), "{html}");
        assert!(html.contains("2026-12-03 14:11 UTC"), "{html}");
        assert!(
            !html.contains("href=\"rejects.csv\""),
            "not written, not linked"
        );
    }

    #[test]
    fn values_beyond_those_listed_show_as_other() {
        let mut s = summary();
        s.breakdowns.assignee = Breakdown {
            values: vec![BreakdownValue {
                value: "Alice Martin".into(),
                count: 20,
            }],
            other: 1,
        };
        let html = render(&s, Beside::default()).unwrap();
        assert!(html.contains("<em>other values</em>"), "{html}");
        assert!(html.contains("4.8%"), "1 of 21: {html}");
    }

    #[test]
    fn an_error_outside_the_records_is_not_called_a_rejected_record() {
        let mut s = summary();
        s.counts.valid = 30;
        s.counts.rejected = 0;
        s.problems = vec![ProblemGroup {
            kind: crate::problem::ProblemKind::UnjoinedSideEntry,
            severity: Severity::Error,
            title: "side file key joined to no ticket".into(),
            count: 1,
            examples: vec![],
        }];
        let html = render(&s, Beside::default()).unwrap();
        assert!(
            html.contains("but some of the export would not be"),
            "{html}"
        );
        assert!(!html.contains("would not be migrated"), "{html}");
    }

    #[test]
    fn the_timeline_adds_up_to_the_plan() {
        let phases = timeline(&summary());
        let names: Vec<&str> = phases.iter().map(|p| p.name).collect();
        assert_eq!(
            names,
            ["Tickets", "Conversations", "Closing notes", "Attachments"]
        );
        assert_eq!(phases.iter().map(|p| p.requests).sum::<u64>(), 64);
        // 1 create at 240/min, then 50 posts: the conversations start at 1 s and end at
        // 13 s (51 POSTs), the closing notes at 16 s, the estimate.
        assert_eq!(phases[1].starts, "1s");
        assert_eq!(phases[1].takes, "12s");
        assert_eq!(phases[2].starts, "13s");
        assert_eq!(phases[2].takes, "3s");
        assert_eq!(phases[2].offset, width(51, 64));
    }

    #[test]
    fn percentages() {
        assert_eq!(percent(21, 30), "70%");
        assert_eq!(percent(1, 3), "33.3%");
        assert_eq!(percent(1, 1_000_000), "<0.1%");
        assert_eq!(percent(999_999, 1_000_000), ">99.9%");
        assert_eq!(percent(5, 5), "100%");
        assert_eq!(percent(0, 5), "0%");
        assert_eq!(percent(0, 0), "–");
    }

    #[test]
    fn sizes() {
        assert_eq!(size(300), "300 B");
        assert_eq!(size(2_048), "2.0 KB");
        assert_eq!(size(25 * 1024 * 1024), "25.0 MB");
        assert_eq!(size(3 * 1024 * 1024 * 1024), "3.0 GB");
    }
}
