//! Matching a value of the export to a name of the account: exactly, then ignoring case,
//! spacing, separators and accents, then by the preset's own suggestion, then closely
//! (strsim), so each drafted map entry says how sure it is.

/// How a value was matched to an account name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum How {
    Exact,
    /// Equal once case, spacing, `_`/`-` and accents are ignored.
    Normal,
    /// The preset's map names this target for the value (e.g. Zendesk `solved` → Resolved).
    Preset,
    /// Close in spelling or sharing its words: to check.
    Close,
}

impl How {
    pub(crate) fn label(self) -> &'static str {
        match self {
            How::Exact => "exact",
            How::Normal => "same name",
            How::Preset => "preset",
            How::Close => "close match, check",
        }
    }
}

/// The account name `value` maps to, with how; `hint` is the preset's target, if any.
pub(crate) fn best<'a>(
    value: &str,
    hint: Option<&str>,
    names: &[&'a str],
) -> Option<(&'a str, How)> {
    if let Some(n) = names.iter().find(|n| **n == value) {
        return Some((n, How::Exact));
    }
    let v = fold(value);
    if let Some(n) = names.iter().find(|n| fold(n) == v) {
        return Some((n, How::Normal));
    }
    if let Some(h) = hint {
        let h = fold(h);
        if let Some(n) = names.iter().find(|n| fold(n) == h) {
            return Some((n, How::Preset));
        }
    }
    close(&v, names).map(|n| (n, How::Close))
}

/// The one name close to the folded value: words of one contained in the other's
/// (`mod_billing` ~ Billing) or a small edit distance; `None` when none or several tie.
fn close<'a>(v: &str, names: &[&'a str]) -> Option<&'a str> {
    if v.is_empty() {
        return None;
    }
    let words: Vec<&str> = v.split(' ').collect();
    let scored: Vec<(f64, &'a str)> = names
        .iter()
        .map(|n| {
            let f = fold(n);
            let nw: Vec<&str> = f.split(' ').collect();
            let contained =
                nw.iter().all(|w| words.contains(w)) || words.iter().all(|w| nw.contains(w));
            let score = if contained {
                1.0
            } else {
                strsim::normalized_damerau_levenshtein(v, &f)
            };
            (score, *n)
        })
        .filter(|(s, _)| *s >= 0.75)
        .collect();
    let top = scored.iter().map(|s| s.0).fold(0.0, f64::max);
    let mut at_top = scored.iter().filter(|s| s.0 == top);
    match (at_top.next(), at_top.next()) {
        (Some((_, n)), None) => Some(n),
        _ => None,
    }
}

/// Up to three account names closest to `value`, for a TODO line.
pub(crate) fn closest<'a>(value: &str, names: &[&'a str]) -> Vec<&'a str> {
    let v = fold(value);
    let mut scored: Vec<(f64, &'a str)> = names
        .iter()
        .map(|n| (strsim::jaro_winkler(&v, &fold(n)), *n))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.into_iter().take(3).map(|(_, n)| n).collect()
}

/// Lower case, accents dropped, `_`/`-`/`.` and whitespace runs as one space.
pub(crate) fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().flat_map(char::to_lowercase) {
        let c = match c {
            'à'..='å' | 'ā' | 'ă' | 'ą' => 'a',
            'ç' | 'ć' | 'č' => 'c',
            'è'..='ë' | 'ē' | 'ę' | 'ě' => 'e',
            'ì'..='ï' | 'ī' => 'i',
            'ñ' | 'ń' | 'ň' => 'n',
            'ò'..='ö' | 'ø' | 'ō' | 'ő' => 'o',
            'ù'..='ü' | 'ū' | 'ů' | 'ű' => 'u',
            'ý' | 'ÿ' => 'y',
            'ś' | 'š' => 's',
            'ź' | 'ż' | 'ž' => 'z',
            'ł' => 'l',
            'ř' => 'r',
            'ß' => {
                out.push_str("ss");
                continue;
            }
            '_' | '-' | '.' => ' ',
            c if c.is_whitespace() => ' ',
            c => c,
        };
        if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        out.push(c);
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_then_normal_then_preset_then_close() {
        let names = [
            "Widget Pro",
            "Billing",
            "Reports",
            "Mobile app",
            "Résolu",
            "Critical",
        ];
        assert_eq!(best("Billing", None, &names), Some(("Billing", How::Exact)));
        assert_eq!(
            best("widget_pro", None, &names),
            Some(("Widget Pro", How::Normal))
        );
        assert_eq!(best("RESOLU", None, &names), Some(("Résolu", How::Normal)));
        assert_eq!(
            best("urgent", Some("critical"), &names),
            Some(("Critical", How::Preset))
        );
        assert_eq!(
            best("mod_mobile_app", None, &names),
            Some(("Mobile app", How::Close))
        );
        assert_eq!(best("Reprots", None, &names), Some(("Reports", How::Close)));
        assert_eq!(best("360011111101", None, &names), None);
        assert_eq!(closest("Refunds", &names).len(), 3);
        assert_eq!(fold("  Straße_Nord-Ost "), "strasse nord ost");
    }
}
