#!/usr/bin/env python3
"""The layering of src/, checked: which top-level modules each module may use.

Data flows one way: source -> mapping -> payload -> (pipeline, dry run, report) in the
front half, then batch -> client -> journal in the importer. The front half must be
able to validate an export without the HTTP client, the journal or the importer; the
sandbox must behave like HappyFox without knowing how the importer works. Each rule
below says that in one line; a `crate::` path (or `use crate::{a, b}` group) that breaks
one is printed with its file and line, and the script exits 1.

Usage: python3 .ci/walls.py [SRC_DIR]
       python3 .ci/walls.py --self-test   (the check itself fails on planted violations)
"""
import re
import sys
from pathlib import Path

# Pure helpers any layer may use.
SHARED = {"happyfox", "duration", "email", "exit", "html_text", "problem", "schema", "spreadsheet", "test_fixtures"}
FRONT = {"source", "mapping", "payload", "attachments", "pipeline", "dryrun", "report", "init", "mapping_tests"}
BACK = {"client", "journal", "import", "sandbox", "cli"}

# module -> (modules it must not use, the rule in one line)
RULES = {
    **{m: (BACK, "the front half (source, mapping, payload, attachments, pipeline, dry run, report) never uses the client, journal, importer, sandbox or CLI")
       for m in FRONT},
    "sandbox": (FRONT | BACK - {"sandbox"}, "the sandbox uses only the schema and shared helpers, nothing of the importer"),
    "schema": (FRONT | BACK, "the schema is a leaf: every layer reads it, it reads none"),
    "client": (FRONT | BACK - {"client"}, "the client speaks HTTP with the schema's types only, and knows nothing of journal or import"),
    "journal": (FRONT - {"payload"} | BACK - {"journal"}, "the journal stores what it is given and never uses the client, importer or sandbox"),
    "import": ({"cli", "sandbox", "dryrun", "report"}, "the importer is driven by the CLI and never reaches up to it, the sandbox or the dry run's output"),
}
for m in SHARED - {"schema"}:
    RULES[m] = (FRONT | BACK - {m}, f"{m} is a shared helper and depends on no stage")

PATH = re.compile(r"\bcrate::(\{[^}]*\}|[a-z_]+)")


def used_modules(text):
    """(line, module) for every top-level module a file names through crate::."""
    for m in PATH.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        target = m.group(1)
        if target.startswith("{"):
            for part in target[1:-1].split(","):
                name = part.strip().split("::")[0].strip()
                if name and name not in ("self", "super"):
                    yield line, name
        else:
            yield line, target


def strip_comments(text):
    # Doc and line comments mention modules freely; only code counts.
    return re.sub(r"//[^\n]*", lambda m: " " * len(m.group(0)), text)


def self_test():
    """Plants one violation per kind of use the check must see and one allowed use."""
    import tempfile

    cases = {
        "payload/mod.rs": ("use crate::client::Client;\n", 1),
        "sandbox/mod.rs": ("use crate::{schema, import::BATCH_SIZE};\n", 1),
        "journal/mod.rs": ("fn f() { crate::client::describe(); }\n", 1),
        "report.rs": ("use crate::payload::TicketPayload; // crate::client in a comment\n", 0),
        "sandbox/validate.rs": ("fn f() -> bool { crate::email::is_valid(\"a@b.co\") }\n", 0),
        "email.rs": ("use crate::payload::TicketPayload;\n", 1),
    }
    failed = False
    for rel, (text, want) in cases.items():
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            got = check(Path(d), quiet=True)
        if got != want:
            print(f"walls self-test: {rel} {text.strip()!r}: {got} violation(s), expected {want}")
            failed = True
    print("walls self-test: " + ("FAILED" if failed else "every planted violation is caught"))
    return 1 if failed else 0


def check(src, quiet=False):
    """The number of uses across walls under `src`, each printed unless `quiet`."""
    broken = 0
    for path in sorted(src.rglob("*.rs")):
        rel = path.relative_to(src)
        owner = rel.parts[0].removesuffix(".rs")
        if owner not in RULES:
            continue
        forbidden, rule = RULES[owner]
        text = strip_comments(path.read_text())
        for line, used in used_modules(text):
            if used in forbidden:
                if not quiet:
                    print(f"{path}:{line}: {owner} uses crate::{used}: {rule}")
                broken += 1
    return broken


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    src = Path(sys.argv[1] if len(sys.argv) > 1 else "src")
    broken = check(src)
    if broken:
        print(f"walls: {broken} use(s) across layers")
        return 1
    print("walls: every module uses only the layers below it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
