//! How much to say and in which colours, from `-q`, `-v`, `--color` and `NO_COLOR`.
//!
//! Resolved once in [`super::main`] so that every subcommand, the progress display and the
//! error line agree; clap's own help and usage errors get the same choice.

use std::ffi::OsString;
use std::io::IsTerminal;

use clap::builder::styling::AnsiColor;

use super::args::{ColorChoice, OutputArgs};

/// The resolved output settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    pub quiet: bool,
    pub verbose: bool,
    /// Colours on stderr (the bar, `error:`).
    pub color: bool,
}

impl Output {
    pub(crate) fn new(args: &OutputArgs) -> Output {
        Output {
            quiet: args.quiet,
            verbose: args.verbose,
            color: colors_wanted(args.color, std::io::stderr().is_terminal(), no_color()),
        }
    }

    /// The prefix of the error line, red and bold when colours are on.
    pub(crate) fn error_prefix(&self) -> String {
        if self.color {
            let style = AnsiColor::Red.on_default().bold();
            format!("{style}error:{style:#}")
        } else {
            "error:".to_owned()
        }
    }
}

/// `NO_COLOR` set to anything but the empty string (no-color.org).
fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// `--color` wins; `auto` colours a terminal unless `NO_COLOR` says not to.
fn colors_wanted(choice: ColorChoice, terminal: bool, no_color: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => terminal && !no_color,
    }
}

/// clap's colour for help and usage errors, which clap prints while parsing, before the
/// parsed `--color` exists: read from the raw arguments (the last `--color` wins, as in
/// clap).
pub(crate) fn clap_color(args: &[OsString]) -> clap::ColorChoice {
    let mut choice = clap::ColorChoice::Auto;
    let mut next_is_value = false;
    for arg in args.iter().filter_map(|a| a.to_str()) {
        let value = if next_is_value {
            next_is_value = false;
            Some(arg)
        } else if arg == "--color" {
            next_is_value = true;
            None
        } else {
            arg.strip_prefix("--color=")
        };
        match value {
            Some("always") => choice = clap::ColorChoice::Always,
            Some("never") => choice = clap::ColorChoice::Never,
            Some("auto") => choice = clap::ColorChoice::Auto,
            _ => {}
        }
        if arg == "--" {
            break;
        }
    }
    if choice == clap::ColorChoice::Auto && no_color() {
        clap::ColorChoice::Never
    } else {
        choice
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn color_flag_wins_over_no_color_and_auto_follows_the_terminal() {
        assert!(colors_wanted(ColorChoice::Always, false, true));
        assert!(!colors_wanted(ColorChoice::Never, true, false));
        assert!(colors_wanted(ColorChoice::Auto, true, false));
        assert!(!colors_wanted(ColorChoice::Auto, true, true));
        assert!(!colors_wanted(ColorChoice::Auto, false, false));
    }

    #[test]
    fn clap_sees_the_last_color_flag() {
        let args = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            clap_color(&args(&["hfmigrate", "--color", "never", "check"])),
            clap::ColorChoice::Never
        );
        assert_eq!(
            clap_color(&args(&["hfmigrate", "--color=never", "--color=always"])),
            clap::ColorChoice::Always
        );
    }
}
