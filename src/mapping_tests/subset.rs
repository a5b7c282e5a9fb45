//! "Does the built payload contain this fragment?": a JSON subset match that lists every
//! difference with its path, so a failing case prints a diff instead of two blobs.

use serde_json::Value;

/// One place where the actual value does not contain the expected fragment.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Difference {
    /// Dotted path from the fragment's root (`payload.t-cf-2`, `conversation.1.kind`).
    pub path: String,
    pub expected: Value,
    /// `None` when the key or item is missing.
    pub actual: Option<Value>,
}

/// Every difference between `expected` (a fragment) and `actual`: objects match when each
/// expected key is present and matches (other keys are ignored); lists when they have the
/// same length and match item by item; numbers by value (`1` and `1.0` are equal); any
/// other value exactly. An expected `null` also matches a missing key.
pub(crate) fn differences(path: &str, expected: &Value, actual: &Value) -> Vec<Difference> {
    let mut out = vec![];
    walk(path, expected, Some(actual), &mut out);
    out
}

fn walk(path: &str, expected: &Value, actual: Option<&Value>, out: &mut Vec<Difference>) {
    let differ = |out: &mut Vec<Difference>| {
        out.push(Difference {
            path: path.to_string(),
            expected: expected.clone(),
            actual: actual.cloned(),
        })
    };
    match (expected, actual) {
        // `null` asks for the key to be absent (or null).
        (Value::Null, None) => {}
        (_, None) => differ(out),
        (Value::Object(e), Some(Value::Object(a))) => {
            for (k, ev) in e {
                walk(&format!("{path}.{k}"), ev, a.get(k), out);
            }
        }
        (Value::Array(e), Some(Value::Array(a))) if e.len() == a.len() => {
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                walk(&format!("{path}.{i}"), ev, Some(av), out);
            }
        }
        (Value::Number(e), Some(Value::Number(a))) if e.as_f64() == a.as_f64() => {}
        (e, Some(a)) if e == a => {}
        _ => differ(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fragments_match_and_differences_have_paths() {
        let actual = json!({"subject": "Hi", "t-cf-2": 5, "tags": ["a", "b"], "extra": 1});
        assert!(differences("p", &json!({"subject": "Hi", "t-cf-2": 5.0}), &actual).is_empty());
        assert!(differences("p", &json!({"tags": ["a", "b"]}), &actual).is_empty());
        let d = differences(
            "p",
            &json!({"subject": "Ho", "missing": 1, "tags": ["a"]}),
            &actual,
        );
        let paths: Vec<&str> = d.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(paths, ["p.subject", "p.missing", "p.tags"]);
        assert_eq!(d[1].actual, None);
        assert_eq!(d[0].actual, Some(json!("Hi")));
        assert!(differences("p", &json!({"text": null}), &actual).is_empty());
        assert_eq!(differences("p", &json!({"tags": null}), &actual).len(), 1);
        let nested = differences(
            "c",
            &json!([{"kind": "x"}]),
            &json!([{"kind": "y", "a": 1}]),
        );
        assert_eq!(nested[0].path, "c.0.kind");
    }
}
