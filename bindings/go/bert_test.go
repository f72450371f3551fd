package bert

import (
	"bufio"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
)

const sentence = "The quick brown fox jumps over the lazy dog."

// modelDir and referenceFile come from scripts/test_bindings.sh: LIBBERT_MODEL (the
// all-MiniLM-L6-v2 directory) and LIBBERT_REFERENCE (the Rust API's embedding, one float per
// line, written by examples/embed_reference.rs).
func setup(t *testing.T) (string, []float32) {
	dir := os.Getenv("LIBBERT_MODEL")
	ref := os.Getenv("LIBBERT_REFERENCE")
	if dir == "" || ref == "" {
		t.Fatal("set LIBBERT_MODEL and LIBBERT_REFERENCE (scripts/test_bindings.sh does)")
	}
	f, err := os.Open(ref)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var v []float32
	s := bufio.NewScanner(f)
	for s.Scan() {
		x, err := strconv.ParseFloat(s.Text(), 32)
		if err != nil {
			t.Fatal(err)
		}
		v = append(v, float32(x))
	}
	return dir, v
}

func maxAbsDiff(a, b []float32) float64 {
	m := 0.0
	for i := range a {
		m = math.Max(m, math.Abs(float64(a[i]-b[i])))
	}
	return m
}

func TestEmbedMatchesRust(t *testing.T) {
	dir, ref := setup(t)
	if VersionNumber() != HeaderVersionNumber {
		t.Fatalf("library %d, header %d", VersionNumber(), HeaderVersionNumber)
	}
	m, err := LoadModel(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	c, err := NewContext(m, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	v, err := c.Embed([]string{sentence, "Hello world"}, PoolMean, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(v) != 2 || len(v[0]) != len(ref) || len(ref) != 384 {
		t.Fatalf("shapes: %d x %d, reference %d", len(v), len(v[0]), len(ref))
	}
	d := maxAbsDiff(v[0], ref)
	t.Logf("Go: max abs diff vs Rust API %g", d)
	if d > 1e-6 {
		t.Fatalf("max abs diff %g > 1e-6", d)
	}
}

func TestTokenizeEncodeHiddenStates(t *testing.T) {
	dir, _ := setup(t)
	m, err := LoadModel(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	toks, err := m.Tokenize("The quick brown fox")
	if err != nil || len(toks) != 4 || toks[3].Start != 16 || toks[3].End != 19 {
		t.Fatalf("tokenize: %v %v", toks, err)
	}
	tok, err := NewTokenizer(filepath.Join(dir, "vocab.txt"), true)
	if err != nil {
		t.Fatal(err)
	}
	defer tok.Close()
	toks2, _ := tok.Tokenize("The quick brown fox")
	if len(toks2) != 4 || toks2[0] != toks[0] {
		t.Fatalf("standalone tokenizer: %v", toks2)
	}
	c, _ := NewContext(m, 1)
	defer c.Close()
	e, err := c.Encode("Hello world", 0, "fox")
	if err != nil || len(e.IDs) != 6 || e.IDs[0] != 101 || e.TypeIDs[4] != 1 {
		t.Fatalf("encode: %+v %v", e, err)
	}
	data, layers, tokens, err := c.HiddenStates("Hello world")
	if err != nil || layers != 7 || tokens != 4 || len(data) != 7*4*384 {
		t.Fatalf("hidden states: %d %d %d %v", len(data), layers, tokens, err)
	}
}

func TestErrors(t *testing.T) {
	dir, _ := setup(t)
	_, err := LoadModel("/nonexistent/model")
	var e *Error
	if !errors.As(err, &e) || e.Status != ErrIO || e.Message == "" {
		t.Fatalf("missing model: %v", err)
	}
	_, err = LoadModelBuffer([]byte("not a model at all"))
	if !errors.As(err, &e) || e.Status != ErrFormat {
		t.Fatalf("garbage buffer: %v", err)
	}
	m, err := LoadModel(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	c, _ := NewContext(m, 1)
	defer c.Close()
	if _, err := c.Embed([]string{"caf\xc3"}, PoolMean, true); !errors.As(err, &e) || e.Status != ErrInvalidUTF8 {
		t.Fatalf("invalid UTF-8: %v", err)
	}
	if _, err := c.Embed([]string{"x"}, Pooling(42), true); !errors.As(err, &e) || e.Status != ErrInvalidArg {
		t.Fatalf("bad pooling: %v", err)
	}
	if err := c.Close(); err != nil || c.Close() != nil {
		t.Fatal("Close twice must be fine")
	}
}

func TestGoroutinesShareModel(t *testing.T) {
	dir, ref := setup(t)
	m, err := LoadModel(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := NewContext(m, 1)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			v, err := c.Embed([]string{sentence}, PoolMean, true)
			if err == nil && maxAbsDiff(v[0], ref) > 1e-6 {
				err = errors.New("goroutine result differs")
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// A 2-update fine-tune of the real model (4 examples, batch 2, seq 32) with a progress
// callback that stops it once, evaluation on SST-2 dev rows, then the saved classifier
// classifies (LIBBERT_SST2: a directory with dev.tsv, from scripts/test_bindings.sh).
func TestTrainAndClassify(t *testing.T) {
	dir, _ := setup(t)
	sst2 := os.Getenv("LIBBERT_SST2")
	if sst2 == "" {
		t.Fatal("set LIBBERT_SST2 (scripts/test_bindings.sh does)")
	}
	p := DefaultTrainerParams()
	p.Labels = []string{"0", "1"}
	p.TrainBatchSize, p.NumTrainEpochs, p.MaxSeqLength, p.Threads = 2, 1, 32, 2
	tr, err := NewTrainer(dir, p)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	for i, s := range []string{"a gorgeous , witty , seductive movie .", "dull and lifeless",
		"an absolute joy from start to finish", "the plot is nothing but boilerplate"} {
		if err := tr.AddExample(SplitTrain, 1-i%2, s); err != nil {
			t.Fatal(err)
		}
	}
	var e *Error
	if err := tr.AddExample(SplitTrain, 2, "bad label"); !errors.As(err, &e) || e.Status != ErrLabel {
		t.Fatalf("label 2 of 2: %v", err)
	}
	if err := tr.AddTSV(SplitEval, filepath.Join(sst2, "dev.tsv"), "sst-2"); err != nil {
		t.Fatal(err)
	}
	if tr.NumTrainSteps() != 2 {
		t.Fatalf("%d steps", tr.NumTrainSteps())
	}
	var seen []uint64
	progress := func(p Progress) bool {
		seen = append(seen, p.Step)
		return p.Step != 1
	}
	if err := tr.Train(0, progress); !errors.As(err, &e) || e.Status != ErrCancelled {
		t.Fatalf("a callback returning false must cancel: %v", err)
	}
	if err := tr.Train(0, progress); err != nil {
		t.Fatal(err)
	}
	if tr.GlobalStep() != 2 || len(seen) != 2 || seen[1] != 2 {
		t.Fatalf("steps %v, global step %d", seen, tr.GlobalStep())
	}
	r, err := tr.Evaluate()
	if err != nil || r.Examples != 8 || math.IsNaN(r.Loss) {
		t.Fatalf("evaluate: %+v %v", r, err)
	}
	path := filepath.Join(t.TempDir(), "go_classifier.bert")
	if err := tr.Save(path); err != nil {
		t.Fatal(err)
	}
	clf, err := LoadClassifier(path)
	if err != nil {
		t.Fatal(err)
	}
	defer clf.Close()
	if l := clf.Labels(); len(l) != 2 || l[0] != "0" || l[1] != "1" {
		t.Fatalf("labels %v", l)
	}
	cc, err := clf.NewContext(2, 32)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	probs, logits, err := cc.Classify([]string{"a fine film", "A man plays."}, []string{"", "Music."})
	if err != nil || len(probs) != 2 || len(logits[1]) != 2 {
		t.Fatalf("classify: %v %v", probs, err)
	}
	if d := math.Abs(float64(probs[0][0]+probs[0][1]) - 1); d > 1e-6 {
		t.Fatalf("probabilities sum to 1 + %g", d)
	}
	t.Logf("trained 2 updates (eval accuracy %.3f); P(1 | a fine film) = %.4f", r.Accuracy, probs[0][1])
	clf8, err := LoadClassifierWith(path, LoadOptions{DType: DTypeInt8, VerifyChecksums: true})
	if err != nil {
		t.Fatal(err)
	}
	defer clf8.Close()
	cc8, err := clf8.NewContext(1, 32)
	if err != nil {
		t.Fatal(err)
	}
	defer cc8.Close()
	probs8, _, err := cc8.Classify([]string{"a fine film"}, nil)
	if err != nil || math.Abs(float64(probs8[0][1]-probs[0][1])) > 0.05 {
		t.Fatalf("int8 classifier: %v %v (f32: %v)", probs8, err, probs[0])
	}
	if _, err := LoadClassifier(dir); !errors.As(err, &e) || e.Status != ErrNotAClassifier {
		t.Fatalf("a pre-trained model is not a classifier: %v", err)
	}
}
