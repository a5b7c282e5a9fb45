//! The bulk-create lines of `payloads.ndjson`, written around SIMD string escaping:
//! serialising the payloads through serde_json (which escapes strings a byte at a time)
//! was a third of the dry run's report thread, most of it the ~1 KB bodies. The bytes
//! are serde_json's compact form exactly; the tests hold them to it.

use serde_json::{Map, Value};

use crate::payload::TicketPayload;
use crate::source::SourceId;

/// One `POST tickets/` bulk request as the dry run shows it:
/// `{"batch":N,"request":"POST /api/1.1/json/tickets/","source_ids":[..],"body":[..]}`.
pub(super) fn bulk_line(out: &mut Vec<u8>, batch: u64, members: &[(SourceId, TicketPayload)]) {
    out.extend_from_slice(b"{\"batch\":");
    out.extend_from_slice(itoa::Buffer::new().format(batch).as_bytes());
    out.extend_from_slice(b",\"request\":\"POST /api/1.1/json/tickets/\",\"source_ids\":[");
    for (i, (id, _)) in members.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json_escape_simd::escape_into(id.as_str(), out);
    }
    out.extend_from_slice(b"],\"body\":[");
    for (i, (_, payload)) in members.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        entries(out, payload.iter());
    }
    out.extend_from_slice(b"]}");
}

fn value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        // Few and short: serde_json's own formatting, so integers and floats match it.
        Value::Number(n) => {
            if serde_json::to_writer(&mut *out, n).is_err() {
                out.extend_from_slice(b"null");
            }
        }
        Value::String(s) => json_escape_simd::escape_into(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                value(out, item);
            }
            out.push(b']');
        }
        Value::Object(m) => object(out, m),
    }
}

fn object(out: &mut Vec<u8>, m: &Map<String, Value>) {
    entries(out, m.iter().map(|(k, v)| (k.as_str(), v)));
}

fn entries<'a>(out: &mut Vec<u8>, entries: impl Iterator<Item = (&'a str, &'a Value)>) {
    out.push(b'{');
    for (i, (k, v)) in entries.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json_escape_simd::escape_into(k, out);
        out.push(b':');
        value(out, v);
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::Serialize;

    /// The line as it was written before: serde_json serialising this struct.
    fn reference(batch: u64, members: &[(SourceId, TicketPayload)]) -> Vec<u8> {
        #[derive(Serialize)]
        struct Line<'a> {
            batch: u64,
            request: &'static str,
            source_ids: Vec<&'a str>,
            body: Vec<&'a TicketPayload>,
        }
        serde_json::to_vec(&Line {
            batch,
            request: "POST /api/1.1/json/tickets/",
            source_ids: members.iter().map(|(s, _)| s.as_str()).collect(),
            body: members.iter().map(|(_, p)| p).collect(),
        })
        .unwrap()
    }

    /// Any JSON value: strings with every kind of character serde_json escapes (controls,
    /// quotes, backslashes) and some it does not (DEL, non-ASCII), integers at their
    /// limits, floats.
    fn any_value() -> impl Strategy<Value = Value> {
        let text = "[a-z \"\\\\/\u{0}-\u{1f}\u{7f}é\u{2028}😀<>&]{0,24}";
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("JSON has no NaN or infinities", |f| f.is_finite())
                .prop_map(Value::from),
            text.prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 32, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((text, inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    fn payload(v: Value) -> TicketPayload {
        match v {
            Value::Object(m) => TicketPayload::from(m),
            other => TicketPayload::from(
                [("html".to_string(), other)]
                    .into_iter()
                    .collect::<Map<String, Value>>(),
            ),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
        #[test]
        fn lines_are_serde_json_byte_for_byte(
            batch in any::<u64>(),
            members in prop::collection::vec(("[0-9a-z\"\\\\\u{1}]{1,8}", any_value()), 0..5),
        ) {
            let members: Vec<(SourceId, TicketPayload)> = members
                .into_iter()
                .map(|(id, v)| (SourceId::new(&id).expect("ids have no spaces"), payload(v)))
                .collect();
            let mut out = Vec::new();
            bulk_line(&mut out, batch, &members);
            prop_assert_eq!(String::from_utf8(out).unwrap(), String::from_utf8(reference(batch, &members)).unwrap());
        }
    }
}
