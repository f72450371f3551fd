package bert

/*
#include <stdlib.h>
#include "bert.h"
extern int32_t goBertPretrainProgress(bert_pretrain_progress *, void *);
*/
import "C"

import (
	"io"
	"runtime"
	"runtime/cgo"
	"unsafe"
)

// PretrainingDataOptions are bert_pretraining_data_params: create_pretraining_data.py's flags.
type PretrainingDataOptions struct {
	// InputFile and OutputFile are comma-separated (globs allowed in InputFile), as the flags.
	InputFile, OutputFile, VocabFile   string
	MaxSeqLength, MaxPredictionsPerSeq int
	RandomSeed                         int64
	DupeFactor                         int
	// Threads for tokenizing and encoding (0: all cores); the output does not depend on it.
	Threads                      int
	MaskedLMProb, ShortSeqProb   float64
	DoLowerCase, DoWholeWordMask bool
}

// DefaultPretrainingDataOptions are the script's defaults (the paths empty).
func DefaultPretrainingDataOptions() PretrainingDataOptions {
	d := C.bert_pretraining_data_default_params()
	return PretrainingDataOptions{
		MaxSeqLength: int(d.max_seq_length), MaxPredictionsPerSeq: int(d.max_predictions_per_seq),
		RandomSeed: int64(d.random_seed), DupeFactor: int(d.dupe_factor), Threads: int(d.n_threads),
		MaskedLMProb: float64(d.masked_lm_prob), ShortSeqProb: float64(d.short_seq_prob),
		DoLowerCase: d.do_lower_case != 0, DoWholeWordMask: d.do_whole_word_mask != 0,
	}
}

// PretrainingDataSummary is what CreatePretrainingData read and wrote.
type PretrainingDataSummary struct {
	InputFiles                               int
	InputBytes, Documents, Tokens, Instances uint64
}

// CreatePretrainingData writes the records create_pretraining_data.py writes for the same
// input and options.
func CreatePretrainingData(o PretrainingDataOptions) (PretrainingDataSummary, error) {
	paths, _, free := cStrings([]string{o.InputFile, o.OutputFile, o.VocabFile})
	defer free()
	ps := (*[3]*C.char)(unsafe.Pointer(paths))
	p := C.bert_pretraining_data_default_params()
	p.input_file, p.output_file, p.vocab_file = ps[0], ps[1], ps[2]
	p.max_seq_length = C.uint32_t(o.MaxSeqLength)
	p.max_predictions_per_seq = C.uint32_t(o.MaxPredictionsPerSeq)
	p.random_seed = C.int64_t(o.RandomSeed)
	p.dupe_factor = C.uint32_t(o.DupeFactor)
	p.n_threads = C.uint32_t(o.Threads)
	p.masked_lm_prob = C.double(o.MaskedLMProb)
	p.short_seq_prob = C.double(o.ShortSeqProb)
	p.do_lower_case = cBool(o.DoLowerCase)
	p.do_whole_word_mask = cBool(o.DoWholeWordMask)
	var s C.bert_pretraining_data_summary
	s.size = C.size_t(unsafe.Sizeof(s))
	if err := call(func() C.bert_status { return C.bert_pretraining_data_create(&p, nil, nil, &s) }); err != nil {
		return PretrainingDataSummary{}, err
	}
	return PretrainingDataSummary{
		InputFiles: int(s.n_input_files), InputBytes: uint64(s.input_bytes), Documents: uint64(s.n_documents),
		Tokens: uint64(s.n_tokens), Instances: uint64(s.n_instances),
	}, nil
}

// PretrainerParams are bert_pretrainer_params: run_pretraining.py's flags.
type PretrainerParams struct {
	// InputFile and EvalInputFile: comma-separated TFRecords or globs ("" for none; the
	// evaluation defaults to InputFile). OutputDir receives the state, which a new
	// Pretrainer on it resumes, and eval_results.txt.
	InputFile, EvalInputFile, OutputDir       string
	MaxSeqLength, MaxPredictionsPerSeq        int
	TrainBatchSize, GradientAccumulationSteps int
	LearningRate                              float32
	Threads                                   int
	NumTrainSteps, NumWarmupSteps, Seed       uint64
	SaveCheckpointsSteps                      uint64
	EvalBatchSize, MaxEvalSteps               int
	Dropout, GradientCheckpointing            bool
}

// DefaultPretrainerParams are run_pretraining.py's defaults (the paths empty).
func DefaultPretrainerParams() PretrainerParams {
	d := C.bert_pretrainer_default_params()
	return PretrainerParams{
		MaxSeqLength: int(d.max_seq_length), MaxPredictionsPerSeq: int(d.max_predictions_per_seq),
		TrainBatchSize: int(d.train_batch_size), GradientAccumulationSteps: int(d.gradient_accumulation_steps),
		LearningRate: float32(d.learning_rate), Threads: int(d.n_threads),
		NumTrainSteps: uint64(d.num_train_steps), NumWarmupSteps: uint64(d.num_warmup_steps),
		Seed: uint64(d.seed), SaveCheckpointsSteps: uint64(d.save_checkpoints_steps),
		EvalBatchSize: int(d.eval_batch_size), MaxEvalSteps: int(d.max_eval_steps),
		Dropout: d.dropout != 0, GradientCheckpointing: d.gradient_checkpointing != 0,
	}
}

// PretrainProgress is bert_pretrain_progress: one update.
type PretrainProgress struct {
	Step, TotalSteps                       uint64
	Loss, LearningRate                     float32
	GradNorm                               float64
	MaskedLMLoss, MaskedLMAccuracy         float64
	NextSentenceLoss, NextSentenceAccuracy float64
	ElapsedSeconds                         float64
}

