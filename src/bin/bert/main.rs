//! `bert`: the command-line tool. Subcommands mirror Google's scripts and their flag names
//! (`--vocab_file`, `--do_lower_case`, ...); the dashed spelling (`--vocab-file`) is accepted too.

mod classify;
mod classify_predict;
mod convert;
mod create_pretraining_data;
mod embed;
mod extract_features;
mod flags;
mod lines;
mod model_flags;
mod pretrain;
mod squad;
mod squad_predict;
mod tokenize;

use std::io::Write;
use std::process::ExitCode;

/// `eprintln!` that cannot panic: a closed or full stderr loses the message, never the run
/// (`eprintln!` panics when stderr cannot be written).
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}
pub(crate) use note;

const USAGE: &str = "usage: bert <command> [flags]

commands:
  tokenize          tokenize UTF-8 lines from stdin
                    --vocab_file PATH [--do_lower_case=true|false]
  embed             one sentence embedding (JSON array) per stdin line
                    --model PATH [--pooling mean|cls|max|pooler] [--normalize]
                    [--max_seq_length N] [--batch_size N] [--threads N]
                    [--dtype f32|f16|int8]
  extract-features  Google's extract_features.py: --input_file --output_file
                    (--model PATH | --bert_config_file --init_checkpoint --vocab_file)
                    [--layers=-1,-2,-3,-4] [--max_seq_length=128] [--batch_size=32]
                    [--do_lower_case=true] [--dtype f32|f16|int8]
  classify          Google's run_classifier.py: fine-tune, evaluate, predict
                    --task_name cola|mnli|mrpc|sst-2|rte|tsv --data_dir DIR --output_dir DIR
                    [--do_train] [--do_eval] [--do_predict]
                    (--model PATH | --bert_config_file --init_checkpoint --vocab_file)
                    [--max_seq_length=128] [--train_batch_size=32] [--eval_batch_size=8]
                    [--predict_batch_size=8] [--learning_rate=5e-5] [--num_train_epochs=3.0]
                    [--warmup_proportion=0.1] [--gradient_accumulation_steps=1]
                    [--max_train_examples=N] [--save_checkpoints_steps=N]
                    [--log_every_n_steps=10] [--seed=12345] [--threads=N]
                    [--dtype f32|f16|int8] (evaluate/predict; training is f32)
                    [--do_lower_case] tsv task: --text_a_column N [--text_b_column N]
                    --label_column N [--skip_header]
                    writes model.bert, eval_results.txt, test_results.tsv
  squad             Google's run_squad.py: fine-tune, predict, then the official evaluation
                    --output_dir DIR [--do_train --train_file F] [--do_predict
                    --predict_file F] (--model PATH | --bert_config_file --init_checkpoint
                    --vocab_file) [--do_lower_case] [--version_2_with_negative]
                    [--max_seq_length=384] [--doc_stride=128] [--max_query_length=64]
                    [--train_batch_size=32] [--predict_batch_size=8]
                    [--learning_rate=5e-5] [--num_train_epochs=3.0]
                    [--warmup_proportion=0.1] [--gradient_accumulation_steps=1]
                    [--max_train_examples=N] [--save_checkpoints_steps=N]
                    [--n_best_size=20] [--max_answer_length=30]
                    [--null_score_diff_threshold=0.0] [--seed=12345] [--threads=N]
                    writes model.bert, predictions.json, nbest_predictions.json,
                    null_odds.json (2.0), eval_results.json
  create-pretraining-data
                    Google's create_pretraining_data.py: masked-LM/next-sentence TFRecords
                    --input_file A,B,dir/*.txt --output_file X[,Y...] --vocab_file PATH
                    [--do_lower_case=true] [--do_whole_word_mask=false]
                    [--max_seq_length=128] [--max_predictions_per_seq=20]
                    [--random_seed=12345] [--dupe_factor=10] [--masked_lm_prob=0.15]
                    [--short_seq_prob=0.1] [--threads=N] (same records as Google's script,
                    whatever the thread count)
  pretrain          Google's run_pretraining.py: masked LM + next sentence
                    --input_file A,B,dir/*.tfrecord --output_dir DIR [--do_train] [--do_eval]
                    (--model PATH | --bert_config_file [--init_checkpoint]; from scratch
                    without a checkpoint; --init_checkpoint DIR/training_state.safetensors
                    starts from another run's variables) [--max_seq_length=128]
                    [--max_predictions_per_seq=20] [--train_batch_size=32]
                    [--eval_batch_size=8] [--learning_rate=5e-5] [--num_train_steps=100000]
                    [--num_warmup_steps=10000] [--save_checkpoints_steps=1000]
                    [--max_eval_steps=100] [--eval_input_file=PATTERNS]
                    [--eval_every_n_steps=0] [--log_every_n_steps=10]
                    [--gradient_accumulation_steps=1] [--gradient_checkpointing]
                    [--save_tf_checkpoint] [--stop_after_steps=N] [--seed=12345]
                    [--threads=N] writes training_state.safetensors (resumed from),
                    model.ckpt-N, eval_results.txt, train_log.jsonl
  convert           write libbert's .bert format: --model PATH --output FILE.bert
                    [--dtype f32|f16|int8] (default f32; int8: encoder kernels and word
                    embeddings, per-channel/per-row scales)
  version           print the version

--dtype on embed, extract-features and classify converts the weights while loading (default:
as the model file stores them). --backend cpu|vulkan|auto picks where the model runs (default
cpu; auto: a Vulkan GPU if there is one, else the CPU; vulkan needs a build with the vulkan
feature) on embed, extract-features, classify and squad (training and predicting) and
pretrain. --mmap=false on embed and extract-features reads a .bert file
into memory instead of mapping it (a mapped file must be replaced by rename, never rewritten
in place, while a command uses it).

Flags use Google's spelling (--vocab_file) or the dashed one (--vocab-file).
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        let _ = std::io::stderr().write_all(USAGE.as_bytes());
        return ExitCode::from(2);
    };
    let result = match command.as_str() {
        "version" | "--version" => print_stdout(&format!("bert {}\n", bert::VERSION)),
        "help" | "--help" | "-h" => print_stdout(USAGE),
        "tokenize" => tokenize::run(rest),
        "embed" => embed::run(rest),
        "extract-features" | "extract_features" => extract_features::run(rest),
        "convert" => convert::run(rest),
        "create-pretraining-data" | "create_pretraining_data" => create_pretraining_data::run(rest),
        "classify" => classify::run(rest),
        "squad" => squad::run(rest),
        "pretrain" => pretrain::run(rest),
        other => Err(format!("unknown command {other:?}\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            note!("bert: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Writes `text` to stdout; a write error (a full disk, a closed pipe) is an error message,
/// not the panic of `print!`.
fn print_stdout(text: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| format!("writing to stdout: {e}"))
}
