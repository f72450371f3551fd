//! modeling.py: `transformer_model`: the stack of layers.

use super::layer::Layer;
use crate::config::BertConfig;
use crate::weights::Weights;
use crate::Result;

/// `bert/encoder/layer_0 .. layer_{L-1}`.
#[derive(Debug, Clone)]
pub struct Encoder {
    pub(crate) layers: Vec<Layer>,
}

impl Encoder {
    pub fn load(w: &Weights, c: &BertConfig) -> Result<Self> {
        let layers = (0..c.num_hidden_layers)
            .map(|l| Layer::load(w, c, l))
            .collect::<Result<_>>()?;
        Ok(Encoder { layers })
    }
}