// PretrainEvalResult is run_pretraining.py's metric_fn (eval_results.txt).
type PretrainEvalResult struct {
	Examples, GlobalStep                   uint64
	Loss, MaskedLMLoss, MaskedLMAccuracy   float64
	NextSentenceLoss, NextSentenceAccuracy float64
}

// Pretrainer is a pre-training run (bert_pretrainer). Use it from one goroutine at a time.
type Pretrainer struct {
	p *C.bert_pretrainer
}

var _ io.Closer = (*Pretrainer)(nil)

// NewPretrainer starts a run from configFile (bert_config.json) with initCheckpoint ("" =
// from scratch), or from any model initCheckpoint names with configFile "". It resumes from
// OutputDir's state when there is one.
func NewPretrainer(configFile, initCheckpoint string, pp PretrainerParams) (*Pretrainer, error) {
	strs, _, free := cStrings([]string{configFile, initCheckpoint, pp.InputFile, pp.EvalInputFile, pp.OutputDir})
	defer free()
	s := (*[5]*C.char)(unsafe.Pointer(strs))
	orNil := func(v string, p *C.char) *C.char {
		if v == "" {
			return nil
		}
		return p
	}
	params := C.bert_pretrainer_default_params()
	params.input_file = orNil(pp.InputFile, s[2])
	params.eval_input_file = orNil(pp.EvalInputFile, s[3])
	params.output_dir = s[4]
	params.max_seq_length = C.uint32_t(pp.MaxSeqLength)
	params.max_predictions_per_seq = C.uint32_t(pp.MaxPredictionsPerSeq)
	params.train_batch_size = C.uint32_t(pp.TrainBatchSize)
	params.gradient_accumulation_steps = C.uint32_t(pp.GradientAccumulationSteps)
	params.learning_rate = C.float(pp.LearningRate)
	params.n_threads = C.uint32_t(pp.Threads)
	params.num_train_steps = C.uint64_t(pp.NumTrainSteps)
	params.num_warmup_steps = C.uint64_t(pp.NumWarmupSteps)
	params.seed = C.uint64_t(pp.Seed)
	params.save_checkpoints_steps = C.uint64_t(pp.SaveCheckpointsSteps)
	params.eval_batch_size = C.uint32_t(pp.EvalBatchSize)
	params.max_eval_steps = C.uint32_t(pp.MaxEvalSteps)
	params.dropout = cBool(pp.Dropout)
	params.gradient_checkpointing = cBool(pp.GradientCheckpointing)
	var p *C.bert_pretrainer
	if err := call(func() C.bert_status {
		return C.bert_pretrainer_new(orNil(configFile, s[0]), orNil(initCheckpoint, s[1]), &params, &p)
	}); err != nil {
		return nil, err
	}
	t := &Pretrainer{p: p}
	runtime.SetFinalizer(t, (*Pretrainer).Close)
	return t, nil
}

// Close frees the run.
func (t *Pretrainer) Close() error {
	if t != nil && t.p != nil {
		C.bert_pretrainer_free(t.p)
		t.p = nil
		runtime.SetFinalizer(t, nil)
	}
	return nil
}

// GlobalStep is the updates done (after a resume, the saved run's).
func (t *Pretrainer) GlobalStep() uint64 {
	defer runtime.KeepAlive(t)
	return uint64(C.bert_pretrainer_global_step(t.p))
}

// NumExamples is the training examples read.
func (t *Pretrainer) NumExamples() uint64 {
	defer runtime.KeepAlive(t)
	return uint64(C.bert_pretrainer_num_examples(t.p))
}

// Train runs updates until the run is done, maxSteps were made (0: no limit), or progress
// (may be nil) returns false: then an *Error with ErrCancelled, the update kept and saved.
func (t *Pretrainer) Train(maxSteps uint64, progress func(PretrainProgress) bool) error {
	defer runtime.KeepAlive(t)
	if progress == nil {
		return call(func() C.bert_status { return C.bert_pretrainer_train(t.p, C.uint64_t(maxSteps), nil, nil) })
	}
	h := cgo.NewHandle(progress)
	defer h.Delete()
	user := C.malloc(C.size_t(unsafe.Sizeof(C.uintptr_t(0))))
	defer C.free(user)
	*(*C.uintptr_t)(user) = C.uintptr_t(h)
	return call(func() C.bert_status {
		return C.bert_pretrainer_train(t.p, C.uint64_t(maxSteps),
			(C.bert_pretrain_progress_callback)(unsafe.Pointer(C.goBertPretrainProgress)), user)
	})
}

// Evaluate runs run_pretraining.py's evaluation (also written to OutputDir/eval_results.txt).
func (t *Pretrainer) Evaluate() (PretrainEvalResult, error) {
	defer runtime.KeepAlive(t)
	var r C.bert_pretrain_eval_result
	r.size = C.size_t(unsafe.Sizeof(r))
	if err := call(func() C.bert_status { return C.bert_pretrainer_evaluate(t.p, &r) }); err != nil {
		return PretrainEvalResult{}, err
	}
	return PretrainEvalResult{
		Examples: uint64(r.n_examples), GlobalStep: uint64(r.global_step), Loss: float64(r.loss),
		MaskedLMLoss: float64(r.masked_lm_loss), MaskedLMAccuracy: float64(r.masked_lm_accuracy),
		NextSentenceLoss: float64(r.next_sentence_loss), NextSentenceAccuracy: float64(r.next_sentence_accuracy),
	}, nil
}
