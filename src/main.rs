//! The `hfmigrate` binary: parse arguments, hand over to the library, exit with its code.

fn main() -> std::process::ExitCode {
    hfmigrate::cli::main()
}
