//! Drawing the dropout masks of a training pass (`tf.nn.dropout` in `modeling.py` and the
//! heads): the mask itself is [`crate::backend::Dropout`], a key every back end expands the
//! same way; the trainer draws the keys from its seeded [`Rng`] in a fixed order —
//! embeddings; per layer the attention probabilities, the attention output, the output;
//! then the head — so a run is reproducible for a seed, whatever the thread count.

use super::rng::Rng;
use crate::backend::Dropout;
use crate::config::BertConfig;
use crate::model::{Drops, LayerDrops};

/// A fresh mask at `rate`, or `None` when dropout is off (no RNG) or the rate is 0.
pub(crate) fn draw(rng: &mut Option<&mut Rng>, rate: f32) -> Option<Dropout> {
    let rng = rng.as_deref_mut()?;
    if rate <= 0.0 {
        return None;
    }
    let key = (rng.next_u32() as u64) << 32 | rng.next_u32() as u64;
    Some(Dropout::new(key, rate))
}

/// The encoder's masks for one pass, then the head's at `head_rate`.
pub(crate) fn draw_all(
    mut rng: Option<&mut Rng>,
    c: &BertConfig,
    head_rate: f32,
) -> (Drops, Option<Dropout>) {
    let embeddings = draw(&mut rng, c.hidden_dropout_prob);
    let layers = (0..c.num_hidden_layers)
        .map(|_| LayerDrops {
            probs: draw(&mut rng, c.attention_probs_dropout_prob),
            attn: draw(&mut rng, c.hidden_dropout_prob),
            out: draw(&mut rng, c.hidden_dropout_prob),
        })
        .collect();
    let head = draw(&mut rng, head_rate);
    (Drops { embeddings, layers }, head)
}
