//! Whether a text is an email address, one rule for the whole program.
//!
//! The dry run must reject exactly what HappyFox would refuse (a record the dry run calls
//! valid and the import then loses is the worst outcome), and the sandbox stands in for
//! HappyFox: so the payload check and the sandbox's validation are this one function, the
//! shape Django's `EmailValidator` accepts in practice: one `@`, a non-empty local part, a
//! dotted domain without empty labels, no whitespace, none of `,<>` (a list or a display
//! name is not an address), at most 254 characters.

/// A single plausible address, after trimming surrounding whitespace.
pub fn is_valid(text: &str) -> bool {
    let s = text.trim();
    if s.len() > 254
        || s.chars()
            .any(|c| c.is_whitespace() || matches!(c, ',' | '<' | '>'))
    {
        return false;
    }
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_what_is_not_one() {
        for ok in [
            "a@b.co",
            "élodie.martin@exemple.fr",
            " james@example.com ",
            "a+tag@x.io",
        ] {
            assert!(is_valid(ok), "{ok}");
        }
        for bad in [
            "",
            "a@b",
            "a b@c.de",
            "@c.de",
            "a@@c.de",
            "a@b@c.de",
            "Rachel <r@x.com>",
            "a@x.io, b@y.io",
            "a,b@x.io",
            "a@.x.io",
            "a@x.io.",
            "a@x..io",
        ] {
            assert!(!is_valid(bad), "{bad}");
        }
        assert!(!is_valid(&format!("{}@x.io", "a".repeat(250))));
    }
}
