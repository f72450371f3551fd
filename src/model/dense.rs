//! The two building blocks every part uses: a dense layer (`tf.layers.dense`: `x @ kernel +
//! bias`, kernel `[in, out]`) and a LayerNorm (`modeling.py: layer_norm`), each with its
//! forward and backward pass.

use super::param::{Param, Visit};
use crate::backend::{
    Activation, Backend, Dropout, Layout, MatrixSource, Norm, NormRecord, View, Weight,
};
use crate::weights::Weights;
use crate::{Error, Result};

/// How a kernel is held: prepared for the back end's products (inference: packed f32, f16
/// or int8), or plain f32 with a gradient (training).
enum Kernel<B: Backend> {
    Prepared(B::Matrix),
    Plain(Param<B>, Layout),
}

/// A dense layer: `y = act(x @ kernel + bias)`.
pub struct Dense<B: Backend> {
    kernel: Kernel<B>,
    bias: Param<B>,
    in_dim: usize,
    out_dim: usize,
    /// The checkpoint names of kernel and bias within the layer's scope.
    names: (&'static str, &'static str),
}

impl<B: Backend> std::fmt::Debug for Dense<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Dense[{}, {}]", self.in_dim, self.out_dim)
    }
}

impl<B: Backend> Dense<B> {
    /// `{scope}/kernel` `[in, out]` and `{scope}/bias` `[out]`: prepared by the back end on
    /// the kernel's own storage, or plain f32 with gradients when `trainable` (a quantized
    /// kernel cannot be trained).
    pub fn load(
        b: &B,
        w: &Weights,
        scope: &str,
        (in_dim, out_dim): (usize, usize),
        trainable: bool,
    ) -> Result<Self> {
        Self::load_named(
            b,
            w,
            scope,
            ("kernel", "bias"),
            Layout::InOut,
            (in_dim, out_dim),
            trainable,
        )
    }

    /// A head's output layer: `{scope}output_weights` `[out, in]` (applied as
    /// `x @ output_weightsᵀ`) and `{scope}output_bias` `[out]`.
    pub fn load_output(
        b: &B,
        w: &Weights,
        scope: &str,
        (in_dim, out_dim): (usize, usize),
        trainable: bool,
    ) -> Result<Self> {
        let names = ("output_weights", "output_bias");
        Self::load_named(
            b,
            w,
            scope,
            names,
            Layout::OutIn,
            (in_dim, out_dim),
            trainable,
        )
    }

    fn load_named(
        b: &B,
        w: &Weights,
        scope: &str,
        names: (&'static str, &'static str),
        layout: Layout,
        (in_dim, out_dim): (usize, usize),
        trainable: bool,
    ) -> Result<Self> {
        let sep = if scope.is_empty() || scope.ends_with('/') {
            ""
        } else {
            "/"
        };
        let (kname, bname) = (
            format!("{scope}{sep}{}", names.0),
            format!("{scope}{sep}{}", names.1),
        );
        let shape = match layout {
            Layout::InOut => [in_dim, out_dim],
            Layout::OutIn => [out_dim, in_dim],
        };
        let kernel = match (w.quantized(&kname), trainable) {
            (Some(q), false) => {
                let m = b
                    .matrix(MatrixSource::Quantized(q), in_dim, out_dim)
                    .map_err(|e| Error::Shape(format!("tensor {kname}: {e}")))?;
                Kernel::Prepared(m)
            }
            (Some(q), true) => {
                return Err(Error::Unsupported(format!(
                    "tensor {kname} is stored as {}: a model is trained from f32 weights \
                     (load the f32 original)",
                    q.dtype()
                )))
            }
            (None, false) => {
                let values = w.get(&kname, &shape)?;
                Kernel::Prepared(b.matrix(MatrixSource::F32(values, layout), in_dim, out_dim)?)
            }
            (None, true) => {
                Kernel::Plain(Param::new(b, w.get(&kname, &shape)?, &shape, true), layout)
            }
        };
        Ok(Dense {
            kernel,
            bias: Param::new(b, w.get(&bname, &[out_dim])?, &[out_dim], trainable),
            in_dim,
            out_dim,
            names,
        })
    }

    /// A prepared dense layer from a kernel and its bias (the fused QKV projection).
    pub(crate) fn prepared(
        b: &B,
        kernel: MatrixSource<'_>,
        bias: &[f32],
        (in_dim, out_dim): (usize, usize),
    ) -> Result<Self> {
        let m = b.matrix(kernel, in_dim, out_dim)?;
        Ok(Dense {
            kernel: Kernel::Prepared(m),
            bias: Param::new(b, bias, &[out_dim], false),
            in_dim,
            out_dim,
            names: ("kernel", "bias"),
        })
    }

    pub fn in_dim(&self) -> usize {
        self.in_dim
    }

    pub fn out_dim(&self) -> usize {
        self.out_dim
    }

    /// The kernel's storage.
    pub fn dtype(&self) -> crate::weights::DType {
        match &self.kernel {
            Kernel::Prepared(m) => B::matrix_dtype(m),
            Kernel::Plain(..) => crate::weights::DType::F32,
        }
    }

