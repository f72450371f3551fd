//! `bert_config.json` (Google) and `config.json` (Hugging Face): the model hyper-parameters.
//!
//! Ports `modeling.py: BertConfig`. The defaults are Google's. The one place where the two
//! formats disagree is the meaning of `"gelu"`: Google's `modeling.py` computes the tanh
//! approximation, Hugging Face's `"gelu"` is the exact erf form (its tanh form is called
//! `"gelu_new"`). That choice is made explicit in [`Activation`] and by [`ConfigFlavor`].

use std::path::Path;

use serde_json::{Map, Value};

use crate::{Error, Result};

/// The feed-forward activation (`hidden_act`), a named numeric choice: the one activation
/// type of the crate, which the dense layers also fuse into their epilogue.
pub use crate::backend::Activation;

/// Which program wrote the config, which decides what `"gelu"` means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigFlavor {
    /// Google's `bert_config.json`: `"gelu"` is the tanh approximation.
    Google,
    /// Hugging Face's `config.json`: `"gelu"` is the erf form.
    HuggingFace,
}

/// BERT hyper-parameters (`modeling.py: BertConfig`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub hidden_act: Activation,
    pub hidden_dropout_prob: f32,
    pub attention_probs_dropout_prob: f32,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub initializer_range: f32,
    /// LayerNorm epsilon inside the square root; Google's code hard-wires 1e-12.
    pub layer_norm_eps: f32,
}

impl Default for BertConfig {
    /// Google's `BertConfig` defaults (BERT-base sizes).
    fn default() -> Self {
        BertConfig {
            vocab_size: 30522,
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            intermediate_size: 3072,
            hidden_act: Activation::GeluTanh,
            hidden_dropout_prob: 0.1,
            attention_probs_dropout_prob: 0.1,
            max_position_embeddings: 512,
            type_vocab_size: 16,
            initializer_range: 0.02,
            layer_norm_eps: 1e-12,
        }
    }
}

