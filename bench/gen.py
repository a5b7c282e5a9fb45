#!/usr/bin/env python3
"""Generate a synthetic helpdesk export for the dry-run benchmark (stdlib only).

    python3 bench/gen.py N OUTDIR

Writes, streaming (memory does not grow with N):
  OUTDIR/tickets.csv     generic-csv shape (see samples/README.md), Created At in Europe/Berlin
  OUTDIR/tickets.ndjson  one Zendesk-style ticket object per line
and, when N > 100000, the first 100000 records again as tickets-100k.csv / tickets-100k.ndjson
(same seed, so they are a prefix of the big files) to compare peak RSS at 100k and at N.
Finally OUTDIR/meta.json records N and the file sizes, so a re-run can skip generation.

Deterministic: same N gives byte-identical files. Bodies are ~1 KB, about a third are
multi-line, ~5% contain non-ASCII text; ~0.5% of records are invalid (bad email, empty subject).
"""
import csv
import datetime as dt
import json
import os
import random
import sys

SMALL = 100_000

HEADER = ["Ticket ID", "Subject", "Description", "Requester Name", "Requester Email", "Status", "Priority",
          "Category", "Assignee", "Tags", "Created At", "Product", "Region", "Order Value", "Purchase Date",
          "Affected Modules"]

FIRST = ["Anna", "Ben", "Chloé", "Dmitri", "Eva", "Farid", "Greta", "Hiro", "Ines", "Jonas", "Kofi", "Lena",
         "Mateo", "Nora", "Oskar", "Priya", "Quentin", "Rosa", "Søren", "Tariq", "Uma", "Viktor", "Wen", "Yara",
         "Zoë", "Jürgen", "Björk", "Łukasz", "Ngozi", "Aiko"]
LAST = ["Müller", "Smith", "Dubois", "Ivanova", "García", "Nakamura", "Okafor", "Rossi", "Jensen", "Kowalski",
        "Haddad", "Chen", "O'Neill", "Lindqvist", "Silva", "Novák", "Ødegård", "Papadopoulos", "Kim", "Weiß"]
DOMAINS = ["example.com", "example.org", "example.net", "mail.example", "corp.example", "shop.example"]
WORDS = ("the a export invoice report dashboard login password reset error timeout customer order account "
         "billing payment refund renewal plan upgrade user team agent ticket email attachment mobile app "
         "android ios browser chrome firefox api webhook integration slack sync page filter date region "
         "since yesterday again please help urgent issue problem works fails shows cannot could would "
         "thanks regards hello hi we our your they data file csv pdf download upload import settings").split()
NON_ASCII = ["Grüße aus München, die Umlaute ä ö ü ß fehlen.", "Merci beaucoup, ça marche très bien.",
             "ログインできません。よろしくお願いします。", "请尽快回复，谢谢！", "شكراً لكم على المساعدة.",
             "תודה רבה על העזרה.", "Thanks a lot 🎉🙂", "Dziękuję, działa już poprawnie."]
SUBJECTS = ["Cannot log in after password reset", "Invoice export times out", "Charged twice for renewal",
            "Dashboard shows no data", "Webhook payloads arrive out of order", "App crashes when opening PDF",
            "Question about enterprise pricing", "VAT missing on invoice", "Slack integration posts notes",
            "Bulk import: required columns?", "SSO fails with invalid audience", "Report filter ignores region"]
STATUS = ["Open", "Pending", "Solved", "Closed"]
ZD_STATUS = {"Open": "open", "Pending": "pending", "Solved": "solved", "Closed": "closed"}
PRIORITY = ["Low", "Normal", "High", "Urgent"]
ZD_PRIORITY = {"Low": "low", "Normal": "normal", "High": "high", "Urgent": "urgent"}
CATEGORY = ["Support", "Support", "Support", "Billing", "Sales"]
ZD_GROUP = {"Support": 360011111101, "Billing": 360011111102, "Sales": 360011111103}
STAFF = {"Support": ["alice@acme.example", "bjorn@acme.example", "chen.wei@acme.example"],
         "Billing": ["dana@acme.example"], "Sales": ["alice@acme.example", "chen.wei@acme.example"]}
