package bert

// Go functions the C library calls back. A file with //export may only declare in its
// preamble, so the callers' declarations live in trainer.go and pretrain.go.

/*
#include "bert.h"
*/
import "C"

import (
	"runtime/cgo"
	"unsafe"
)

// goBertProgress is bert_trainer_train's progress callback: user points at C memory holding
// the cgo.Handle of the Go function (cgo forbids passing Go pointers to Go memory).
//
//export goBertProgress
func goBertProgress(p *C.bert_progress, user unsafe.Pointer) C.int32_t {
	f := cgo.Handle(*(*C.uintptr_t)(user)).Value().(func(Progress) bool)
	if f(Progress{
		Step:              uint64(p.step),
		TotalSteps:        uint64(p.total_steps),
		Loss:              float32(p.loss),
		LearningRate:      float32(p.learning_rate),
		GradNorm:          float64(p.grad_norm),
		ExamplesPerSecond: float64(p.examples_per_second),
		ElapsedSeconds:    float64(p.elapsed_seconds),
	}) {
		return 0
	}
	return 1
}

// goBertPretrainProgress is bert_pretrainer_train's progress callback, as goBertProgress.
//
//export goBertPretrainProgress
func goBertPretrainProgress(p *C.bert_pretrain_progress, user unsafe.Pointer) C.int32_t {
	f := cgo.Handle(*(*C.uintptr_t)(user)).Value().(func(PretrainProgress) bool)
	if f(PretrainProgress{
		Step:                 uint64(p.step),
		TotalSteps:           uint64(p.total_steps),
		Loss:                 float32(p.loss),
		LearningRate:         float32(p.learning_rate),
		GradNorm:             float64(p.grad_norm),
		MaskedLMLoss:         float64(p.masked_lm_loss),
		MaskedLMAccuracy:     float64(p.masked_lm_accuracy),
		NextSentenceLoss:     float64(p.next_sentence_loss),
		NextSentenceAccuracy: float64(p.next_sentence_accuracy),
		ElapsedSeconds:       float64(p.elapsed_seconds),
	}) {
		return 0
	}
	return 1
}
