#!/usr/bin/env python3
"""Straightforward Python baseline for the dry-run benchmark (stdlib only).

    python3 bench/baseline.py csv|ndjson INPUT SCHEMA OUTPUT

Does the transform hfmigrate's dry-run does, the way a one-off migration script would:
read each record (csv.DictReader / json.loads per line), validate the basics (email,
subject, body, category), resolve names to ids through the HappyFox schema snapshot
(category, priority, status, assignee, choice ids for t-cf-<id>, only fields that apply to
the category), convert created_at to UTC `yyyy-mm-ddThh:mm:ss` and write one HappyFox
ticket-create payload per line (JSON lines). Prints `read valid rejected` on stderr.
"""
import csv
import datetime as dt
import html
import json
import re
import sys
from zoneinfo import ZoneInfo

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
BERLIN = ZoneInfo("Europe/Berlin")
UTC = dt.timezone.utc
PRIORITY_MAP = {"low": "Low", "normal": "Medium", "high": "High", "urgent": "Critical"}
STATUS_MAP = {"new": "New", "open": "In Progress", "pending": "Waiting on Customer", "hold": "On Hold",
              "solved": "Resolved", "closed": "Closed"}
ZD_GROUP = {360011111101: "Support", 360011111102: "Billing", 360011111103: "Sales", 360011111104: "Internal IT"}
PRODUCT_TAG = {"widget_pro": "Widget Pro", "widget_lite": "Widget Lite", "gadget": "Gadget", "other": "Other"}
REGION_TAG = {"emea": "EMEA", "apac": "APAC", "americas": "Americas"}
MODULE_TAG = {"mod_billing": "Billing", "mod_reports": "Reports", "mod_api": "API", "mod_mobile_app": "Mobile app",
              "mod_integrations": "Integrations"}


def load_schema(path):
    s = json.load(open(path, encoding="utf-8"))
    fields = {}
    for f in s["ticket_custom_fields"]:
        fields[f["name"]] = {
            "id": f["id"], "type": f["type"],
            "choices": {c["text"]: c["id"] for c in (f["choices"] or [])},
            "categories": {c["category"] for c in f["categories"]},
        }
    return {
        "category": {c["name"]: (c["id"], c["public"]) for c in s["categories"]},
        "priority": {p["name"]: p["id"] for p in s["priorities"]},
        "status": {p["name"]: p["id"] for p in s["statuses"]},
        "staff": {m["email"]: m["id"] for m in s["staff"] if m["active"]},
        "fields": fields,
    }


def to_html(text):
    return "".join("<p>%s</p>" % html.escape(p).replace("\n", "<br>") for p in text.split("\n\n"))


def build(schema, rec):
    """rec: normalised dict -> (payload, errors)."""
    errors = []
    if not EMAIL.match(rec["email"] or ""):
        errors.append("bad email")
    if not rec["subject"].strip():
        errors.append("empty subject")
    if not rec["body"].strip():
        errors.append("empty body")
    cat = schema["category"].get(rec["category"])
    if cat is None or not cat[1]:
        errors.append("unknown or private category")
        cat_id = None
    else:
        cat_id = cat[0]
    payload = {
        "name": rec["name"], "email": rec["email"], "subject": rec["subject"], "html": to_html(rec["body"]),
        "category": cat_id, "priority": schema["priority"].get(rec["priority"], schema["priority"]["Medium"]),
        "tags": ",".join(rec["tags"]), "created_at": rec["created_at"].strftime("%Y-%m-%dT%H:%M:%S"),
    }
    if rec["assignee"]:
        staff = schema["staff"].get(rec["assignee"])
        if staff is not None:
            payload["assignee"] = staff
    status_id = schema["status"].get(rec["status"])
    payload["t-cf-%d" % schema["fields"]["Source ID"]["id"]] = str(rec["id"])
    for name, value in rec["cf"].items():
        if value in (None, "", []):
            continue
        f = schema["fields"][name]
        if cat_id not in f["categories"]:
            errors.append("field %s not valid for category" % name)
            continue
        key = "t-cf-%d" % f["id"]
        if f["type"] == "choice":
            cid = f["choices"].get(value)
            if cid is None:
                errors.append("unknown choice %s" % value)
            payload[key] = cid
        elif f["type"] == "multiple_choice":
            ids = [f["choices"].get(v) for v in value]
            if None in ids:
                errors.append("unknown choice in %s" % name)
            payload[key] = ids
        elif f["type"] == "number":
            try:
                payload[key] = "%.2f" % float(value)
            except ValueError:
                errors.append("bad number")
        elif f["type"] == "date":
            try:
                payload[key] = dt.date.fromisoformat(value).isoformat()
            except ValueError:
                errors.append("bad date")
        else:
            payload[key] = value
    return payload, status_id, errors


