// Package bert is the Go binding of libbert (Google's BERT in Rust) over its C ABI.
//
// The raw layer is cgo calls on include/bert.h; on top of it Model, Context and Tokenizer
// own their C handles and implement io.Closer. A Model is immutable and may be shared by
// goroutines; a Context must be used by one goroutine at a time (make one per goroutine) and
// keeps its Model alive. Build with libbert's pkg-config file on PKG_CONFIG_PATH
// (scripts/build_lib.sh prints its prefix).
package bert

/*
#cgo pkg-config: bert
#include <stdlib.h>
#include "bert.h"
*/
import "C"

import (
	"fmt"
	"io"
	"runtime"
	"unsafe"
)

// Status is a bert_status code.
type Status int32

// Status codes of include/bert.h.
const (
	OK                Status = C.BERT_OK
	ErrIO             Status = C.BERT_ERROR_IO
	ErrInvalidUTF8    Status = C.BERT_ERROR_INVALID_UTF8
	ErrVocab          Status = C.BERT_ERROR_VOCAB
	ErrConfig         Status = C.BERT_ERROR_CONFIG
	ErrFormat         Status = C.BERT_ERROR_FORMAT
	ErrShape          Status = C.BERT_ERROR_SHAPE
	ErrInvalidArg     Status = C.BERT_ERROR_INVALID_ARGUMENT
	ErrUnsupported    Status = C.BERT_ERROR_UNSUPPORTED
	ErrNullArgument   Status = C.BERT_ERROR_NULL_ARGUMENT
	ErrBufferTooSmall Status = C.BERT_ERROR_BUFFER_TOO_SMALL
	ErrCancelled      Status = C.BERT_ERROR_CANCELLED
	ErrInternal       Status = C.BERT_ERROR_INTERNAL
	ErrLabel          Status = C.BERT_ERROR_LABEL
	ErrDiverged       Status = C.BERT_ERROR_DIVERGED
	ErrNotAClassifier Status = C.BERT_ERROR_NOT_A_CLASSIFIER
	ErrEmptyData      Status = C.BERT_ERROR_EMPTY_DATA
)

// Pooling chooses how Embed reduces the last layer.
type Pooling int32

const (
	PoolCLS    Pooling = C.BERT_POOLING_CLS
	PoolMean   Pooling = C.BERT_POOLING_MEAN
	PoolMax    Pooling = C.BERT_POOLING_MAX
	PoolPooler Pooling = C.BERT_POOLING_POOLER
)

// Error is a failed libbert call: its status and the library's message.
type Error struct {
	Status  Status
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("libbert: %s (status %d)", e.Message, int32(e.Status))
}

// check turns a status into an error. It must run on the OS thread of the call, because the
// message is thread-local: callers lock the goroutine to its thread around the pair.
func check(s C.bert_status) error {
	if s == C.BERT_OK {
		return nil
	}
	msg := C.GoString(C.bert_last_error())
	if msg == "" {
		msg = C.GoString(C.bert_status_string(s))
	}
	return &Error{Status: Status(s), Message: msg}
}

// cBool is a Go bool as the ABI's 0/1 byte.
func cBool(b bool) C.uint8_t {
	if b {
		return 1
	}
	return 0
}

// call runs a C call and reads its message on the same OS thread.
func call(f func() C.bert_status) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return check(f())
}

// VersionNumber is the library's major*10000 + minor*100 + patch.
func VersionNumber() int { return int(C.bert_version_number()) }

// HeaderVersionNumber is BERT_VERSION_NUMBER of the header this package was built against.
const HeaderVersionNumber = C.BERT_VERSION_NUMBER

// SystemInfo describes the build and machine.
func SystemInfo() string { return C.GoString(C.bert_system_info()) }

// Model is a loaded model and its tokenizer. Safe for concurrent use.
type Model struct {
	p *C.bert_model
}

var _ io.Closer = (*Model)(nil)

// LoadModel loads a model directory or file (safetensors, TF checkpoint, .bert).
func LoadModel(path string) (*Model, error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var p *C.bert_model
	if err := call(func() C.bert_status { return C.bert_model_load_file(cpath, nil, &p) }); err != nil {
		return nil, err
	}
	m := &Model{p: p}
	runtime.SetFinalizer(m, (*Model).Close)
	return m, nil
}

