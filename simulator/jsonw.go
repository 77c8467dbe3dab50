package simulator

import (
	"strconv"

	"github.com/dtforward/dtforward/internal/jsontext"
)

// jw appends JSON to a byte slice without reflection. Strings are escaped the way the
// appliance's JSON encoder does it for the characters that matter ('"', '\\' and control
// characters) but bytes >= 0x80 are copied as they are: real appliances have been seen sending
// invalid UTF-8, and clients must survive it rather than have the simulator clean it up.
type jw struct {
	b        []byte
	comma    []bool // per open container: whether the next element needs a comma
	afterKey bool   // a key was written; the next value completes it
}

// val writes what precedes a value: nothing right after a key, else a comma when needed.
func (w *jw) val() {
	if w.afterKey {
		w.afterKey = false
		return
	}
	if n := len(w.comma); n > 0 {
		if w.comma[n-1] {
			w.b = append(w.b, ',')
		}
		w.comma[n-1] = true
	}
}

// key starts an object member; exactly one value must follow.
func (w *jw) key(k string) {
	w.val()
	w.b = jsontext.AppendKeepingBytes(w.b, k)
	w.b = append(w.b, ':')
	w.afterKey = true
}

func (w *jw) obj() {
	w.val()
	w.b = append(w.b, '{')
	w.comma = append(w.comma, false)
}

func (w *jw) arr() {
	w.val()
	w.b = append(w.b, '[')
	w.comma = append(w.comma, false)
}

func (w *jw) end(c byte) {
	w.b = append(w.b, c)
	w.comma = w.comma[:len(w.comma)-1]
}

func (w *jw) endObj() { w.end('}') }
func (w *jw) endArr() { w.end(']') }

func (w *jw) str(s string) {
	w.val()
	w.b = jsontext.AppendKeepingBytes(w.b, s)
}

func (w *jw) int(n int64) {
	w.val()
	w.b = strconv.AppendInt(w.b, n, 10)
}

func (w *jw) float(f float64) {
	w.val()
	w.b = strconv.AppendFloat(w.b, f, 'f', -1, 64)
}

func (w *jw) bool(v bool) {
	w.val()
	w.b = strconv.AppendBool(w.b, v)
}

func (w *jw) null() {
	w.val()
	w.b = append(w.b, "null"...)
}

// raw writes pre-encoded JSON as one value.
func (w *jw) raw(r []byte) {
	w.val()
	w.b = append(w.b, r...)
}

func (w *jw) kStr(k, v string) {
	w.key(k)
	w.str(v)
}

func (w *jw) kInt(k string, v int64) {
	w.key(k)
	w.int(v)
}

func (w *jw) kFloat(k string, v float64) {
	w.key(k)
	w.float(v)
}

func (w *jw) kBool(k string, v bool) {
	w.key(k)
	w.bool(v)
}

func (w *jw) kRaw(k string, r []byte) {
	w.key(k)
	w.raw(r)
}

func (w *jw) kStrs(k string, v []string) {
	w.key(k)
	w.arr()
	for _, s := range v {
		w.str(s)
	}
	w.endArr()
}

// objects writes key and an array of n objects, write filling object i.
func (w *jw) objects(key string, n int, write func(i int)) {
	w.key(key)
	w.arr()
	for i := 0; i < n; i++ {
		w.obj()
		write(i)
		w.endObj()
	}
	w.endArr()
}
