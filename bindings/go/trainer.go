package bert

/*
#include <stdlib.h>
#include "bert.h"
extern int32_t goBertProgress(bert_progress *, void *);
*/
import "C"

import (
	"io"
	"runtime"
	"runtime/cgo"
	"unsafe"
)

// Classifier is a fine-tuned classifier (bert_classifier). Safe for concurrent use; each
// goroutine classifies through its own ClassifierContext.
type Classifier struct {
	p *C.bert_classifier
}

var _ io.Closer = (*Classifier)(nil)

// DType is the storage of a model's weights (bert_dtype).
type DType int32

const (
	DTypeAuto DType = C.BERT_DTYPE_AUTO
	DTypeF32  DType = C.BERT_DTYPE_F32
	DTypeF16  DType = C.BERT_DTYPE_F16
	DTypeInt8 DType = C.BERT_DTYPE_INT8
)

// LoadOptions are the bert_model_params of LoadClassifierWith.
type LoadOptions struct {
	// DType converts the encoder's weights while loading (DTypeAuto: as the file stores them).
	DType DType
	// VerifyChecksums verifies the file's f16/int8 blocks while loading (reads the whole file).
	VerifyChecksums bool
}

// LoadClassifier loads a .bert file written by Trainer.Save or `bert classify --do_train`.
func LoadClassifier(path string) (*Classifier, error) {
	return LoadClassifierWith(path, LoadOptions{})
}

// LoadClassifierWith is LoadClassifier with options (e.g. the encoder quantized to int8).
func LoadClassifierWith(path string, o LoadOptions) (*Classifier, error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	params := C.bert_model_default_params()
	params.dtype = C.bert_dtype(o.DType)
	params.verify_checksums = cBool(o.VerifyChecksums)
	var p *C.bert_classifier
	if err := call(func() C.bert_status { return C.bert_classifier_load_file(cpath, &params, &p) }); err != nil {
		return nil, err
	}
	c := &Classifier{p: p}
	runtime.SetFinalizer(c, (*Classifier).Close)
	return c, nil
}

// Close frees the classifier.
func (c *Classifier) Close() error {
	if c != nil && c.p != nil {
		C.bert_classifier_free(c.p)
		c.p = nil
		runtime.SetFinalizer(c, nil)
	}
	return nil
}

// Labels are the label names; label id i is Labels()[i].
func (c *Classifier) Labels() []string {
	defer runtime.KeepAlive(c)
	n := int(C.bert_classifier_num_labels(c.p))
	out := make([]string, n)
	for i := range out {
		out[i] = C.GoString(C.bert_classifier_label(c.p, C.size_t(i)))
	}
	return out
}

// ClassifierContext classifies with one Classifier. Use it from one goroutine at a time.
type ClassifierContext struct {
	p   *C.bert_context
	clf *Classifier // keeps the classifier alive while the context exists
}

var _ io.Closer = (*ClassifierContext)(nil)

// NewContext makes a context for Classify: threads kernel threads (0: all cores), inputs
// truncated to maxSeqLength positions (0: the model's maximum).
func (c *Classifier) NewContext(threads, maxSeqLength int) (*ClassifierContext, error) {
	params := C.bert_context_default_params()
	params.n_threads = C.uint32_t(threads)
	params.max_seq_length = C.uint32_t(maxSeqLength)
	var p *C.bert_context
	if err := call(func() C.bert_status {
		return C.bert_context_new(C.bert_classifier_model(c.p), &params, &p)
	}); err != nil {
		return nil, err
	}
	cc := &ClassifierContext{p: p, clf: c}
	runtime.SetFinalizer(cc, (*ClassifierContext).Close)
	return cc, nil
}

// Close frees the context.
func (cc *ClassifierContext) Close() error {
	if cc != nil && cc.p != nil {
		C.bert_context_free(cc.p)
		cc.p = nil
		runtime.SetFinalizer(cc, nil)
	}
	return nil
}

// cStrings copies texts into C memory (cgo: no Go pointers to Go pointers); free releases it.
func cStrings(texts []string) (ptrs **C.char, lens *C.size_t, free func()) {
	n := len(texts)
	p := (*[1 << 28]*C.char)(C.malloc(C.size_t(n) * C.size_t(unsafe.Sizeof((*C.char)(nil)))))[:n:n]
	l := (*[1 << 28]C.size_t)(C.malloc(C.size_t(n) * C.size_t(unsafe.Sizeof(C.size_t(0)))))[:n:n]
	for i, t := range texts {
		p[i] = C.CString(t)
		l[i] = C.size_t(len(t))
	}
	return &p[0], &l[0], func() {
		for _, s := range p {
			C.free(unsafe.Pointer(s))
		}
		C.free(unsafe.Pointer(&p[0]))
		C.free(unsafe.Pointer(&l[0]))
	}
}

