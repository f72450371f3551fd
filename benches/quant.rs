//! int8 and f16 dense layers against our f32 `Dense` on BERT shapes, interleaved in one run.
//!
//! `cargo bench --bench quant` (add `-- quick` for fewer samples, `best` to report each
//! candidate's fastest sample instead of the median, `portable` for a column with the
//! portable int8 kernel, and label substrings such as `"128 x 768"` to run only
//! those rows; `-- accuracy [MODEL_DIR]` measures the error of each int8 layer of
//! all-MiniLM-L6-v2 instead, see the `accuracy` module). GOP/s = 2·rows·in·out / time for every column (an int8 multiply-add counts
//! as two operations, like an f32 FMA), median of samples of at least 20 ms each.
//! Single-threaded columns are timed by the thread's on-CPU time (the machine is shared;
//! time given to other processes does not count); two-threaded ones by wall time.

use bert::backend::cpu::Dense;
use bert::backend::int8::{Int8Path, QuantizedKernel};
use bert::backend::{Pool, WeightBytes};
use std::hint::black_box;
use std::time::Duration;

#[path = "common/peaks.rs"]
mod peaks;
use peaks::measured_peaks;
#[path = "common/timing.rs"]
mod timing;
use timing::{median, sample, values};

/// One candidate: a closure and whether it is single-threaded (timed by on-CPU time).
type Cand<'a> = (&'a mut dyn FnMut(), bool);