PRODUCT = ["Widget Pro", "Widget Lite", "Gadget", "Other"]
PRODUCT_TAG = {"Widget Pro": "widget_pro", "Widget Lite": "widget_lite", "Gadget": "gadget", "Other": "other"}
REGION = ["EMEA", "APAC", "Americas"]
MODULES = ["Billing", "Reports", "API", "Mobile app", "Integrations"]
MODULE_TAG = {"Billing": "mod_billing", "Reports": "mod_reports", "API": "mod_api", "Mobile app": "mod_mobile_app",
              "Integrations": "mod_integrations"}
TAGS = ["vip", "renewal", "escalated", "migrated", "phone", "chat", "enterprise", "trial"]
BERLIN_START = dt.datetime(2022, 1, 3, 8, 0, 0)


def berlin_offset_hours(t):
    """CET/CEST without zoneinfo lookups per record (EU rule: last Sunday of March/October, 01:00 UTC)."""
    def last_sunday(year, month):
        d = dt.datetime(year, month, 31 if month in (3, 10) else 30)
        return d - dt.timedelta(days=(d.weekday() + 1) % 7)
    start = last_sunday(t.year, 3).replace(hour=3)  # 02:00-03:00 does not exist: treated as +01 ("compatible")
    end = last_sunday(t.year, 10).replace(hour=3)
    return 2 if start <= t < end else 1


def make_body_pool(rng, n=4096):
    pool = []
    for i in range(n):
        paras = []
        size = rng.randint(700, 1300)
        total = 0
        while total < size:
            sent = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 16)))
            sent = sent[0].upper() + sent[1:] + "."
            paras.append(sent)
            total += len(sent) + 1
        if i % 20 == 0:
            paras.insert(rng.randint(0, len(paras)), rng.choice(NON_ASCII))
        if i % 3 == 0:
            # multi-line: paragraphs and a short list
            text = ""
            for k, p in enumerate(paras):
                text += p + ("\n\n" if k % 3 == 2 else ("\n- " if k % 5 == 4 else " "))
            body = "Hello,\n\n" + text.strip() + "\n\nRegards"
        else:
            body = " ".join(paras)
        if i % 50 == 7:
            body = body.replace("export", 'export "v2", with commas, and <tags> & ampersands', 1)
        pool.append(body)
    return pool


def records(n, seed=20261127):
    rng = random.Random(seed)
    pool = make_body_pool(rng)
    for i in range(n):
        tid = 100000 + i
        first, last = rng.choice(FIRST), rng.choice(LAST)
        name = "%s %s" % (first, last)
        local = (first + "." + last).lower().replace("'", "")
        email = "%s%d@%s" % (local, i % 997, rng.choice(DOMAINS))
        r = rng.random()
        subject = rng.choice(SUBJECTS)
        if r < 0.003:
            email = email.replace("@", "@@")         # invalid on purpose
        elif r < 0.005:
            subject = ""                             # invalid on purpose
        elif r < 0.05:
            subject = subject + " — " + rng.choice(NON_ASCII)[:24]
        cat = rng.choice(CATEGORY)
        # completed statuses only where no compulsory-on-completion field is needed (Sales)
        status = rng.choice(STATUS) if cat == "Sales" else rng.choice(STATUS[:2])
        prio = rng.choice(PRIORITY)
        assignee = rng.choice(STAFF[cat]) if rng.random() < 0.85 else ""
        tags = rng.sample(TAGS, rng.randint(0, 3))
        local_t = BERLIN_START + dt.timedelta(seconds=i * 97 + rng.randint(0, 90))
        utc_t = local_t - dt.timedelta(hours=berlin_offset_hours(local_t))
        product = rng.choice(PRODUCT)
        region = rng.choice(REGION)
        order_value = "%.2f" % (rng.randint(900, 2_000_000) / 100) if cat != "Support" else ""
        purchase = (local_t.date() - dt.timedelta(days=rng.randint(1, 900))).isoformat() if cat != "Support" else ""
        modules = rng.sample(MODULES, rng.randint(0, 2)) if cat == "Support" else []
        body = pool[(i * 7919 + rng.randint(0, 4095)) % len(pool)]
        yield dict(tid=tid, subject=subject, body=body, name=name, email=email, status=status, prio=prio, cat=cat,
                   assignee=assignee, tags=tags, local_t=local_t, utc_t=utc_t, product=product, region=region,
                   order_value=order_value, purchase=purchase, modules=modules)


