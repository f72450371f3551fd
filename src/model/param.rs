//! Parameters: every tensor a part holds, visited by the checkpoint's own names.
//!
//! A part lists its tensors once, with their names relative to its scope (`params!`), and
//! gets [`Visit`]: the trainer, the optimizer, the checkpoint writer and the tests walk a
//! model by Google's variable names (`bert/encoder/layer_3/attention/self/query/kernel`)
//! without any index kept by hand.

use std::fmt;

use crate::backend::Backend;

/// A gradient buffer and how it counts in the global norm.
pub struct Grad<B: Backend> {
    pub buf: B::Buf,
    /// For a gathered table (the word embeddings): `Σ ‖row‖²` over every gathered row
    /// occurrence, the norm TensorFlow takes of the `IndexedSlices` gradient of `tf.gather`
    /// (an id occurring twice counts `‖a‖² + ‖b‖²`, not `‖a + b‖²`). `None`: `Σ buf²`.
    pub occurrence_sq: Option<f64>,
    /// A dense gradient was added too (the masked LM's output layer, tied to the word
    /// embeddings): TensorFlow then sums both into one dense tensor, whose norm is `Σ buf²`.
    pub dense: bool,
}

/// A tensor of a part: its values and, in a trainable model, its gradient (same shape).
pub struct Param<B: Backend> {
    pub value: B::Buf,
    pub grad: Option<Grad<B>>,
    pub shape: Vec<usize>,
}

impl<B: Backend> Param<B> {
    /// A parameter on `backend` holding `values` of `shape`, with a zero gradient when
    /// `trainable`.
    pub fn new(backend: &B, values: &[f32], shape: &[usize], trainable: bool) -> Param<B> {
        let grad = trainable.then(|| Grad {
            buf: backend.upload(&vec![0.0; values.len()]),
            occurrence_sq: None,
            dense: false,
        });
        Param {
            value: backend.upload(values),
            grad,
            shape: shape.to_vec(),
        }
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the tensor has no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The gradient buffer of a trainable parameter. Panics on an inference model's
    /// parameter: backward passes run only on trainable models (checked where they start).
    pub(crate) fn grad(&mut self) -> &mut B::Buf {
        &mut self
            .grad
            .as_mut()
            .expect("backward pass on a model built for inference")
            .buf
    }
}

impl<B: Backend> fmt::Debug for Param<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Param{:?}", self.shape)
    }
}

/// Walks a part's parameters by name.
pub trait Visit<B: Backend> {
    /// Calls `f(name, param)` for every parameter, in the order of Google's
    /// `tf.trainable_variables()`; names are `scope` followed by the checkpoint's own path.
    fn visit(&self, scope: &str, f: &mut dyn FnMut(&str, &Param<B>));
    /// [`Visit::visit`] with mutable access.
    fn visit_mut(&mut self, scope: &str, f: &mut dyn FnMut(&str, &mut Param<B>));
}

impl<B: Backend> Visit<B> for Param<B> {
    fn visit(&self, scope: &str, f: &mut dyn FnMut(&str, &Param<B>)) {
        f(scope, self)
    }
    fn visit_mut(&mut self, scope: &str, f: &mut dyn FnMut(&str, &mut Param<B>)) {
        f(scope, self)
    }
}

impl<B: Backend, T: Visit<B>> Visit<B> for Option<T> {
    fn visit(&self, scope: &str, f: &mut dyn FnMut(&str, &Param<B>)) {
        if let Some(t) = self {
            t.visit(scope, f)
        }
    }
    fn visit_mut(&mut self, scope: &str, f: &mut dyn FnMut(&str, &mut Param<B>)) {
        if let Some(t) = self {
            t.visit_mut(scope, f)
        }
    }
}

impl<B: Backend, T: Visit<B>> Visit<B> for Vec<T> {
    /// Element `i` is `{scope}layer_{i}/` (the encoder's layers).
    fn visit(&self, scope: &str, f: &mut dyn FnMut(&str, &Param<B>)) {
        for (i, t) in self.iter().enumerate() {
            t.visit(&format!("{scope}layer_{i}/"), f)
        }
    }
    fn visit_mut(&mut self, scope: &str, f: &mut dyn FnMut(&str, &mut Param<B>)) {
        for (i, t) in self.iter_mut().enumerate() {
            t.visit_mut(&format!("{scope}layer_{i}/"), f)
        }
    }
}

/// Implements [`Visit`] for a part from its list of `"name" => field` pairs, in order: a
/// field is a [`Param`] (its full name) or a sub-part (a scope, ending in `/`).
macro_rules! params {
    ($ty:ident { $($name:literal => $field:ident),* $(,)? }) => {
        impl<B: $crate::backend::Backend> $crate::model::param::Visit<B> for $ty<B> {
            fn visit(
                &self,
                scope: &str,
                f: &mut dyn FnMut(&str, &$crate::model::param::Param<B>),
            ) {
                $( self.$field.visit(&format!("{scope}{}", $name), f); )*
            }
            fn visit_mut(
                &mut self,
                scope: &str,
                f: &mut dyn FnMut(&str, &mut $crate::model::param::Param<B>),
            ) {
                $( self.$field.visit_mut(&format!("{scope}{}", $name), f); )*
            }
        }
    };
}
pub(crate) use params;
