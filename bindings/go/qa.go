package bert

/*
#include <stdlib.h>
#include "bert.h"
*/
import "C"

import (
	"io"
	"runtime"
	"unsafe"
)

// QuestionAnswerer is a SQuAD-fine-tuned model (bert_qa). Safe for concurrent use; each
// goroutine answers through its own QAContext.
type QuestionAnswerer struct {
	p *C.bert_qa
}

var _ io.Closer = (*QuestionAnswerer)(nil)

// LoadQuestionAnswerer loads what `bert squad --do_predict` loads: a .bert file written by
// `bert squad --do_train`, or a TF checkpoint / safetensors model holding cls/squad/*.
func LoadQuestionAnswerer(path string) (*QuestionAnswerer, error) {
	return LoadQuestionAnswererWith(path, LoadOptions{})
}

// LoadQuestionAnswererWith is LoadQuestionAnswerer with options (e.g. the encoder in int8).
func LoadQuestionAnswererWith(path string, o LoadOptions) (*QuestionAnswerer, error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	params := C.bert_model_default_params()
	params.dtype = C.bert_dtype(o.DType)
	params.verify_checksums = cBool(o.VerifyChecksums)
	var p *C.bert_qa
	if err := call(func() C.bert_status { return C.bert_qa_load_file(cpath, &params, &p) }); err != nil {
		return nil, err
	}
	q := &QuestionAnswerer{p: p}
	runtime.SetFinalizer(q, (*QuestionAnswerer).Close)
	return q, nil
}

// Close frees the answerer.
func (q *QuestionAnswerer) Close() error {
	if q != nil && q.p != nil {
		C.bert_qa_free(q.p)
		q.p = nil
		runtime.SetFinalizer(q, nil)
	}
	return nil
}

// QAContext answers with one QuestionAnswerer. Use it from one goroutine at a time.
type QAContext struct {
	p  *C.bert_context
	qa *QuestionAnswerer // keeps the answerer alive while the context exists
}

var _ io.Closer = (*QAContext)(nil)

// NewContext makes a context for Answer with threads kernel threads (0: all cores).
func (q *QuestionAnswerer) NewContext(threads int) (*QAContext, error) {
	params := C.bert_context_default_params()
	params.n_threads = C.uint32_t(threads)
	var p *C.bert_context
	if err := call(func() C.bert_status {
		return C.bert_context_new(C.bert_qa_model(q.p), &params, &p)
	}); err != nil {
		return nil, err
	}
	qc := &QAContext{p: p, qa: q}
	runtime.SetFinalizer(qc, (*QAContext).Close)
	return qc, nil
}

// Close frees the context.
func (qc *QAContext) Close() error {
	if qc != nil && qc.p != nil {
		C.bert_context_free(qc.p)
		qc.p = nil
		runtime.SetFinalizer(qc, nil)
	}
	return nil
}

// QAOptions are bert_qa_params; a zero field keeps the library's default (20 answers of at
// most 30 WordPieces, run_squad.py's windows scaled to the model, 8 windows per batch).
type QAOptions struct {
	NBest, MaxAnswerLength                  int
	MaxSeqLength, DocStride, MaxQueryLength int
	BatchSize                               int
}

func (o QAOptions) params() C.bert_qa_params {
	p := C.bert_qa_default_params()
	set := func(field *C.uint32_t, v int) {
		if v != 0 {
			*field = C.uint32_t(v)
		}
	}
	set(&p.n_best, o.NBest)
	set(&p.max_answer_length, o.MaxAnswerLength)
	set(&p.max_seq_length, o.MaxSeqLength)
	set(&p.doc_stride, o.DocStride)
	set(&p.max_query_length, o.MaxQueryLength)
	set(&p.batch_size, o.BatchSize)
	return p
}

// Answer is one answer: bytes [Start, End) of the context, Text = context[Start:End], and its
// Score (softmax over the question's best candidates).
type Answer struct {
	Text       string
	Start, End int
	Score      float32
}

// Answer returns the best answers to question in context, best first (none for a context
// without words).
func (qc *QAContext) Answer(question, context string, o QAOptions) ([]Answer, error) {
	all, err := qc.AnswerBatch([][2]string{{question, context}}, o)
	if err != nil {
		return nil, err
	}
	return all[0], nil
}

// AnswerBatch answers (question, context) pairs, their windows batched together; one list
// per pair, each as Answer would return it.
func (qc *QAContext) AnswerBatch(pairs [][2]string, o QAOptions) ([][]Answer, error) {
	defer runtime.KeepAlive(qc)
	n := len(pairs)
	if n == 0 {
		return [][]Answer{}, nil
	}
	qs, cs := make([]string, n), make([]string, n)
	for i, p := range pairs {
		qs[i], cs[i] = p[0], p[1]
	}
	pq, lq, freeQ := cStrings(qs)
	defer freeQ()
	pc, lc, freeC := cStrings(cs)
	defer freeC()
	params := o.params()
	k := int(params.n_best)
	spans := make([]C.bert_qa_span, n*k)
	counts := make([]C.size_t, n)
	if err := call(func() C.bert_status {
		return C.bert_qa_answer_batch(qc.p, qc.qa.p, pq, lq, pc, lc, C.size_t(n), &params,
			&spans[0], C.size_t(len(spans)), &counts[0], nil)
	}); err != nil {
		return nil, err
	}
	out := make([][]Answer, n)
	for i := range out {
		out[i] = make([]Answer, int(counts[i]))
		for j := range out[i] {
			s := spans[i*k+j]
			a, b := int(s.start_byte), int(s.end_byte)
			out[i][j] = Answer{Text: cs[i][a:b], Start: a, End: b, Score: float32(s.score)}
		}
	}
	return out, nil
}