impl BertConfig {
    /// Reads a config file: `bert_config.json` is Google's, `config.json` Hugging Face's; any
    /// other name is recognised by its contents (see [`BertConfig::from_json`]).
    pub fn from_file(path: impl AsRef<Path>) -> Result<BertConfig> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let flavor = match path.file_name().and_then(|n| n.to_str()) {
            Some("bert_config.json") => Some(ConfigFlavor::Google),
            Some("config.json") => Some(ConfigFlavor::HuggingFace),
            _ => None,
        };
        BertConfig::from_json(&text, flavor)
            .map_err(|e| Error::Config(format!("{}: {}", path.display(), strip_config(e))))
    }

    /// Reads a config file of a known flavor.
    pub fn from_file_flavor(path: impl AsRef<Path>, flavor: ConfigFlavor) -> Result<BertConfig> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        BertConfig::from_json(&text, Some(flavor))
            .map_err(|e| Error::Config(format!("{}: {}", path.display(), strip_config(e))))
    }

    /// Parses a config. With `flavor: None` a config is taken as Hugging Face's when it has
    /// any of the keys only `transformers` writes (`model_type`, `architectures`,
    /// `transformers_version`), else as Google's.
    pub fn from_json(text: &str, flavor: Option<ConfigFlavor>) -> Result<BertConfig> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| Error::Config(format!("not JSON: {e}")))?;
        let obj = value
            .as_object()
            .ok_or_else(|| Error::Config("not a JSON object".into()))?;
        let flavor = flavor.unwrap_or_else(|| {
            let hf = ["model_type", "architectures", "transformers_version"]
                .iter()
                .any(|k| obj.contains_key(*k));
            if hf {
                ConfigFlavor::HuggingFace
            } else {
                ConfigFlavor::Google
            }
        });
        let d = BertConfig::default();
        let act = match obj.get("hidden_act") {
            None => d.hidden_act,
            Some(Value::String(s)) => Activation::parse(s, flavor)?,
            Some(other) => return Err(Error::Config(format!("hidden_act: not a string: {other}"))),
        };
        let cfg = BertConfig {
            vocab_size: usize_field(obj, "vocab_size", None)?,
            hidden_size: usize_field(obj, "hidden_size", Some(d.hidden_size))?,
            num_hidden_layers: usize_field(obj, "num_hidden_layers", Some(d.num_hidden_layers))?,
            num_attention_heads: usize_field(
                obj,
                "num_attention_heads",
                Some(d.num_attention_heads),
            )?,
            intermediate_size: usize_field(obj, "intermediate_size", Some(d.intermediate_size))?,
            hidden_act: act,
            hidden_dropout_prob: f32_field(obj, "hidden_dropout_prob", d.hidden_dropout_prob)?,
            attention_probs_dropout_prob: f32_field(
                obj,
                "attention_probs_dropout_prob",
                d.attention_probs_dropout_prob,
            )?,
            max_position_embeddings: usize_field(
                obj,
                "max_position_embeddings",
                Some(d.max_position_embeddings),
            )?,
            type_vocab_size: usize_field(obj, "type_vocab_size", Some(d.type_vocab_size))?,
            initializer_range: f32_field(obj, "initializer_range", d.initializer_range)?,
            layer_norm_eps: f32_field(obj, "layer_norm_eps", d.layer_norm_eps)?,
        };
        if let Some(Value::String(t)) = obj.get("position_embedding_type") {
            if t != "absolute" {
                return Err(Error::Config(format!(
                    "position_embedding_type {t:?} is not supported (only \"absolute\")"
                )));
            }
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks the sizes are usable: nothing zero, hidden divisible by heads, probabilities in
    /// [0, 1), epsilon positive.
    pub fn validate(&self) -> Result<()> {
        let sizes = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ];
        for (name, v) in sizes {
            if v == 0 {
                return Err(Error::Config(format!("{name} must be > 0")));
            }
            // Far beyond any BERT; keeps size products far from overflow.
            if v > 1 << 24 {
                return Err(Error::Config(format!("{name} = {v} is implausibly large")));
            }
        }
        if self.hidden_size % self.num_attention_heads != 0 {
            return Err(Error::Config(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            )));
        }
        for (name, p) in [
            ("hidden_dropout_prob", self.hidden_dropout_prob),
            (
                "attention_probs_dropout_prob",
                self.attention_probs_dropout_prob,
            ),
        ] {
            if !(0.0..1.0).contains(&p) {
                return Err(Error::Config(format!("{name} = {p} is not in [0, 1)")));
            }
        }
        if !(self.initializer_range >= 0.0 && self.initializer_range.is_finite()) {
            return Err(Error::Config(format!(
                "initializer_range = {} must be a finite standard deviation >= 0",
                self.initializer_range
            )));
        }
        if !(self.layer_norm_eps > 0.0 && self.layer_norm_eps.is_finite()) {
            return Err(Error::Config(format!(
                "layer_norm_eps = {} must be positive",
                self.layer_norm_eps
            )));
        }
        Ok(())
    }

    /// Size of one attention head (`hidden_size / num_attention_heads`).
    pub fn head_size(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Google's `bert_config.json` text for this config (sorted keys, 2-space indent). The
    /// activation is written as Google names it, so the tanh form is `"gelu"`; the erf form,
    /// which Google's code cannot express, is written `"gelu_erf"`.
    pub fn to_google_json(&self) -> String {
        let act = match self.hidden_act {
            Activation::GeluTanh => "gelu",
            Activation::GeluErf => "gelu_erf",
            Activation::Relu => "relu",
            Activation::Tanh => "tanh",
            Activation::Identity => "linear",
        };
        let mut m = serde_json::Map::new();
        m.insert(
            "attention_probs_dropout_prob".into(),
            f(self.attention_probs_dropout_prob),
        );
        m.insert("hidden_act".into(), act.into());
        m.insert("hidden_dropout_prob".into(), f(self.hidden_dropout_prob));
        m.insert("hidden_size".into(), self.hidden_size.into());
        m.insert("initializer_range".into(), f(self.initializer_range));
        m.insert("intermediate_size".into(), self.intermediate_size.into());
        m.insert("layer_norm_eps".into(), f(self.layer_norm_eps));
        m.insert(
            "max_position_embeddings".into(),
            self.max_position_embeddings.into(),
        );
        m.insert(
            "num_attention_heads".into(),
            self.num_attention_heads.into(),
        );
        m.insert("num_hidden_layers".into(), self.num_hidden_layers.into());
        m.insert("type_vocab_size".into(), self.type_vocab_size.into());
        m.insert("vocab_size".into(), self.vocab_size.into());
        serde_json::to_string_pretty(&Value::Object(m)).unwrap_or_default()
    }
}

impl BertConfig {
    /// Hugging Face's `config.json` text for this config: Google's keys with
    /// `"model_type": "bert"` and the activation as `transformers` names it (`"gelu"` is the
    /// erf form there, the tanh form `"gelu_new"`).
    pub fn to_hugging_face_json(&self) -> String {
        let mut v: Value = serde_json::from_str(&self.to_google_json()).unwrap_or_default();
        let act = match self.hidden_act {
            Activation::GeluTanh => "gelu_new",
            Activation::GeluErf => "gelu",
            Activation::Relu => "relu",
            Activation::Tanh => "tanh",
            Activation::Identity => "linear",
        };
        if let Some(m) = v.as_object_mut() {
            m.insert("hidden_act".into(), act.into());
            m.insert("model_type".into(), "bert".into());
        }
        serde_json::to_string_pretty(&v).unwrap_or_default()
    }
}

