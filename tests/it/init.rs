//! `hfmigrate init` through the built binary: on each bundled sample the draft passes
//! `check`, its dry run validates what the shipped mapping validates, and its own tests
//! file passes; custom fields are matched by name from a definitions file; `--update`
//! adds values without touching edited lines; unsupported systems are refused.

use std::path::Path;

use crate::support::{Hfmigrate, Outcome};

const SCHEMA: &str = "samples/happyfox-schema.json";

fn run(args: &[&str]) -> Outcome {
    Hfmigrate::new(args).run()
}

fn init(from: &str, input: &str, out: &Path, extra: &[&str]) -> Outcome {
    let out = out.display().to_string();
    let mut args = vec![
        "init", "--from", from, "--input", input, "--schema", SCHEMA, "--out", &out,
    ];
    args.extend_from_slice(extra);
    run(&args)
}

/// What a dry run read and validated, and the source ids it rejected.
#[derive(Debug, PartialEq)]
struct DryRun {
    read: u64,
    valid: u64,
    rejected: Vec<String>,
}

fn dry_run(mapping: &str, input: &str, report: &Path) -> DryRun {
    let dir = report.display().to_string();
    let r = run(&[
        "dry-run",
        "--mapping",
        mapping,
        "--input",
        input,
        "--schema",
        SCHEMA,
        "--report",
        &dir,
    ]);
    assert!(
        r.code == 0 || r.code == 3,
        "{mapping}: {}{}",
        r.stdout,
        r.stderr
    );
    let line = r
        .stdout
        .lines()
        .find(|l| l.starts_with("records: "))
        .unwrap_or_else(|| panic!("{}", r.stdout));
    let nums: Vec<u64> = line
        .split([' ', ','])
        .filter_map(|w| w.parse().ok())
        .collect();
    let mut rejects = csv::Reader::from_path(report.join("rejects.csv")).unwrap();
    let mut rejected: Vec<String> = rejects
        .records()
        .map(|r| r.unwrap()[1].to_string())
        .collect();
    rejected.sort();
    DryRun {
        read: nums[0],
        valid: nums[1],
        rejected,
    }
}

fn todos(text: &str) -> usize {
    text.lines()
        .filter(|l| l.trim_start().starts_with("# TODO"))
        .count()
}