// LoadModelBuffer loads a model from the bytes of a .bert file.
func LoadModelBuffer(data []byte) (*Model, error) {
	var p *C.bert_model
	var ptr unsafe.Pointer
	if len(data) > 0 {
		ptr = unsafe.Pointer(&data[0])
	}
	if err := call(func() C.bert_status {
		return C.bert_model_load_buffer(ptr, C.size_t(len(data)), nil, &p)
	}); err != nil {
		return nil, err
	}
	m := &Model{p: p}
	runtime.SetFinalizer(m, (*Model).Close)
	return m, nil
}

// Close frees the model. Contexts made from it keep it alive until they are closed too.
func (m *Model) Close() error {
	if m != nil && m.p != nil {
		C.bert_model_free(m.p)
		m.p = nil
		runtime.SetFinalizer(m, nil)
	}
	return nil
}

// HiddenSize is the length of one embedding.
func (m *Model) HiddenSize() int { return int(C.bert_model_hidden_size(m.p)) }

// NumLayers is the number of encoder layers.
func (m *Model) NumLayers() int { return int(C.bert_model_num_layers(m.p)) }

// Token is one WordPiece token: id and byte span [Start, End) in the text.
type Token struct {
	ID         uint32
	Start, End int
}

func tokenize(t *C.bert_tokenizer, text string) ([]Token, error) {
	b := []byte(text)
	var ptr *C.char
	if len(b) > 0 {
		ptr = (*C.char)(unsafe.Pointer(&b[0]))
	}
	var n C.size_t
	err := call(func() C.bert_status {
		return C.bert_tokenize(t, ptr, C.size_t(len(b)), nil, nil, 0, &n)
	})
	if e, ok := err.(*Error); err != nil && (!ok || e.Status != ErrBufferTooSmall) {
		return nil, err
	}
	if n == 0 {
		return []Token{}, nil
	}
	ids := make([]uint32, n)
	offs := make([]uint64, 2*n)
	if err := call(func() C.bert_status {
		return C.bert_tokenize(t, ptr, C.size_t(len(b)), (*C.uint32_t)(&ids[0]),
			(*C.uint64_t)(&offs[0]), n, &n)
	}); err != nil {
		return nil, err
	}
	out := make([]Token, n)
	for i := range out {
		out[i] = Token{ID: ids[i], Start: int(offs[2*i]), End: int(offs[2*i+1])}
	}
	return out, nil
}

// Tokenize splits text into WordPiece tokens with the model's tokenizer.
func (m *Model) Tokenize(text string) ([]Token, error) {
	defer runtime.KeepAlive(m)
	return tokenize(C.bert_model_tokenizer(m.p), text)
}

// Tokenizer is a standalone WordPiece tokenizer. Safe for concurrent use.
type Tokenizer struct {
	p *C.bert_tokenizer
}

var _ io.Closer = (*Tokenizer)(nil)

// NewTokenizer loads a vocab.txt.
func NewTokenizer(vocabPath string, doLowerCase bool) (*Tokenizer, error) {
	cpath := C.CString(vocabPath)
	defer C.free(unsafe.Pointer(cpath))
	var p *C.bert_tokenizer
	if err := call(func() C.bert_status {
		return C.bert_tokenizer_new_from_file(cpath, cBool(doLowerCase), &p)
	}); err != nil {
		return nil, err
	}
	t := &Tokenizer{p: p}
	runtime.SetFinalizer(t, (*Tokenizer).Close)
	return t, nil
}

// Close frees the tokenizer.
func (t *Tokenizer) Close() error {
	if t != nil && t.p != nil {
		C.bert_tokenizer_free(t.p)
		t.p = nil
		runtime.SetFinalizer(t, nil)
	}
	return nil
}

// Tokenize splits text into WordPiece tokens.
func (t *Tokenizer) Tokenize(text string) ([]Token, error) {
	defer runtime.KeepAlive(t)
	return tokenize(t.p, text)
}

// Context runs a model. Use it from one goroutine at a time.
type Context struct {
	p     *C.bert_context
	model *Model // keeps the model alive while the context exists
}

var _ io.Closer = (*Context)(nil)

// NewContext makes a context for m using threads kernel threads (0: all cores).
func NewContext(m *Model, threads int) (*Context, error) {
	params := C.bert_context_default_params()
	params.n_threads = C.uint32_t(threads)
	var p *C.bert_context
	if err := call(func() C.bert_status { return C.bert_context_new(m.p, &params, &p) }); err != nil {
		return nil, err
	}
	c := &Context{p: p, model: m}
	runtime.SetFinalizer(c, (*Context).Close)
	return c, nil
}

