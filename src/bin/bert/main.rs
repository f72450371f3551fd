//! `bert`: the command-line tool. Subcommands mirror Google's scripts and their flag names
//! (`--vocab_file`, `--do_lower_case`, ...); the dashed spelling (`--vocab-file`) is accepted too.

// `Flags::parsed` serves subcommands that take numbers (not all are wired yet).
#[allow(dead_code)]
mod flags;
mod tokenize;

use std::process::ExitCode;

const USAGE: &str = "usage: bert <command> [flags]

commands:
  tokenize   tokenize UTF-8 lines from stdin (--vocab_file PATH [--do_lower_case=true|false])
  version    print the version
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    let result = match command.as_str() {
        "version" | "--version" => {
            println!("bert {}", bert::VERSION);
            Ok(())
        }
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            Ok(())
        }
        "tokenize" => tokenize::run(rest),
        other => Err(format!("unknown command {other:?}\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("bert: {message}");
            ExitCode::FAILURE
        }
    }
}
