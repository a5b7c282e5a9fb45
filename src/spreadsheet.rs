//! CSV cells that are safe to open in a spreadsheet.
//!
//! The files a migration lead opens in Excel or Sheets (`rejects.csv`, `success.csv`,
//! `errors.csv`) hold text customers wrote; a cell starting with `=` would run as a
//! formula there (CSV injection).

/// Spreadsheet programs run a cell starting with `=`, `+`, `-`, `@`, tab or CR as a formula
/// (CSV injection); a leading apostrophe makes it text.
pub(crate) fn neutralise(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neutralises_formula_cells() {
        for (input, out) in [
            ("=1+1", "'=1+1"),
            ("+1", "'+1"),
            ("-1", "'-1"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("plain", "plain"),
            ("", ""),
            ("a=b", "a=b"),
        ] {
            assert_eq!(neutralise(input), out);
        }
    }
}