// Close frees the context.
func (c *Context) Close() error {
	if c != nil && c.p != nil {
		C.bert_context_free(c.p)
		c.p = nil
		runtime.SetFinalizer(c, nil)
	}
	return nil
}

// Embed returns one embedding per text, each HiddenSize floats.
func (c *Context) Embed(texts []string, pooling Pooling, normalize bool) ([][]float32, error) {
	defer runtime.KeepAlive(c)
	n := len(texts)
	if n == 0 {
		return [][]float32{}, nil
	}
	// The array of text pointers must live in C memory (cgo: no Go pointers to Go pointers).
	ptrs := (*[1 << 28]*C.char)(C.malloc(C.size_t(n) * C.size_t(unsafe.Sizeof((*C.char)(nil)))))[:n:n]
	lens := (*[1 << 28]C.size_t)(C.malloc(C.size_t(n) * C.size_t(unsafe.Sizeof(C.size_t(0)))))[:n:n]
	defer C.free(unsafe.Pointer(&ptrs[0]))
	defer C.free(unsafe.Pointer(&lens[0]))
	for i, t := range texts {
		ptrs[i] = C.CString(t)
		lens[i] = C.size_t(len(t))
	}
	defer func() {
		for _, p := range ptrs {
			C.free(unsafe.Pointer(p))
		}
	}()
	h := c.model.HiddenSize()
	flat := make([]float32, n*h)
	var got C.size_t
	if err := call(func() C.bert_status {
		return C.bert_embed(c.p, &ptrs[0], &lens[0], C.size_t(n), C.bert_pooling(pooling),
			cBool(normalize), (*C.float)(&flat[0]), C.size_t(len(flat)), &got)
	}); err != nil {
		return nil, err
	}
	out := make([][]float32, n)
	for i := range out {
		out[i] = flat[i*h : (i+1)*h : (i+1)*h]
	}
	return out, nil
}

// Encoding is the model input for a text or pair, copied out of the context.
type Encoding struct {
	IDs, TypeIDs, AttentionMask, SpecialTokensMask []uint32
	Offsets                                        []uint64 // 2 per token
}

// Encode builds [CLS] a [SEP] (b [SEP]) truncated to maxSeqLength (0: the context's).
// pair is optional: pass at most one b.
func (c *Context) Encode(a string, maxSeqLength int, b ...string) (*Encoding, error) {
	defer runtime.KeepAlive(c)
	ca := C.CString(a)
	defer C.free(unsafe.Pointer(ca))
	var cb *C.char
	lenB := 0
	if len(b) > 0 {
		cb = C.CString(b[0])
		defer C.free(unsafe.Pointer(cb))
		lenB = len(b[0])
	}
	params := C.bert_encode_default_params()
	params.max_seq_length = C.uint32_t(maxSeqLength)
	var v C.bert_encoding_view
	v.size = C.size_t(unsafe.Sizeof(v))
	if err := call(func() C.bert_status {
		return C.bert_encode(c.p, ca, C.size_t(len(a)), cb, C.size_t(lenB), &params, &v)
	}); err != nil {
		return nil, err
	}
	n := int(v.n_tokens)
	u32 := func(p *C.uint32_t) []uint32 {
		return append([]uint32(nil), unsafe.Slice((*uint32)(unsafe.Pointer(p)), n)...)
	}
	return &Encoding{
		IDs:               u32(v.ids),
		TypeIDs:           u32(v.type_ids),
		AttentionMask:     u32(v.attention_mask),
		SpecialTokensMask: u32(v.special_tokens_mask),
		Offsets:           append([]uint64(nil), unsafe.Slice((*uint64)(unsafe.Pointer(v.offsets)), 2*n)...),
	}, nil
}

// HiddenStates returns every layer for one text: [layers][tokens][hidden] flattened,
// layer 0 being the embedding output.
func (c *Context) HiddenStates(text string) (data []float32, layers, tokens int, err error) {
	defer runtime.KeepAlive(c)
	ct := C.CString(text)
	defer C.free(unsafe.Pointer(ct))
	var v C.bert_hidden_states_view
	v.size = C.size_t(unsafe.Sizeof(v))
	if err := call(func() C.bert_status { return C.bert_hidden_states(c.p, ct, C.size_t(len(text)), &v) }); err != nil {
		return nil, 0, 0, err
	}
	n := int(v.n_layers * v.n_tokens * v.hidden_size)
	data = append([]float32(nil), unsafe.Slice((*float32)(unsafe.Pointer(v.data)), n)...)
	return data, int(v.n_layers), int(v.n_tokens), nil
}