    /// The kernel as the ops take it.
    pub(crate) fn weight(&self) -> Weight<'_, B> {
        match &self.kernel {
            Kernel::Prepared(m) => Weight::Prepared(m),
            Kernel::Plain(p, layout) => Weight::Plain(&p.value, *layout),
        }
    }

    /// `out[rows, out] = act(x[rows, in] @ kernel + bias)`.
    pub fn forward(
        &self,
        ex: &mut B::Exec,
        x: View<'_, B>,
        rows: usize,
        out: &mut B::Buf,
        act: Activation,
    ) {
        let (i, o) = (self.in_dim, self.out_dim);
        B::dense(
            ex,
            self.weight(),
            i,
            o,
            Some(&self.bias.value),
            x,
            rows,
            out,
            act,
        );
    }

    /// Backward from `dy: [rows, out]` (the gradient of `x @ kernel + bias`): adds
    /// `xᵀ dy` to the kernel's gradient and the column sums of `dy` to the bias's, and
    /// writes (or adds, `accumulate`) `dy @ kernelᵀ` into `dx` when asked.
    pub fn backward(
        &mut self,
        ex: &mut B::Exec,
        x: View<'_, B>,
        dy: View<'_, B>,
        rows: usize,
        dx: Option<(&mut B::Buf, bool)>,
    ) {
        let (i, o) = (self.in_dim, self.out_dim);
        let Kernel::Plain(kernel, layout) = &mut self.kernel else {
            panic!("backward pass through a prepared (inference) kernel");
        };
        B::dense_weight_grad(ex, x, dy, rows, i, o, *layout, kernel.grad());
        B::column_sums(ex, dy, rows, o, self.bias.grad());
        if let Some((dx, accumulate)) = dx {
            B::dense_input_grad(ex, &kernel.value, *layout, i, o, dy, rows, dx, accumulate);
        }
    }
}

impl<B: Backend> Visit<B> for Dense<B> {
    fn visit(&self, scope: &str, f: &mut dyn FnMut(&str, &Param<B>)) {
        if let Kernel::Plain(p, _) = &self.kernel {
            f(&format!("{scope}{}", self.names.0), p);
        }
        f(&format!("{scope}{}", self.names.1), &self.bias);
    }
    fn visit_mut(&mut self, scope: &str, f: &mut dyn FnMut(&str, &mut Param<B>)) {
        if let Kernel::Plain(p, _) = &mut self.kernel {
            f(&format!("{scope}{}", self.names.0), p);
        }
        f(&format!("{scope}{}", self.names.1), &mut self.bias);
    }
}

/// `{scope}/LayerNorm/gamma` and `/beta`, both `[width]`.
#[derive(Debug)]
pub struct LayerNorm<B: Backend> {
    beta: Param<B>,
    gamma: Param<B>,
    eps: f32,
    width: usize,
}

super::param::params!(LayerNorm { "beta" => beta, "gamma" => gamma });

impl<B: Backend> LayerNorm<B> {
    /// Loads `{scope}/gamma` and `{scope}/beta` (scope ends in `LayerNorm`).
    pub fn load(
        b: &B,
        w: &Weights,
        scope: &str,
        width: usize,
        eps: f32,
        trainable: bool,
    ) -> Result<Self> {
        let shape = [width];
        Ok(LayerNorm {
            gamma: Param::new(
                b,
                w.get(&format!("{scope}/gamma"), &shape)?,
                &shape,
                trainable,
            ),
            beta: Param::new(
                b,
                w.get(&format!("{scope}/beta"), &shape)?,
                &shape,
                trainable,
            ),
            eps,
            width,
        })
    }

    /// `x = LayerNorm(drop(x) + residual)` over `x: [rows, width]`, recording what the
    /// backward pass reads when asked.
    pub(crate) fn forward(
        &self,
        ex: &mut B::Exec,
        x: &mut B::Buf,
        rows: usize,
        residual: Option<&B::Buf>,
        drop: Option<Dropout>,
        record: Option<&mut NormRecord<B>>,
    ) {
        let norm = Norm {
            gamma: &self.gamma.value,
            beta: &self.beta.value,
            eps: self.eps,
        };
        B::layer_norm(ex, x, rows, self.width, residual, drop, norm, record);
    }

    /// Backward from `dy`: adds the gradients of gamma and beta and writes the gradient of
    /// the normalised sum into `dsum` (that of the residual), and with `branch` that of the
    /// dropped branch into its buffer.
    pub(crate) fn backward(
        &mut self,
        ex: &mut B::Exec,
        dy: &B::Buf,
        rows: usize,
        record: &NormRecord<B>,
        dsum: &mut B::Buf,
        branch: Option<(Option<Dropout>, &mut B::Buf)>,
    ) {
        let (gamma, beta) = (&mut self.gamma, &mut self.beta);
        let dgamma = &mut gamma
            .grad
            .as_mut()
            .expect("backward pass on an inference model")
            .buf;
        let dbeta = beta.grad();
        B::layer_norm_backward(
            ex,
            dy,
            rows,
            self.width,
            record,
            &gamma.value,
            dgamma,
            dbeta,
            dsum,
            branch,
        );
    }
}
