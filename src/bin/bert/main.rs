//! `bert`: the command-line tool. Subcommands mirror Google's scripts and their flag names
//! (`--vocab_file`, `--do_lower_case`, ...); the dashed spelling (`--vocab-file`) is accepted too.

mod flags;

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
        other => Err(format!("unknown command {other:?}\n{USAGE}")),
    };
    let _ = rest;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("bert: {message}");
            ExitCode::FAILURE
        }
    }
}
