//! `optimization.py: create_optimizer`'s learning rate: linear warm-up, then linear
//! (polynomial, power 1, `cycle=False`) decay to 0.

/// Learning-rate schedule of Google's `create_optimizer`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    pub init_lr: f32,
    pub num_train_steps: u64,
    pub num_warmup_steps: u64,
}

impl Schedule {
    /// Learning rate for the update made when `global_step` updates are already done:
    /// `init_lr · gs / warmup` while `gs < warmup`, else
    /// `init_lr · (1 − min(gs, num_train_steps) / num_train_steps)`.
    pub fn learning_rate(&self, global_step: u64) -> f32 {
        if global_step < self.num_warmup_steps {
            // TF computes this in float32: init_lr * (gs / warmup).
            return self.init_lr * (global_step as f32 / self.num_warmup_steps as f32);
        }
        if self.num_train_steps == 0 {
            return 0.0;
        }
        let gs = global_step.min(self.num_train_steps) as f32;
        self.init_lr * (1.0 - gs / self.num_train_steps as f32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_schedule_and_edges() {
        let s = Schedule {
            init_lr: 2e-5,
            num_train_steps: 10,
            num_warmup_steps: 1,
        };
        let lrs: Vec<f32> = (0..3).map(|g| s.learning_rate(g)).collect();
        assert_eq!(lrs[0], 0.0);
        // f32 arithmetic, as TF: relative 1e-6.
        assert!((lrs[1] - 1.8e-5).abs() < 2e-11 && (lrs[2] - 1.6e-5).abs() < 2e-11);
        assert_eq!(s.learning_rate(10), 0.0);
        assert_eq!(s.learning_rate(50), 0.0);
        let w = Schedule {
            init_lr: 1e-4,
            num_train_steps: 100,
            num_warmup_steps: 10,
        };
        assert!((w.learning_rate(5) - 5e-5).abs() < 1e-10);
        assert!((w.learning_rate(10) - 9e-5).abs() < 1e-10);
    }
}