fn f(v: f32) -> Value {
    // Through the shortest f32 decimal, so 0.1f32 is written 0.1, not 0.10000000149.
    let s = format!("{v:?}");
    s.parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

impl Activation {
    /// Parses `hidden_act` as the given flavor means it (`modeling.py: get_activation`
    /// knows `linear`, `relu`, `gelu` and `tanh`).
    pub fn parse(name: &str, flavor: ConfigFlavor) -> Result<Activation> {
        Ok(match (name, flavor) {
            ("gelu", ConfigFlavor::Google) => Activation::GeluTanh,
            ("gelu", ConfigFlavor::HuggingFace) => Activation::GeluErf,
            ("gelu_new" | "gelu_pytorch_tanh" | "gelu_tanh", _) => Activation::GeluTanh,
            ("gelu_erf", _) => Activation::GeluErf,
            ("relu", _) => Activation::Relu,
            ("tanh", _) => Activation::Tanh,
            ("linear", _) => Activation::Identity,
            _ => {
                return Err(Error::Config(format!(
                    "hidden_act {name:?} is not supported (gelu, gelu_new, relu, tanh, linear)"
                )))
            }
        })
    }
}

fn strip_config(e: Error) -> String {
    match e {
        Error::Config(m) => m,
        other => other.to_string(),
    }
}

fn usize_field(obj: &Map<String, Value>, key: &str, default: Option<usize>) -> Result<usize> {
    match obj.get(key) {
        None | Some(Value::Null) => {
            default.ok_or_else(|| Error::Config(format!("missing required field {key}")))
        }
        Some(v) => v
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| Error::Config(format!("{key}: not a non-negative integer: {v}"))),
    }
}

fn f32_field(obj: &Map<String, Value>, key: &str, default: f32) -> Result<f32> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(default),
        // JSON numbers beyond f32's range became ±inf (found by fuzzing: an
        // initializer_range of -4.4e117 was accepted as -inf).
        Some(v) => v
            .as_f64()
            .map(|x| x as f32)
            .filter(|x| x.is_finite())
            .ok_or_else(|| Error::Config(format!("{key}: not a finite f32 number: {v}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOGLE: &str = r#"{"attention_probs_dropout_prob": 0.1, "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1, "hidden_size": 128, "initializer_range": 0.02,
        "intermediate_size": 512, "max_position_embeddings": 512, "num_attention_heads": 2,
        "num_hidden_layers": 2, "type_vocab_size": 2, "vocab_size": 30522}"#;

    #[test]
    fn numbers_beyond_f32_are_errors() {
        // The fuzzer's find (fuzz target `config`): -4.4e117 was read as -inf.
        let text = format!(
            "{{\"initializer_range\": -4{}2672, \"vocab_size\": 30522}}",
            "4".repeat(114)
        );
        let e = BertConfig::from_json(&text, None).unwrap_err().to_string();
        assert!(e.contains("initializer_range"), "{e}");
        for (key, value) in [("initializer_range", "-0.5"), ("layer_norm_eps", "1e39")] {
            let text = GOOGLE.replace(
                "\"vocab_size\"",
                &format!("\"{key}\": {value}, \"vocab_size\""),
            );
            let text = text.replacen(&format!("\"{key}\": 0.02, "), "", 1);
            let e = BertConfig::from_json(&text, None).unwrap_err().to_string();
            assert!(e.contains(key), "{key}: {e}");
        }
    }

    #[test]
    fn google_gelu_is_tanh_and_eps_defaults_to_1e12() {
        let c = BertConfig::from_json(GOOGLE, None).unwrap();
        assert_eq!(c.hidden_act, Activation::GeluTanh);
        assert_eq!(c.layer_norm_eps, 1e-12);
        assert_eq!(c.head_size(), 64);
    }

    #[test]
    fn hugging_face_gelu_is_erf() {
        let t = GOOGLE.replace("{", r#"{"model_type": "bert", "layer_norm_eps": 1e-5,"#);
        let c = BertConfig::from_json(&t, None).unwrap();
        assert_eq!(c.hidden_act, Activation::GeluErf);
        assert_eq!(c.layer_norm_eps, 1e-5);
        let t = t.replace("\"gelu\"", "\"gelu_new\"");
        assert_eq!(
            BertConfig::from_json(&t, None).unwrap().hidden_act,
            Activation::GeluTanh
        );
    }

    #[test]
    fn rejects_bad_configs() {
        let bad = [
            GOOGLE.replace("\"num_attention_heads\": 2", "\"num_attention_heads\": 3"),
            GOOGLE.replace("\"hidden_size\": 128", "\"hidden_size\": 0"),
            GOOGLE.replace("\"gelu\"", "\"swish\""),
            GOOGLE.replace("\"vocab_size\": 30522", "\"vocab_size\": -1"),
            GOOGLE.replace(", \"vocab_size\": 30522", ""),
            "[1, 2]".to_string(),
            "{".to_string(),
        ];
        for t in &bad {
            assert!(
                matches!(BertConfig::from_json(t, None), Err(Error::Config(_))),
                "{t}"
            );
        }
    }

    #[test]
    fn hugging_face_json_reads_back_as_the_same_config() {
        for act in [Activation::GeluTanh, Activation::GeluErf, Activation::Relu] {
            let c = BertConfig {
                hidden_act: act,
                ..BertConfig::default()
            };
            let back = BertConfig::from_json(&c.to_hugging_face_json(), None).unwrap();
            assert_eq!(back, c, "{act:?}");
        }
    }

    #[test]
    fn google_json_round_trips() {
        let c = BertConfig::from_json(GOOGLE, None).unwrap();
        let back = BertConfig::from_json(&c.to_google_json(), Some(ConfigFlavor::Google)).unwrap();
        assert_eq!(c, back);
    }
}
