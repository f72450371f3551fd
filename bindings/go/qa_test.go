package bert

import (
	"bufio"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
)

const (
	squadQuestion = "Which NFL team won Super Bowl 50?"
	squadContext  = "Super Bowl 50 was an American football game to determine the champion of the National " +
		"Football League (NFL) for the 2015 season. The American Football Conference (AFC) champion Denver " +
		"Broncos defeated the National Football Conference (NFC) champion Carolina Panthers 24–10 to earn " +
		"their third Super Bowl title."
)

// TestAnswerMatchesRust answers one question with the tiny SQuAD model and compares with the
// Rust API's answers (LIBBERT_SQUAD_MODEL and LIBBERT_SQUAD_ANSWERS, written by
// examples/squad_reference.rs: "start end score text" per line, best first).
func TestAnswerMatchesRust(t *testing.T) {
	model, ref := os.Getenv("LIBBERT_SQUAD_MODEL"), os.Getenv("LIBBERT_SQUAD_ANSWERS")
	if model == "" || ref == "" {
		t.Fatal("set LIBBERT_SQUAD_MODEL and LIBBERT_SQUAD_ANSWERS (scripts/test_bindings.sh does)")
	}
	f, err := os.Open(ref)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var want []Answer
	s := bufio.NewScanner(f)
	for s.Scan() {
		parts := strings.SplitN(s.Text(), " ", 4)
		a, _ := strconv.Atoi(parts[0])
		b, _ := strconv.Atoi(parts[1])
		score, err := strconv.ParseFloat(parts[2], 32)
		if err != nil || len(parts) != 4 {
			t.Fatalf("reference line %q: %v", s.Text(), err)
		}
		want = append(want, Answer{Text: parts[3], Start: a, End: b, Score: float32(score)})
	}
	qa, err := LoadQuestionAnswerer(model)
	if err != nil {
		t.Fatal(err)
	}
	defer qa.Close()
	qc, err := qa.NewContext(1)
	if err != nil {
		t.Fatal(err)
	}
	defer qc.Close()
	got, err := qc.Answer(squadQuestion, squadContext, QAOptions{NBest: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 3 || len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Start != w.Start || g.End != w.End || g.Text != w.Text || math.Abs(float64(g.Score-w.Score)) > 1e-6 {
			t.Fatalf("answer %d: got %+v, want %+v", i, g, w)
		}
	}
	t.Logf("answer %q (%.4f)", got[0].Text, got[0].Score)
	batch, err := qc.AnswerBatch([][2]string{{squadQuestion, squadContext}, {"Who?", ""}}, QAOptions{NBest: 3})
	if err != nil || len(batch) != 2 || len(batch[1]) != 0 || len(batch[0]) != 3 || batch[0][0] != got[0] {
		t.Fatalf("batch: %v %v", batch, err)
	}
	if _, err := qc.Answer(squadQuestion, squadContext, QAOptions{NBest: 5000}); err == nil {
		t.Fatal("n_best 5000 accepted")
	}
}
