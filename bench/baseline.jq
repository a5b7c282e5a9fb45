# Per-line transform of a Zendesk-style NDJSON ticket into a HappyFox ticket-create payload,
# the jq equivalent of bench/baseline.py (run with: jq -c --argjson L "$(jq -c -f lookup.jq schema.json)").
# Records that fail the basic checks (email, subject, body, category, choice labels) are dropped.
def html_body: split("\n\n") | map("<p>" + (@html | gsub("\n"; "<br>")) + "</p>") | join("");
def money: (. * 100 | round) as $c | "\($c / 100 | floor).\($c % 100 | tostring | if length < 2 then "0" + . else . end)";
def field($name; $cat): $L.fields[$name] as $f | select($f.categories[$cat | tostring]) | $f;
(.custom_fields // [] | map({key: (.id | tostring), value: .value}) | from_entries) as $cf
| ($L.group[(.group_id // 0) | tostring] // "Support") as $catname
| $L.category[$catname] as $cat
| select($cat != null)
| select((.requester.email // "") | test("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$"))
| select((.subject // "") | length > 0)
| select((.description // "") | length > 0)
| {
    name: .requester.name,
    email: .requester.email,
    subject: .subject,
    html: (.description | html_body),
    category: $cat,
    priority: ($L.priority[$L.prio[.priority // "normal"] // "Medium"]),
    tags: ((.tags // []) | join(",")),
    created_at: (.created_at | fromdateiso8601 | strftime("%Y-%m-%dT%H:%M:%S")),
    "t-cf-1": ("ZD-" + (.id | tostring))
  }
+ (if .assignee.email and $L.staff[.assignee.email] then {assignee: $L.staff[.assignee.email]} else {} end)
+ (if $cf["360001"] then ([field("Product"; $cat)] | if length > 0 then {("t-cf-\(.[0].id)"): .[0].choices[$L.product[$cf["360001"]] // ""]} else {} end) else {} end)
+ (if $cf["360002"] then ([field("Region"; $cat)] | if length > 0 then {("t-cf-\(.[0].id)"): .[0].choices[$L.region[$cf["360002"]] // ""]} else {} end) else {} end)
+ (if $cf["360003"] != null then ([field("Order Value"; $cat)] | if length > 0 then {("t-cf-\(.[0].id)"): ($cf["360003"] | money)} else {} end) else {} end)
+ (if $cf["360004"] then ([field("Purchase Date"; $cat)] | if length > 0 then {("t-cf-\(.[0].id)"): $cf["360004"]} else {} end) else {} end)
+ (if $cf["360005"] then ([field("Affected Modules"; $cat)] | if length > 0 then {("t-cf-\(.[0].id)"): ($cf["360005"] | map(. as $m | $L.fields["Affected Modules"].choices[$L.module[$m]]))} else {} end) else {} end)
| select([.[]] | index(null) | not)