def csv_records(path):
    with open(path, encoding="utf-8-sig", newline="") as f:
        for row in csv.DictReader(f):
            try:
                local = dt.datetime.strptime(row["Created At"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=BERLIN)
                created = local.astimezone(UTC)
            except ValueError:
                created = None
            yield {
                "id": row["Ticket ID"], "subject": row["Subject"], "body": row["Description"],
                "name": row["Requester Name"], "email": row["Requester Email"],
                "status": {"Open": "In Progress", "Pending": "Waiting on Customer", "Solved": "Resolved",
                           "Closed": "Closed"}.get(row["Status"], "New"),
                "priority": PRIORITY_MAP.get(row["Priority"].lower(), "Medium"), "category": row["Category"],
                "assignee": row["Assignee"], "tags": [t for t in row["Tags"].split(";") if t],
                "created_at": created,
                "cf": {"Product": row["Product"], "Region": row["Region"], "Order Value": row["Order Value"],
                       "Purchase Date": row["Purchase Date"],
                       "Affected Modules": [m for m in row["Affected Modules"].split(";") if m]},
            }


def ndjson_records(path):
    with open(path, encoding="utf-8") as f:
        for line in f:
            t = json.loads(line)
            cf = {c["id"]: c["value"] for c in t.get("custom_fields") or []}
            try:
                created = dt.datetime.strptime(t["created_at"], "%Y-%m-%dT%H:%M:%SZ")
            except (TypeError, ValueError):
                created = None
            req = t.get("requester") or {}
            assignee = t.get("assignee") or {}
            yield {
                "id": "ZD-%s" % t["id"], "subject": t.get("subject") or "", "body": t.get("description") or "",
                "name": req.get("name") or "", "email": req.get("email") or "",
                "status": STATUS_MAP.get(t.get("status"), "New"),
                "priority": PRIORITY_MAP.get(t.get("priority") or "normal", "Medium"),
                "category": ZD_GROUP.get(t.get("group_id"), "Support"), "assignee": assignee.get("email"),
                "tags": t.get("tags") or [], "created_at": created,
                "cf": {"Product": PRODUCT_TAG.get(cf.get(360001), cf.get(360001)),
                       "Region": REGION_TAG.get(cf.get(360002), cf.get(360002)),
                       "Order Value": "" if cf.get(360003) is None else str(cf.get(360003)),
                       "Purchase Date": cf.get(360004) or "",
                       "Affected Modules": [MODULE_TAG.get(m, m) for m in (cf.get(360005) or [])]},
            }


def main():
    kind, src, schema_path, out = sys.argv[1:5]
    schema = load_schema(schema_path)
    read = valid = 0
    reader = csv_records if kind == "csv" else ndjson_records
    with open(out, "w", encoding="utf-8") as w:
        for rec in reader(src):
            read += 1
            if rec["created_at"] is None:
                continue
            payload, _status, errors = build(schema, rec)
            if errors:
                continue
            valid += 1
            w.write(json.dumps(payload, ensure_ascii=False))
            w.write("\n")
    print("read %d valid %d rejected %d" % (read, valid, read - valid), file=sys.stderr)


if __name__ == "__main__":
    main()