/// Runs the candidates interleaved, `samples` rounds; each one's median seconds (or, with
/// `best`, the fastest sample: on a loaded machine, the run least disturbed by others).
fn measure(cands: &mut [Cand<'_>], samples: usize, best: bool) -> Vec<f64> {
    for (f, _) in cands.iter_mut() {
        f(); // warm caches, scratch, pool threads and column sums
    }
    let mut times = vec![Vec::new(); cands.len()];
    for _ in 0..samples {
        for (t, (f, single)) in times.iter_mut().zip(cands.iter_mut()) {
            t.push(sample(*f, Duration::from_millis(20), *single));
        }
    }
    if best {
        return times
            .into_iter()
            .map(|t| t.into_iter().fold(f64::MAX, f64::min))
            .collect();
    }
    times.into_iter().map(median).collect()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "accuracy") {
        if let Err(e) = accuracy::run(args.get(i + 1).filter(|a| !a.starts_with("--"))) {
            eprintln!("accuracy: {e}");
            std::process::exit(1);
        }
        return;
    }
    let quick = args.iter().any(|a| a == "quick");
    let portable = args.iter().any(|a| a == "portable");
    let best = args.iter().any(|a| a == "best");
    let filter: Vec<&String> = args
        .iter()
        .filter(|a| !["quick", "portable", "best", "--bench"].contains(&a.as_str()))
        .collect();
    let wanted =
        |label: &str| filter.is_empty() || filter.iter().any(|f| label.contains(f.as_str()));
    let samples = if quick { 3 } else { 7 };
    let (p1, p2) = (Pool::single(), Pool::new(2));
    let path = Int8Path::detect();
    println!(
        "int8 path: {path:?} (activations 0..={}); f32 kernel: {:?}; {} of {samples} \
         samples (>= 20 ms each), interleaved",
        path.activation_levels(),
        bert::backend::cpu::Isa::detect(),
        if best { "fastest" } else { "medians" }
    );
    if let Some((f, q)) = measured_peaks() {
        println!(
            "register-only peaks of one core in this run: f32 FMA {f:.1} GOP/s, AVX2 int8 \
             (vpmaddubsw+vpmaddwd) {q:.1} GOP/s ({:.2}x)",
            q / f
        );
    }
    println!();
    print!("| shape (rows x in -> out) | f32 GOP/s | int8 GOP/s | int8 / f32 | f16 GOP/s | f16 / f32 |");
    if portable {
        print!(" int8 portable GOP/s |");
    }
    println!(" f32 2t GOP/s | int8 2t GOP/s | int8 / f32 (2t) |");
    print!("| --- | --- | --- | --- | --- | --- |");
    if portable {
        print!(" --- |");
    }
    println!(" --- | --- | --- |");
    let widths = [
        ("MiniLM", 384, 384),
        ("MiniLM", 384, 1536),
        ("MiniLM", 1536, 384),
        ("BERT-base", 768, 768),
        ("BERT-base", 768, 3072),
        ("BERT-base", 3072, 768),
    ];
    for rows in [16, 128] {
        for &(model, i, o) in &widths {
            let label = format!("{model} {rows} x {i} -> {o}");
            if !wanted(&label) {
                continue;
            }
            let kernel = values(i * o, 1);
            let bias = values(o, 2);
            let x = values(rows * i, 3);
            let f32d = Dense::new(i, o, kernel.clone(), bias.clone());
            let q = QuantizedKernel::quantize(&kernel, i, o);
            let int8 = Dense::new_int8(&q, bias.clone());
            let int8p = Dense::new_int8_with_path(&q, bias.clone(), Int8Path::Portable)
                .expect("portable int8 path");
            let f16_bytes: Vec<u8> = kernel
                .iter()
                .flat_map(|&w| half::f16::from_f32(w).to_le_bytes())
                .collect();
            let f16d = Dense::new_f16(i, o, WeightBytes::Owned(f16_bytes), bias.clone())
                .expect("f16 layer");
            let mut ys = vec![vec![0.0f32; rows * o]; 6];
            let [y0, y1, y2, y3, y4, y5] = &mut ys[..] else {
                unreachable!()
            };
            let mut f0 = || f32d.forward(black_box(&x), rows, y0, &p1);
            let mut f1 = || int8.forward(black_box(&x), rows, y1, &p1);
            let mut f2 = || f16d.forward(black_box(&x), rows, y2, &p1);
            let mut f3 = || int8p.forward(black_box(&x), rows, y3, &p1);
            let mut f4 = || f32d.forward(black_box(&x), rows, y4, &p2);
            let mut f5 = || int8.forward(black_box(&x), rows, y5, &p2);
            let mut cands: Vec<Cand<'_>> = vec![(&mut f0, true), (&mut f1, true), (&mut f2, true)];
            if portable {
                cands.push((&mut f3, true));
            }
            cands.push((&mut f4, false));
            cands.push((&mut f5, false));
            let t = measure(&mut cands, samples, best);
            let g = |s: f64| 2.0 * (rows * i * o) as f64 / s / 1e9;
            let (t2f, t2i) = (t[t.len() - 2], t[t.len() - 1]);
            print!(
                "| {label} | {:.1} | {:.1} | {:.2}x | {:.1} | {:.2}x |",
                g(t[0]),
                g(t[1]),
                t[0] / t[1],
                g(t[2]),
                t[0] / t[2]
            );
            if portable {
                print!(" {:.1} |", g(t[3]));
            }
            println!(" {:.1} | {:.1} | {:.2}x |", g(t2f), g(t2i), t2f / t2i);
        }
    }
}

/// `quant -- accuracy [MODEL_DIR]`: how much each int8 dense layer of all-MiniLM-L6-v2 moves
/// its output, fed with the true f32 inputs of that layer (from the f32 model on SST-2 dev
/// sentences), for weight-only quantization and for int8 with 7-bit (AVX2) and 8-bit
/// (VNNI, portable) activations. Errors are per operation, not accumulated through layers.
mod accuracy {
    use bert::backend::cpu::{self, Activation, Dense};
    use bert::backend::int8::{Int8Path, QuantizedKernel};
    use bert::backend::Pool;
    use bert::tokenizer::{EncodeOptions, Tokenizer};
    use bert::{BertModel, Context, Inputs};
    use std::path::PathBuf;

