package bert

// Go functions the C library calls back. A file with //export may only declare in its
// preamble, so the callers' declarations live in trainer.go.

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