#[test]
fn each_sample_drafts_a_mapping_that_checks_and_validates_like_the_shipped_one() {
    let dir = tempfile::tempdir().unwrap();
    // (system, sample, shipped mapping, TODO lines of the draft, records the draft
    // validates beyond the shipped mapping's). Freshservice: the preset maps group
    // 21000000104 to "Internal IT", a private category the shipped mapping rejects; the
    // draft never maps to a private category, so that record gets a TODO and the default.
    for (from, sample, shipped, want_todos, extra_valid) in [
        ("zendesk", "samples/zendesk", "zendesk", 1, 0),
        ("freshdesk", "samples/freshdesk", "freshdesk", 3, 0),
        ("csv", "samples/generic-csv", "generic-csv", 4, 0),
        ("zoho-desk", "samples/zoho-desk", "zoho-desk", 3, 0),
        ("help-scout", "samples/help-scout", "help-scout", 1, 0),
        ("intercom", "samples/intercom", "intercom", 0, 0),
        (
            "jira",
            "samples/jira-service-management",
            "jira-service-management",
            2,
            0,
        ),
        ("freshservice", "samples/freshservice", "freshservice", 2, 1),
        ("servicenow", "samples/servicenow", "servicenow", 2, 0),
    ] {
        let out = dir.path().join(format!("{from}.yaml"));
        let r = init(from, sample, &out, &[]);
        assert_eq!(r.code, 0, "{from}: {}{}", r.stdout, r.stderr);
        let text = std::fs::read_to_string(&out).unwrap();
        assert_eq!(todos(&text), want_todos, "{from}:\n{text}");
        assert!(
            r.stdout.contains(&format!("{want_todos} TODO line")),
            "{}",
            r.stdout
        );
        assert!(
            text.contains(" tickets, "),
            "the counts are written:\n{text}"
        );
        // What each sample shows about the export's own custom fields and the account.
        let expected_lines: &[&str] = match from {
            "freshservice" => &[
                "      # TODO \"21000000104\" (1 ticket): no public category of the account matches (the preset's \"Internal IT\" is private: HappyFox creates no ticket in it through the API; map it to a public one); closest: Support, Billing, Sales",
            ],
            // Labels from fields.json; an option's `value` is read.
            "jira" => &[
                "    # TODO source field \"customfield_10050\" (2 tickets, e.g. \"Very satisfied\", \"Satisfied\"): no ticket field of the account is named like \"Satisfaction\", and every one is written above",
                "    # Satisfaction: \"{{ fields.customfield_10050.value }}\"",
            ],
            "zoho-desk" => &["    # order channel: \"{{ cf.cf_order_channel }}\""],
            "help-scout" => &[
                "    Invoice Number: \"{{ (customFields | selectattr('name', 'eq', 'Invoice number') | map(attribute='text') | first if customFields) if ((mailboxId) | string) in ['231477'] }}\"  # from \"Invoice number\" (1 ticket), same name",
            ],
            // Order Value applies to Billing and Sales only: read for those tickets alone.
            "servicenow" => &[
                "    # TODO \"Order Value\" applies only to Billing, Sales: read only for tickets routed there, a value on another ticket is left out; keep, or route those tickets there",
                "    Order Value: \"{{ (u_order_value) if ((assignment_group.value) | string) in ['d625dccec0a8016700a222a0f7900d06'] }}\"  # from \"u_order_value\" (2 tickets), same name",
            ],
            _ => &[],
        };
        for line in expected_lines {
            assert!(
                text.lines().any(|l| l == *line),
                "{from}: no line {line}\n{text}"
            );
        }
        let mapping = out.display().to_string();
        let c = run(&["check", "--mapping", &mapping, "--schema", SCHEMA]);
        assert_eq!(c.code, 0, "{from}: {}{}", c.stdout, c.stderr);
        let drafted = dry_run(&mapping, sample, &dir.path().join(format!("{from}-draft")));
        let shipped = format!("mappings/{shipped}.yaml");
        let expected = dry_run(
            &shipped,
            sample,
            &dir.path().join(format!("{from}-shipped")),
        );
        assert_eq!(drafted.read, expected.read, "{from}");
        assert_eq!(
            drafted.valid,
            expected.valid + extra_valid,
            "{from}: the draft validates what the shipped mapping validates"
        );
        assert!(
            drafted
                .rejected
                .iter()
                .all(|id| expected.rejected.contains(id)),
            "{from}: the draft rejects only what the shipped mapping rejects: {drafted:?} {expected:?}"
        );
        let t = run(&["test", "--mapping", &mapping, "--schema", SCHEMA]);
        assert_eq!(t.code, 0, "{from}: {}{}", t.stdout, t.stderr);
        assert!(t.stdout.contains("1 cases, 1 passed"), "{}", t.stdout);
    }
}

#[test]
fn the_zendesk_draft_says_what_it_matched_and_what_needs_a_decision() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("z.yaml");
    let r = init("zendesk", "samples/zendesk", &out, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("read 24 ticket records (all) from samples/zendesk/tickets.json; 1 more skipped by source.skip_if"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("  - ticket.custom_fields.Product: \"widget_max\" (1 ticket)"),
        "{}",
        r.stdout
    );
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("\"solved\": Resolved  # "), "{text}");
    assert!(
        text.contains("\"mod_mobile_app\": Mobile app  # "),
        "{text}"
    );
    assert!(
        text.contains("# TODO \"widget_max\" (1 ticket): no choice of \"Product\" of the account matches; closest: "),
        "{text}"
    );
    assert!(
        text.contains("# HappyFox fields no entry above writes"),
        "{text}"
    );
    // It exists now: a second run refuses to overwrite it.
    let again = init("zendesk", "samples/zendesk", &out, &[]);
    assert_eq!(again.code, 2, "{}", again.stderr);
    assert!(
        again.stderr.contains("exists; pass --update"),
        "{}",
        again.stderr
    );
}