    /// Sum of squared errors, sum of squares of the reference, smallest row cosine.
    #[derive(Clone, Copy)]
    struct Err {
        se: f64,
        ss: f64,
        min_cos: f64,
    }

    impl Default for Err {
        fn default() -> Self {
            Err {
                se: 0.0,
                ss: 0.0,
                min_cos: 1.0,
            }
        }
    }

    impl Err {
        fn add(&mut self, got: &[f32], want: &[f32], width: usize) {
            for (g, w) in got.chunks(width).zip(want.chunks(width)) {
                let (mut dot, mut gg, mut ww) = (0.0f64, 0.0f64, 0.0f64);
                for (&a, &b) in g.iter().zip(w) {
                    let (a, b) = (a as f64, b as f64);
                    self.se += (a - b) * (a - b);
                    self.ss += b * b;
                    dot += a * b;
                    gg += a * a;
                    ww += b * b;
                }
                self.min_cos = self.min_cos.min(dot / (gg * ww).sqrt().max(1e-30));
            }
        }
    }

    /// The layer in three forms, and the error of each against f32.
    struct Op {
        f32: Dense,
        variants: Vec<Dense>,
        errs: Vec<Err>,
    }

    impl Op {
        fn new(w: Vec<f32>, b: Vec<f32>, i: usize, o: usize) -> Op {
            let q = QuantizedKernel::quantize(&w, i, o);
            let mut variants = vec![Dense::new(i, o, q.dequantize(), b.clone())];
            for path in [Int8Path::Avx2, Int8Path::Portable] {
                if let Ok(d) = Dense::new_int8_with_path(&q, b.clone(), path) {
                    variants.push(d);
                }
            }
            Op {
                f32: Dense::new(i, o, w, b),
                errs: vec![Err::default(); variants.len()],
                variants,
            }
        }

        /// Runs the f32 layer on `x` (returned) and records each variant's error.
        fn run(&mut self, x: &[f32], rows: usize, act: Activation, pool: &Pool) -> Vec<f32> {
            let o = self.f32.out_dim();
            let mut want = vec![0.0; rows * o];
            self.f32.forward_act(x, rows, &mut want, act, pool);
            for (d, e) in self.variants.iter().zip(&mut self.errs) {
                let mut got = vec![0.0; rows * o];
                d.forward_act(x, rows, &mut got, act, pool);
                e.add(&got, &want, o);
            }
            want
        }
    }

