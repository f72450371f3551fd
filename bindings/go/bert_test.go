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