#[test]
fn unsupported_helpdesks_are_refused_with_the_supported_list() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.yaml");
    let r = init("kayako", "samples/zendesk", &out, &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("unknown helpdesk"), "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "supported: zendesk, freshdesk, zoho-desk, freshservice, jira, servicenow, help-scout, intercom, csv"
        ),
        "{}",
        r.stderr
    );
    assert!(!out.exists());
}

#[test]
fn sample_reads_only_the_first_records() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("f.yaml");
    let r = init("freshdesk", "samples/freshdesk", &out, &["--sample", "5"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .starts_with("read 5 ticket records (of the first 5, --sample 5)"),
        "{}",
        r.stdout
    );
}

/// Without the samples' definitions file the name path is not exercised there, so this
/// export carries a Zendesk `ticket_fields.json` with account-specific ids.
#[test]
fn zendesk_custom_fields_are_matched_by_name_from_ticket_fields() {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("export");
    std::fs::create_dir(&export).unwrap();
    let ticket = |id: u64, region: &str| {
        serde_json::json!({
            "id": id, "status": "open", "group_id": if id < 3 { 555 } else { 556 }, "subject": "S", "description": "D",
            "via": {"source": {"from": {"address": "x@example.com", "name": "X"}}},
            "custom_fields": [{"id": 900002, "value": region}, {"id": 900009, "value": 5}, {"id": 900010, "value": "x"}],
        })
    };
    let tickets = serde_json::json!({"tickets": [ticket(1, "eu_west"), ticket(2, "eu_west"), ticket(3, "apj")]});
    std::fs::write(export.join("tickets.json"), tickets.to_string()).unwrap();
    let fields = serde_json::json!({"ticket_fields": [
        {"id": 900002, "title": "Region", "type": "tagger", "custom_field_options": [
            {"name": "EMEA", "value": "eu_west"}, {"name": "Asia Pacific", "value": "apj"}]},
        {"id": 900009, "title": "Internal Score", "type": "integer"},
    ]});
    std::fs::write(export.join("ticket_fields.json"), fields.to_string()).unwrap();
    let groups = serde_json::json!({"groups": [{"id": 555, "name": "Billing"}, {"id": 556, "name": "2nd level"}]});
    std::fs::write(export.join("groups.json"), groups.to_string()).unwrap();
    let out = dir.path().join("z.yaml");
    let r = init("zendesk", &export.display().to_string(), &out, &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let text = std::fs::read_to_string(&out).unwrap();
    // Groups by their names in groups.json.
    assert!(
        text.contains(
            "      \"555\": Billing  # 2 tickets, named \"Billing\" in the export, exact\n"
        ),
        "{text}"
    );
    assert!(text.contains("      # TODO \"556\" (named \"2nd level\" in the export) (1 ticket): no public category of the account matches"), "{text}");
    assert!(
        r.stdout.contains("2 group names read from groups.json"),
        "{}",
        r.stdout
    );
    // The preset's example field ids hold nothing here: commented out, with a TODO.
    assert!(
        text.contains("# TODO no record read has a value for \"Region\" here"),
        "{text}"
    );
    assert!(
        text.contains("    #   value: \"{{ custom_fields | field(360002) }}\""),
        "{text}"
    );
    // The export's own Region field, by its title; values by their option names.
    assert!(text.contains("    Region:  # from \"900002\" (3 tickets), exact\n      value: \"{{ custom_fields | field(900002) }}\"\n      map:\n        \"eu_west\": EMEA  # 2 tickets, named \"EMEA\" in the export, exact\n"), "{text}");
    assert!(
        text.contains(
            "        # TODO \"apj\" (named \"Asia Pacific\" in the export) (1 ticket): no choice of \"Region\" of the account matches"
        ),
        "{text}"
    );
    assert!(text.contains("# TODO source field \"900009\" (3 tickets, e.g. \"5\"): no ticket field of the account is named like \"Internal Score\""), "{text}");
    assert!(
        text.contains("# TODO source field \"900010\" (3 tickets, e.g. \"x\"): no definition"),
        "{text}"
    );
    assert!(
        r.stdout
            .contains("source field \"900009\" (Internal Score, 3 tickets): no HappyFox field"),
        "{}",
        r.stdout
    );
    let mapping = out.display().to_string();
    let c = run(&["check", "--mapping", &mapping, "--schema", SCHEMA]);
    assert_eq!(c.code, 0, "{}{}", c.stdout, c.stderr);
    let report = dir.path().join("report");
    let d = run(&[
        "dry-run",
        "--mapping",
        &mapping,
        "--input",
        &export.display().to_string(),
        "--schema",
        SCHEMA,
        "--report",
        &report.display().to_string(),
    ]);
    assert_eq!(
        d.code, 3,
        "apj is not a Region choice yet: {}{}",
        d.stdout, d.stderr
    );
    let payloads = std::fs::read_to_string(report.join("payloads.ndjson")).unwrap();
    assert!(
        payloads.contains("\"t-cf-7\":31"),
        "EMEA's choice id: {payloads}"
    );
}

#[test]
fn update_adds_new_values_and_keeps_edited_lines() {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("export");
    std::fs::create_dir(&export).unwrap();
    let header = "Ticket ID,Subject,Description,Requester Name,Requester Email,Status,Priority,Category,Assignee,Tags,Created At,Product,Region,Order Value,Purchase Date,Affected Modules\n";
    let row = |id: u32, status: &str| {
        format!("{id},S,D,N,n@example.com,{status},Low,Support,,,2024-03-05 14:22:10,,,,,\n")
    };
    std::fs::write(
        export.join("tickets.csv"),
        format!("{header}{}{}", row(1, "Open"), row(2, "Solved")),
    )
    .unwrap();
    let out = dir.path().join("m.yaml");
    let r = init("csv", &export.display().to_string(), &out, &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let text = std::fs::read_to_string(&out).unwrap();
    let edited = text.replace(
        "\"Solved\": Resolved  # 1 ticket, preset",
        "\"Solved\": Closed  # mine",
    );
    assert_ne!(edited, text);
    std::fs::write(&out, &edited).unwrap();
    std::fs::write(
        export.join("tickets.csv"),
        format!(
            "{header}{}{}{}",
            row(1, "Open"),
            row(2, "Solved"),
            row(3, "Blocked")
        ),
    )
    .unwrap();
    let u = run(&[
        "init",
        "--from",
        "csv",
        "--input",
        &export.display().to_string(),
        "--schema",
        SCHEMA,
        "--update",
        &out.display().to_string(),
    ]);
    assert_eq!(u.code, 0, "{}{}", u.stdout, u.stderr);
    assert!(
        u.stdout.contains("added 1 newly seen value line"),
        "{}",
        u.stdout
    );
    let updated = std::fs::read_to_string(&out).unwrap();
    let kept: Vec<&str> = updated.lines().filter(|l| !l.contains("Blocked")).collect();
    assert_eq!(
        kept,
        edited.lines().collect::<Vec<_>>(),
        "only the new line differs"
    );
    assert!(
        updated.contains("# TODO \"Blocked\" (1 ticket): no status of the account matches"),
        "{updated}"
    );
    let again = run(&[
        "init",
        "--from",
        "csv",
        "--input",
        &export.display().to_string(),
        "--schema",
        SCHEMA,
        "--update",
        &out.display().to_string(),
    ]);
    assert!(
        again.stdout.contains("no new values; unchanged"),
        "{}",
        again.stdout
    );
    let c = run(&[
        "check",
        "--mapping",
        &out.display().to_string(),
        "--schema",
        SCHEMA,
    ]);
    assert_eq!(c.code, 0, "{}{}", c.stdout, c.stderr);
}

/// Freshdesk keys custom fields by their API name; `ticket_fields.json` gives the label
/// the admin saw, and an unreadable ticket is counted with its place.
#[test]
fn freshdesk_custom_fields_are_matched_by_label_and_unreadable_records_located() {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("export");
    std::fs::create_dir(&export).unwrap();
    let tickets = serde_json::json!([
        {"id": 1, "status": 2, "priority": 1, "group_id": 77000000101u64, "subject": "S", "description": "<p>D</p>",
         "requester": {"name": "R", "email": "r@example.com"},
         "custom_fields": {"cf_kundenprodukt": "Gadget", "cf_intern": "x"}},
        "not a ticket",
    ]);
    std::fs::write(export.join("tickets.json"), tickets.to_string()).unwrap();
    let fields = serde_json::json!([
        {"id": 5, "name": "cf_kundenprodukt", "label": "Product", "type": "custom_dropdown", "choices": ["Gadget"]},
        {"id": 6, "name": "cf_intern", "label": "Interne Notiz", "type": "custom_text"},
    ]);
    std::fs::write(export.join("ticket_fields.json"), fields.to_string()).unwrap();
    let out = dir.path().join("f.yaml");
    let r = init("freshdesk", &export.display().to_string(), &out, &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.contains("    Product:  # from \"cf_kundenprodukt\" (1 ticket), exact\n      value: \"{{ custom_fields.cf_kundenprodukt }}\"\n      map:\n        \"Gadget\": Gadget  # 1 ticket, exact\n"),
        "{text}"
    );
    assert!(
        text.contains("# TODO source field \"cf_intern\" (1 ticket, e.g. \"x\"): no ticket field of the account is named like \"Interne Notiz\""),
        "{text}"
    );
    assert!(
        r.stdout
            .contains("2 field definitions read from ticket_fields.json"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("unreadable record, not counted: ") && r.stdout.contains("tickets.json"),
        "{}",
        r.stdout
    );
    let c = run(&[
        "check",
        "--mapping",
        &out.display().to_string(),
        "--schema",
        SCHEMA,
    ]);
    assert_eq!(c.code, 0, "{}{}", c.stdout, c.stderr);
}

/// A CSV whose headers differ from the preset's: each column the preset reads and the
/// export lacks gets a TODO listing the export's columns.
#[test]
fn csv_columns_the_export_lacks_are_todos() {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("export");
    std::fs::create_dir(&export).unwrap();
    std::fs::write(
        export.join("tickets.csv"),
        "Ticket ID,Title,Requester Email\n1,Hi,a@example.com\n",
    )
    .unwrap();
    let out = dir.path().join("m.yaml");
    let r = init("csv", &export.display().to_string(), &out, &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.contains("  # TODO the export has no column \"Subject\"; its columns: \"Ticket ID\", \"Title\", \"Requester Email\"\n  subject: "),
        "{text}"
    );
    assert!(!text.contains("no column \"Requester Email\""), "{text}");
    assert!(
        r.stdout
            .contains("ticket.subject: no column Subject in the export"),
        "{}",
        r.stdout
    );
    assert!(
        text.contains("#   \"Title\": 100% (1/1), e.g. \"Hi\""),
        "{text}"
    );
}

/// The whole draft for one sample, reviewed: what a lead sees on stdout and in the file.
#[test]
fn freshdesk_draft_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("freshdesk.yaml");
    let r = init("freshdesk", "samples/freshdesk", &out, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let tmp = dir.path().display().to_string();
    insta::assert_snapshot!("freshdesk_init_stdout", r.stdout.replace(&tmp, "[TMP]"));
    let text = std::fs::read_to_string(&out).unwrap();
    insta::assert_snapshot!("freshdesk_init_mapping", text);
}

/// An account without the preset's marker field and migration agent still gets a draft
/// that checks: a tag marker and an agent of the account, each with a TODO.
#[test]
fn the_presets_account_specific_names_are_replaced_when_the_account_lacks_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(crate::support::root().join(SCHEMA)).unwrap(),
    )
    .unwrap();
    schema["ticket_custom_fields"]
        .as_array_mut()
        .unwrap()
        .retain(|f| f["name"] != "Source ID");
    schema["staff"]
        .as_array_mut()
        .unwrap()
        .retain(|s| s["email"] != "migration-bot@acme.example");
    let schema_path = dir.path().join("schema.json");
    std::fs::write(&schema_path, schema.to_string()).unwrap();
    let schema_arg = schema_path.display().to_string();
    let out = dir.path().join("z.yaml");
    let mapping = out.display().to_string();
    let r = run(&[
        "init",
        "--from",
        "zendesk",
        "--input",
        "samples/zendesk",
        "--schema",
        &schema_arg,
        "--out",
        &mapping,
    ]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.contains("# TODO the account has no text field \"Source ID\""),
        "{text}"
    );
    assert!(text.contains("marker: { tag: \"ZD-{{ id }}\" }"), "{text}");
    assert!(
        text.contains("  fallback_agent: \"alice@acme.example\""),
        "{text}"
    );
    assert!(text.contains("    # Source ID: \"ZD-{{ id }}\""), "{text}");
    let c = run(&["check", "--mapping", &mapping, "--schema", &schema_arg]);
    assert_eq!(c.code, 0, "{}{}", c.stdout, c.stderr);
}

/// A side file kept outside the export folder is read with `--side`, as the dry run
/// reads it: the draft's tests case carries its entries, and the summary says to pass
/// the same argument on.
#[test]
fn side_files_outside_the_export_are_read_with_side() {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("export");
    std::fs::create_dir_all(&export).unwrap();
    for f in ["tickets.json", "ticket_audits.json"] {
        std::fs::copy(Path::new("samples/zendesk").join(f), export.join(f)).unwrap();
    }
    let users = dir.path().join("agents-and-customers.json");
    std::fs::copy("samples/zendesk/users.json", &users).unwrap();
    let side = format!("users={}", users.display());
    let out = dir.path().join("z.yaml");
    let r = init(
        "zendesk",
        export.to_str().unwrap(),
        &out,
        &["--side", &side],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains(&format!(
            "side files were read from outside the export: pass --side {side} to dry-run, import and verify too"
        )),
        "{}",
        r.stdout
    );
    let tests = std::fs::read_to_string(dir.path().join("z.tests.yaml")).unwrap();
    assert!(tests.contains("\n      users:\n"), "{tests}");
    let mapping = out.display().to_string();
    let t = run(&["test", "--mapping", &mapping, "--schema", SCHEMA]);
    assert_eq!(t.code, 0, "{}{}", t.stdout, t.stderr);
    // Without it the tests case has no users, and a misnamed side file is refused.
    let bare = dir.path().join("bare.yaml");
    let r = init("zendesk", export.to_str().unwrap(), &bare, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let tests = std::fs::read_to_string(dir.path().join("bare.tests.yaml")).unwrap();
    assert!(!tests.contains("\n      users:\n"), "{tests}");
    let wrong = format!("user={}", users.display());
    let other = dir.path().join("other.yaml");
    let r = init(
        "zendesk",
        export.to_str().unwrap(),
        &other,
        &["--side", &wrong],
    );
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("did you mean `users`?"), "{}", r.stderr);
    assert!(!other.exists());
}