def csv_row(r):
    return [r["tid"], r["subject"], r["body"], r["name"], r["email"], r["status"], r["prio"], r["cat"], r["assignee"],
            ";".join(r["tags"]), r["local_t"].strftime("%Y-%m-%d %H:%M:%S"), r["product"], r["region"],
            r["order_value"], r["purchase"], ";".join(r["modules"])]


def ndjson_obj(r):
    return {
        "id": r["tid"], "subject": r["subject"], "description": r["body"], "status": ZD_STATUS[r["status"]],
        "priority": ZD_PRIORITY[r["prio"]], "type": "question", "group_id": ZD_GROUP[r["cat"]],
        "requester": {"name": r["name"], "email": r["email"]},
        "assignee": {"email": r["assignee"]} if r["assignee"] else None,
        "tags": r["tags"], "created_at": r["utc_t"].strftime("%Y-%m-%dT%H:%M:%SZ"),
        "custom_fields": [
            {"id": 360001, "value": PRODUCT_TAG[r["product"]]},
            {"id": 360002, "value": r["region"].lower()},
            {"id": 360003, "value": float(r["order_value"]) if r["order_value"] else None},
            {"id": 360004, "value": r["purchase"] or None},
            {"id": 360005, "value": [MODULE_TAG[m] for m in r["modules"]] or None},
        ],
    }


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
    os.makedirs(out, exist_ok=True)
    names = {"csv": "tickets.csv", "ndjson": "tickets.ndjson"}
    small = n > SMALL
    files = {k: open(os.path.join(out, v + ".tmp"), "w", encoding="utf-8", newline="", buffering=1 << 20)
             for k, v in names.items()}
    if small:
        files["csv_s"] = open(os.path.join(out, "tickets-100k.csv.tmp"), "w", encoding="utf-8", newline="", buffering=1 << 20)
        files["ndjson_s"] = open(os.path.join(out, "tickets-100k.ndjson.tmp"), "w", encoding="utf-8", newline="", buffering=1 << 20)
    w = csv.writer(files["csv"], lineterminator="\n")
    w_s = csv.writer(files["csv_s"], lineterminator="\n") if small else None
    w.writerow(HEADER)
    if small:
        w_s.writerow(HEADER)
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    for i, r in enumerate(records(n)):
        row = csv_row(r)
        line = dumps(ndjson_obj(r)) + "\n"
        w.writerow(row)
        files["ndjson"].write(line)
        if small and i < SMALL:
            w_s.writerow(row)
            files["ndjson_s"].write(line)
        if i and i % 200_000 == 0:
            print("  gen: %d / %d" % (i, n), file=sys.stderr, flush=True)
    for f in files.values():
        f.close()
    meta = {"n": n, "files": {}}
    for k, v in list(names.items()) + ([("csv_s", "tickets-100k.csv"), ("ndjson_s", "tickets-100k.ndjson")] if small else []):
        os.replace(os.path.join(out, v + ".tmp"), os.path.join(out, v))
        meta["files"][v] = os.path.getsize(os.path.join(out, v))
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