    pub fn run(dir: Option<&String>) -> Result<(), Box<dyn std::error::Error>> {
        let dir = dir.map(PathBuf::from).unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/libbert/all-MiniLM-L6-v2")
        });
        let (config, w) = bert::weights::load_model_files(&dir)?;
        let model = BertModel::from_weights(config.clone(), &w)?;
        let tokenizer = Tokenizer::from_vocab_file(dir.join("vocab.txt"), true)?;
        let (h, inter) = (config.hidden_size, config.intermediate_size);
        let heads = config.num_attention_heads;
        let act = match config.hidden_act {
            bert::Activation::GeluErf => Activation::GeluErf,
            _ => Activation::GeluTanh,
        };
        let get = |name: &str, shape: &[usize]| w.get_vec(name, shape);
        let mut ops: Vec<[Op; 4]> = Vec::new();
        for l in 0..config.num_hidden_layers {
            let s = format!("bert/encoder/layer_{l}");
            let mut qkv = vec![0.0; h * 3 * h];
            let mut qkv_b = Vec::new();
            for (part, name) in ["query", "key", "value"].iter().enumerate() {
                let k = get(&format!("{s}/attention/self/{name}/kernel"), &[h, h])?;
                for i in 0..h {
                    qkv[i * 3 * h + part * h..][..h].copy_from_slice(&k[i * h..][..h]);
                }
                qkv_b.extend(get(&format!("{s}/attention/self/{name}/bias"), &[h])?);
            }
            ops.push([
                Op::new(qkv, qkv_b, h, 3 * h),
                Op::new(
                    get(&format!("{s}/attention/output/dense/kernel"), &[h, h])?,
                    get(&format!("{s}/attention/output/dense/bias"), &[h])?,
                    h,
                    h,
                ),
                Op::new(
                    get(&format!("{s}/intermediate/dense/kernel"), &[h, inter])?,
                    get(&format!("{s}/intermediate/dense/bias"), &[inter])?,
                    h,
                    inter,
                ),
                Op::new(
                    get(&format!("{s}/output/dense/kernel"), &[inter, h])?,
                    get(&format!("{s}/output/dense/bias"), &[h])?,
                    inter,
                    h,
                ),
            ]);
        }
        let sst = std::fs::read_to_string("/work/shared/data/glue/SST-2/dev.tsv")
            .unwrap_or_else(|_| "a quick test sentence .\t1\n".repeat(2));
        let sentences: Vec<&str> = sst
            .lines()
            .skip(1)
            .filter_map(|l| l.split('\t').next())
            .take(64)
            .collect();
        let pool = Pool::single();
        let mut ctx = Context::new(1);
        let ln = |l: usize, which: &str| -> Result<(Vec<f32>, Vec<f32>), bert::Error> {
            let s = format!("bert/encoder/layer_{l}/{which}/LayerNorm");
            Ok((
                get(&format!("{s}/gamma"), &[h])?,
                get(&format!("{s}/beta"), &[h])?,
            ))
        };
        let norms: Vec<_> = (0..ops.len())
            .map(|l| Ok((ln(l, "attention/output")?, ln(l, "output")?)))
            .collect::<Result<_, bert::Error>>()?;
        // End to end: the encoder with every dense layer in one form (0 = f32, then the
        // variants), mean-pooled and L2-normalised as sentence-transformers does.
        let forms = 1 + ops[0][0].variants.len();
        let mut cos: Vec<Vec<f64>> = vec![Vec::new(); forms];
        for sentence in &sentences {
            let e = tokenizer.encode(sentence, None, &EncodeOptions::default())?;
            let mask: Vec<u32> = e.attention_mask.iter().map(|&m| m as u32).collect();
            let seq = e.len();
            let inputs = Inputs {
                input_ids: &e.ids,
                segment_ids: &e.type_ids,
                input_mask: &mask,
                batch: 1,
                seq,
            };
            let out = model.forward(&mut ctx, &inputs, true)?;
            // Per operation, on the f32 model's own inputs.
            for (l, op) in ops.iter_mut().enumerate() {
                let x = if l == 0 {
                    out.embedding_output()
                } else {
                    out.encoder_layer(l - 1)
                }
                .ok_or("all layers were kept")?;
                let qkv = op[0].run(x, seq, Activation::Identity, &pool);
                let mut context = vec![0.0; seq * h];
                cpu::attention(
                    &qkv,
                    1,
                    seq,
                    heads,
                    h / heads,
                    &vec![0.0; seq],
                    &mut context,
                    &pool,
                );
                let mut a = op[1].run(&context, seq, Activation::Identity, &pool);
                let ((g, b), _) = &norms[l];
                cpu::layer_norm_residual(&mut a, x, h, g, b, config.layer_norm_eps);
                let i = op[2].run(&a, seq, act, &pool);
                op[3].run(&i, seq, Activation::Identity, &pool);
            }
            let emb = out
                .embedding_output()
                .ok_or("all layers were kept")?
                .to_vec();
            let mut pooled = Vec::new();
            for form in 0..forms {
                fn pick(op: &Op, form: usize) -> &Dense {
                    if form == 0 {
                        &op.f32
                    } else {
                        &op.variants[form - 1]
                    }
                }
                let dense = |op| pick(op, form);
                let mut x = emb.clone();
                for (l, op) in ops.iter().enumerate() {
                    let mut qkv = vec![0.0; seq * 3 * h];
                    dense(&op[0]).forward(&x, seq, &mut qkv, &pool);
                    let mut context = vec![0.0; seq * h];
                    cpu::attention(
                        &qkv,
                        1,
                        seq,
                        heads,
                        h / heads,
                        &vec![0.0; seq],
                        &mut context,
                        &pool,
                    );
                    let mut a = vec![0.0; seq * h];
                    dense(&op[1]).forward(&context, seq, &mut a, &pool);
                    let ((g1, b1), (g2, b2)) = &norms[l];
                    cpu::layer_norm_residual(&mut a, &x, h, g1, b1, config.layer_norm_eps);
                    let mut i = vec![0.0; seq * inter];
                    dense(&op[2]).forward_act(&a, seq, &mut i, act, &pool);
                    let mut y = vec![0.0; seq * h];
                    dense(&op[3]).forward(&i, seq, &mut y, &pool);
                    cpu::layer_norm_residual(&mut y, &a, h, g2, b2, config.layer_norm_eps);
                    x = y;
                }
                if form == 0 {
                    let diff = x
                        .iter()
                        .zip(out.sequence_output())
                        .map(|(a, b)| (a - b).abs())
                        .fold(0.0f32, f32::max);
                    assert!(diff < 1e-3, "the harness reproduces the model ({diff})");
                }
                let mut v = vec![0.0f64; h];
                for row in x.chunks(h) {
                    for (s, &r) in v.iter_mut().zip(row) {
                        *s += r as f64 / seq as f64;
                    }
                }
                pooled.push(v);
            }
            for form in 0..forms {
                let (a, b) = (&pooled[form], &pooled[0]);
                let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
                let na: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
                let nb: f64 = b.iter().map(|x| x * x).sum::<f64>().sqrt();
                cos[form].push(dot / (na * nb));
            }
        }
        let stats = |c: &[f64]| {
            let mean = c.iter().sum::<f64>() / c.len() as f64;
            let min = c.iter().copied().fold(1.0f64, f64::min);
            (mean, min)
        };
        println!("End to end (mean-pooled sentence embedding, cosine to f32):");
        println!();
        println!("| dense layers | mean cosine | min cosine |");
        println!("| --- | --- | --- |");
        let labels = [
            "weight-only int8",
            "int8, 7-bit activations (AVX2)",
            "int8, 8-bit activations (VNNI, portable)",
        ];
        for form in 1..forms {
            let (mean, min) = stats(&cos[form]);
            println!("| {} | {mean:.5} | {min:.5} |", labels[form - 1]);
        }
        println!();
        println!(
            "all-MiniLM-L6-v2, {} SST-2 dev sentences (one per call), {} layers; relative error \
             ‖y − y_f32‖/‖y_f32‖ over all outputs, and the smallest cosine of an output row",
            sentences.len(),
            ops.len()
        );
        println!();
        println!("| dense layer (input) | weight-only int8 | int8, 7-bit activations (AVX2) | int8, 8-bit activations (VNNI, portable) | min row cos 7-bit | min row cos 8-bit |");
        println!("| --- | --- | --- | --- | --- | --- |");
        let names = [
            "attention q,k,v (layer input)",
            "attention output (context)",
            "intermediate + GELU (attention output)",
            "output (GELU output)",
        ];
        for (k, name) in names.iter().enumerate() {
            let mut tot = [Err::default(); 3];
            for op in &ops {
                for (t, e) in tot.iter_mut().zip(&op[k].errs) {
                    t.se += e.se;
                    t.ss += e.ss;
                    t.min_cos = t.min_cos.min(e.min_cos);
                }
            }
            let rel = |e: &Err| (e.se / e.ss).sqrt();
            println!(
                "| {name} | {:.2e} | {:.2e} | {:.2e} | {:.5} | {:.5} |",
                rel(&tot[0]),
                rel(&tot[1]),
                rel(&tot[2]),
                tot[1].min_cos,
                tot[2].min_cos
            );
        }
        Ok(())
    }
}