// Classify returns one row of class probabilities and one of logits per text. textsB is nil
// (single sentences) or holds one second text per text of textsA (pairs).
func (cc *ClassifierContext) Classify(textsA, textsB []string) (probs, logits [][]float32, err error) {
	defer runtime.KeepAlive(cc)
	n := len(textsA)
	if n == 0 {
		return [][]float32{}, [][]float32{}, nil
	}
	if textsB != nil && len(textsB) != n {
		return nil, nil, &Error{Status: ErrInvalidArg, Message: "textsB must be nil or as long as textsA"}
	}
	pa, la, freeA := cStrings(textsA)
	defer freeA()
	var pb **C.char
	var lb *C.size_t
	if textsB != nil {
		var freeB func()
		pb, lb, freeB = cStrings(textsB)
		defer freeB()
	}
	k := len(cc.clf.Labels())
	flatP := make([]float32, n*k)
	flatL := make([]float32, n*k)
	if err := call(func() C.bert_status {
		return C.bert_classify(cc.p, cc.clf.p, pa, la, pb, lb, C.size_t(n),
			(*C.float)(&flatL[0]), (*C.float)(&flatP[0]), C.size_t(n*k), nil)
	}); err != nil {
		return nil, nil, err
	}
	probs, logits = make([][]float32, n), make([][]float32, n)
	for i := range probs {
		probs[i] = flatP[i*k : (i+1)*k : (i+1)*k]
		logits[i] = flatL[i*k : (i+1)*k : (i+1)*k]
	}
	return probs, logits, nil
}

// Split chooses the example set of Trainer.AddExample and AddTSV.
type Split int32

const (
	SplitTrain Split = C.BERT_SPLIT_TRAIN
	SplitEval  Split = C.BERT_SPLIT_EVAL
)

// TrainerParams are bert_trainer_params; DefaultTrainerParams gives run_classifier.py's.
type TrainerParams struct {
	LearningRate              float32
	WarmupProportion          float32
	NumTrainEpochs            float64
	TrainBatchSize            int
	GradientAccumulationSteps int
	MaxSeqLength              int
	Threads                   int
	Seed                      uint64
	// Labels names the labels (id = index); empty with NumLabels > 0: "0", "1", ...; both
	// empty: the labels of a fine-tuned .bert model.
	Labels    []string
	NumLabels int
	// GradientCheckpointing recomputes activations in the backward pass: less memory, the
	// same numbers.
	GradientCheckpointing bool
	// MaxGradNorm is the global-norm clipping threshold (Google's 1.0); 0 disables it.
	MaxGradNorm float32
}

// DefaultTrainerParams: lr 5e-5, 3 epochs, batch 32, warm-up 0.1, seq 128, seed 12345.
func DefaultTrainerParams() TrainerParams {
	d := C.bert_trainer_default_params()
	return TrainerParams{
		LearningRate:              float32(d.learning_rate),
		WarmupProportion:          float32(d.warmup_proportion),
		NumTrainEpochs:            float64(d.num_train_epochs),
		TrainBatchSize:            int(d.train_batch_size),
		GradientAccumulationSteps: int(d.gradient_accumulation_steps),
		MaxSeqLength:              int(d.max_seq_length),
		Threads:                   int(d.n_threads),
		Seed:                      uint64(d.seed),
		GradientCheckpointing:     d.gradient_checkpointing != 0,
		MaxGradNorm:               float32(d.max_grad_norm),
	}
}

// Progress is what the Train callback sees after each update.
type Progress struct {
	Step, TotalSteps                            uint64
	Loss, LearningRate                          float32
	GradNorm, ExamplesPerSecond, ElapsedSeconds float64
}

// EvalResult holds Trainer.Evaluate's metrics (F1 and MCC are NaN unless two labels).
type EvalResult struct {
	Examples                int
	GlobalStep              uint64
	Accuracy, Loss, F1, MCC float64
}

// Trainer fine-tunes a classifier (bert_trainer). Use it from one goroutine at a time.
type Trainer struct {
	p *C.bert_trainer
}

var _ io.Closer = (*Trainer)(nil)

// NewTrainer loads the model at modelPath (directory or file) for fine-tuning.
func NewTrainer(modelPath string, tp TrainerParams) (*Trainer, error) {
	cpath := C.CString(modelPath)
	defer C.free(unsafe.Pointer(cpath))
	params := C.bert_trainer_default_params()
	params.learning_rate = C.float(tp.LearningRate)
	params.warmup_proportion = C.float(tp.WarmupProportion)
	params.num_train_epochs = C.double(tp.NumTrainEpochs)
	params.train_batch_size = C.uint32_t(tp.TrainBatchSize)
	params.gradient_accumulation_steps = C.uint32_t(tp.GradientAccumulationSteps)
	params.max_seq_length = C.uint32_t(tp.MaxSeqLength)
	params.n_threads = C.uint32_t(tp.Threads)
	params.seed = C.uint64_t(tp.Seed)
	params.n_labels = C.size_t(tp.NumLabels)
	params.gradient_checkpointing = cBool(tp.GradientCheckpointing)
	params.max_grad_norm = C.float(tp.MaxGradNorm)
	if len(tp.Labels) > 0 {
		names, _, free := cStrings(tp.Labels)
		defer free()
		params.labels = names
		params.n_labels = C.size_t(len(tp.Labels))
	}
	var p *C.bert_trainer
	if err := call(func() C.bert_status { return C.bert_trainer_new(cpath, &params, &p) }); err != nil {
		return nil, err
	}
	t := &Trainer{p: p}
	runtime.SetFinalizer(t, (*Trainer).Close)
	return t, nil
}

