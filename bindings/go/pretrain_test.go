package bert

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sharedDir is LIBBERT_SHARED (scripts/test_bindings.sh sets it), else ../../../shared.
func sharedDir(t *testing.T) string {
	d := os.Getenv("LIBBERT_SHARED")
	if d == "" {
		d = "../../../shared"
	}
	if _, err := os.Stat(filepath.Join(d, "fixtures/tf_bert_tiny")); err != nil {
		t.Fatalf("no shared data at %s (set LIBBERT_SHARED): %v", d, err)
	}
	return d
}

// TestPretrain creates data from Google's sample text, then pre-trains the tiny checkpoint on
// the fixture's records: straight, and cancelled after step 2, freed and resumed. The numbers
// are what `bert create-pretraining-data` and `bert pretrain` give for the same flags
// (measured: 23 instances; eval_results.txt "loss = 13.923891").
func TestPretrain(t *testing.T) {
	shared := sharedDir(t)
	tiny := filepath.Join(shared, "fixtures/tf_bert_tiny")
	dir := t.TempDir()
	o := DefaultPretrainingDataOptions()
	o.InputFile = filepath.Join(shared, "data/pretrain/sample_text.txt")
	o.OutputFile = filepath.Join(dir, "sample.tfrecord")
	o.VocabFile = filepath.Join(tiny, "vocab.txt")
	o.DupeFactor, o.Threads = 2, 1
	s, err := CreatePretrainingData(o)
	if err != nil || s.Instances != 23 || s.Documents != 3 || s.Tokens != 1019 {
		t.Fatalf("create: %+v %v", s, err)
	}

	p := DefaultPretrainerParams()
	p.InputFile = filepath.Join(shared, "fixtures/pretraining_data/sample_text_s128/tf_examples.tfrecord")
	p.TrainBatchSize, p.NumTrainSteps, p.NumWarmupSteps, p.LearningRate = 8, 4, 1, 1e-4
	p.Threads, p.SaveCheckpointsSteps, p.EvalBatchSize, p.MaxEvalSteps = 1, 0, 8, 3
	run := func(out string, stopAt uint64) ([]float32, error) {
		p.OutputDir = out
		tr, err := NewPretrainer(filepath.Join(tiny, "bert_config.json"), filepath.Join(tiny, "bert_model.ckpt"), p)
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		var losses []float32
		err = tr.Train(0, func(pr PretrainProgress) bool {
			losses = append(losses, pr.Loss)
			return pr.Step != stopAt
		})
		return losses, err
	}
	straight := filepath.Join(dir, "straight")
	all, err := run(straight, 0)
	if err != nil || len(all) != 4 {
		t.Fatalf("train: %v %v", all, err)
	}
	resumed := filepath.Join(dir, "resumed")
	var e *Error
	if first, err := run(resumed, 2); !errors.As(err, &e) || e.Status != ErrCancelled || len(first) != 2 {
		t.Fatalf("cancelled run: %v %v", first, err)
	}
	rest, _ := run(resumed, 0)
	if len(rest) != 2 || rest[0] != all[2] || rest[1] != all[3] {
		t.Fatalf("resumed losses %v, straight %v", rest, all)
	}
	for _, out := range []string{straight, resumed} {
		p.OutputDir = out
		tr, err := NewPretrainer(filepath.Join(tiny, "bert_config.json"), filepath.Join(tiny, "bert_model.ckpt"), p)
		if err != nil {
			t.Fatal(err)
		}
		r, err := tr.Evaluate()
		tr.Close()
		if err != nil || r.GlobalStep != 4 || r.Examples != 24 {
			t.Fatalf("evaluate %s: %+v %v", out, r, err)
		}
		text, _ := os.ReadFile(filepath.Join(out, "eval_results.txt"))
		if !strings.Contains(string(text), "\nloss = 13.923891\n") {
			t.Fatalf("%s/eval_results.txt:\n%s", out, text)
		}
	}
	t.Logf("4 steps, losses %v; resumed after a cancel at step 2 to the same", all)
}
