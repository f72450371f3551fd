//! `bert`: the command-line tool. Subcommands mirror Google's scripts and their flag names
//! (`--vocab_file`, `--do_lower_case`, ...); the dashed spelling (`--vocab-file`) is accepted too.

mod convert;
mod embed;
mod extract_features;
mod flags;
mod lines;
mod model_flags;
mod pyjson;
mod tokenize;

use std::process::ExitCode;

const USAGE: &str = "usage: bert <command> [flags]

commands:
  tokenize          tokenize UTF-8 lines from stdin
                    --vocab_file PATH [--do_lower_case=true|false]
  embed             one sentence embedding (JSON array) per stdin line
                    --model PATH [--pooling mean|cls|max|pooler] [--normalize]
                    [--max_seq_length N] [--batch_size N] [--threads N]
  extract-features  Google's extract_features.py: --input_file --output_file
                    (--model PATH | --bert_config_file --init_checkpoint --vocab_file)
                    [--layers=-1,-2,-3,-4] [--max_seq_length=128] [--batch_size=32]
                    [--do_lower_case=true]
  convert           write libbert's .bert format: --model PATH --output FILE.bert
  version           print the version

Flags use Google's spelling (--vocab_file) or the dashed one (--vocab-file).
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
        "embed" => embed::run(rest),
        "extract-features" | "extract_features" => extract_features::run(rest),
        "convert" => convert::run(rest),
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