// Close frees the trainer.
func (t *Trainer) Close() error {
	if t != nil && t.p != nil {
		C.bert_trainer_free(t.p)
		t.p = nil
		runtime.SetFinalizer(t, nil)
	}
	return nil
}

// AddExample adds text a (with optional second text b) labelled by id to a set.
func (t *Trainer) AddExample(split Split, label int, a string, b ...string) error {
	defer runtime.KeepAlive(t)
	ca := C.CString(a)
	defer C.free(unsafe.Pointer(ca))
	var cb *C.char
	lenB := 0
	if len(b) > 0 {
		cb = C.CString(b[0])
		defer C.free(unsafe.Pointer(cb))
		lenB = len(b[0])
	}
	return call(func() C.bert_status {
		return C.bert_trainer_add_example(t.p, C.bert_split(split), ca, C.size_t(len(a)), cb,
			C.size_t(lenB), C.int32_t(label))
	})
}

// AddTSV adds every row of a tab-separated file laid out as GLUE task taskName ("sst-2",
// "mrpc", ...).
func (t *Trainer) AddTSV(split Split, path, taskName string) error {
	defer runtime.KeepAlive(t)
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	ctask := C.CString(taskName)
	defer C.free(unsafe.Pointer(ctask))
	params := C.bert_tsv_default_params()
	params.task_name = ctask
	return call(func() C.bert_status { return C.bert_trainer_add_tsv(t.p, C.bert_split(split), cpath, &params) })
}

// Train runs up to maxSteps updates (0: to the end of the run), calling progress (may be
// nil) after each; progress returning false stops training with an *Error of status
// ErrCancelled (the update is kept; call Train again to go on).
func (t *Trainer) Train(maxSteps uint64, progress func(Progress) bool) error {
	defer runtime.KeepAlive(t)
	if progress == nil {
		return call(func() C.bert_status { return C.bert_trainer_train(t.p, C.uint64_t(maxSteps), nil, nil) })
	}
	h := cgo.NewHandle(progress)
	defer h.Delete()
	user := C.malloc(C.size_t(unsafe.Sizeof(C.uintptr_t(0))))
	defer C.free(user)
	*(*C.uintptr_t)(user) = C.uintptr_t(h)
	return call(func() C.bert_status {
		return C.bert_trainer_train(t.p, C.uint64_t(maxSteps),
			(C.bert_progress_callback)(unsafe.Pointer(C.goBertProgress)), user)
	})
}

// Evaluate scores the current parameters on the evaluation set.
func (t *Trainer) Evaluate() (EvalResult, error) {
	defer runtime.KeepAlive(t)
	var r C.bert_eval_result
	r.size = C.size_t(unsafe.Sizeof(r))
	if err := call(func() C.bert_status { return C.bert_trainer_evaluate(t.p, &r) }); err != nil {
		return EvalResult{}, err
	}
	return EvalResult{
		Examples: int(r.n_examples), GlobalStep: uint64(r.global_step),
		Accuracy: float64(r.accuracy), Loss: float64(r.loss), F1: float64(r.f1), MCC: float64(r.mcc),
	}, nil
}

func (t *Trainer) pathCall(path string, f func(*C.char) C.bert_status) error {
	defer runtime.KeepAlive(t)
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	return call(func() C.bert_status { return f(cpath) })
}

// Save writes the fine-tuned classifier (a .bert file for LoadClassifier) atomically.
func (t *Trainer) Save(path string) error {
	return t.pathCall(path, func(p *C.char) C.bert_status { return C.bert_trainer_save(t.p, p) })
}

// SaveCheckpoint writes the whole training state atomically, for Resume.
func (t *Trainer) SaveCheckpoint(path string) error {
	return t.pathCall(path, func(p *C.char) C.bert_status { return C.bert_trainer_save_checkpoint(t.p, p) })
}

// Resume continues the run saved by SaveCheckpoint (same model, params and examples).
func (t *Trainer) Resume(path string) error {
	return t.pathCall(path, func(p *C.char) C.bert_status { return C.bert_trainer_resume(t.p, p) })
}

// GlobalStep is the number of updates done.
func (t *Trainer) GlobalStep() uint64 {
	defer runtime.KeepAlive(t)
	return uint64(C.bert_trainer_global_step(t.p))
}

// NumTrainSteps is the number of updates of the whole run.
func (t *Trainer) NumTrainSteps() uint64 {
	defer runtime.KeepAlive(t)
	return uint64(C.bert_trainer_num_train_steps(t.p))
}
