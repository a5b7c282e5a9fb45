//! CSV columns profiled for the draft: how full each is, examples, and what it looks like
//! (email addresses, dates in which format, numbers, lists with a separator, repeated
//! headers), so a lead maps an unknown CSV without opening it in a spreadsheet.

use super::values::Counts;

/// A guess at what a column holds, from its values.
pub(crate) fn role(counts: &Counts, repeats: usize) -> String {
    let mut roles = vec![];
    if repeats > 1 {
        roles.push(format!("repeated header ×{repeats}: a list"));
    }
    let values: Vec<&str> = counts.values.keys().map(String::as_str).collect();
    if values.is_empty() {
        return roles.join("; ");
    }
    let all = |f: &dyn Fn(&str) -> bool| values.iter().all(|v| f(v));
    if all(&|v| v.contains('@') && v.contains('.') && !v.contains(' ')) {
        roles.push("email".into());
    } else if let Some(format) = date_format(&values) {
        roles.push(format!("date, {format}"));
    } else if all(&|v| crate::mapping::template::parse_number(v).is_some()) {
        roles.push("number".into());
    } else {
        for sep in [';', '|'] {
            let with = values.iter().filter(|v| v.contains(sep)).count();
            if with * 5 >= values.len() && with > 0 {
                roles.push(format!(
                    "list separated by '{sep}' (use `| split('{sep}')`)"
                ));
                break;
            }
        }
    }
    roles.join("; ")
}

/// The one layout every value has, as the `datetime`/`date` filters read it.
fn date_format(values: &[&str]) -> Option<&'static str> {
    type Shape<'a> = (&'a str, &'a dyn Fn(&[u8]) -> bool);
    let shapes: [Shape; 6] = [
        ("ISO 8601 with offset (`| datetime`)", &|b| {
            b.len() >= 20
                && iso_date(b)
                && b[10] == b'T'
                && (b.ends_with(b"Z") || b[b.len() - 6] == b'+' || b[b.len() - 6] == b'-')
        }),
        (
            "yyyy-mm-dd HH:MM:SS, no zone: set defaults.timezone (`| datetime`)",
            &|b| b.len() == 19 && iso_date(b) && b[10] == b' ',
        ),
        (
            "yyyy-mm-ddTHH:MM:SS, no zone: set defaults.timezone (`| datetime`)",
            &|b| b.len() == 19 && iso_date(b) && b[10] == b'T',
        ),
        ("yyyy-mm-dd (`| date`)", &|b| b.len() == 10 && iso_date(b)),
        ("dd.mm.yyyy", &|b| {
            b.len() == 10 && b[2] == b'.' && b[5] == b'.'
        }),
        ("mm/dd/yyyy or dd/mm/yyyy: check which", &|b| {
            b.len() == 10 && b[2] == b'/' && b[5] == b'/'
        }),
    ];
    shapes
        .iter()
        .find(|(_, f)| values.iter().filter(|v| f(v.as_bytes())).count() * 10 >= values.len() * 9)
        .map(|(name, _)| *name)
}

fn iso_date(b: &[u8]) -> bool {
    b.len() >= 10 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' && b[7] == b'-'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(values: &[&str]) -> Counts {
        let mut c = Counts::default();
        for v in values {
            c.values.insert(v.to_string(), 1);
        }
        c
    }

    #[test]
    fn roles_from_values() {
        assert_eq!(role(&counts(&["a@b.de", "c@d.com"]), 1), "email");
        assert!(
            role(&counts(&["2024-03-05 14:22:10", "2024-03-06 09:00:00"]), 1)
                .starts_with("date, yyyy-mm-dd HH:MM:SS")
        );
        assert!(role(&counts(&["2024-03-05"]), 1).starts_with("date, yyyy-mm-dd"));
        assert_eq!(role(&counts(&["12.5", "3"]), 1), "number");
        assert!(role(&counts(&["a;b", "c"]), 1).starts_with("list separated by ';'"));
        assert!(role(&counts(&["x"]), 3).starts_with("repeated header ×3"));
    }
}
