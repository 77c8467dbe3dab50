// Package shapes serves the corpus of real-shaped Darktrace records (testdata/realshapes) and
// mutates them, for tests that prove no record with an id is lost to an unexpected shape.
package shapes

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// PerPath is how many replacements each value of a record of the source gets in the
// mutation tests: breach records are large, so fewer per value keeps the variant count (and
// the test time) similar across sources, still thousands each.
var PerPath = map[string]int{"modelbreaches": 3, "antigena": 16, "aianalyst": 16}

// MinVariants is the fewest variants per source a mutation test must have checked.
var MinVariants = 2000

// Keys maps sources to the key of each source's records: the one field a mutation never touches.
var Keys = map[string]string{"modelbreaches": "pbid", "antigena": "codeid", "aianalyst": "id"}

// Dir is testdata/realshapes of this repository.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "testdata", "realshapes")
}

// Corpus returns the records of source (one JSON object per line of <source>.ndjson).
func Corpus(source string) ([][]byte, error) {
	f, err := os.Open(filepath.Join(Dir(), source+".ndjson"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 {
			out = append(out, bytes.Clone(line))
		}
	}
	return out, sc.Err()
}

// Replacements are the values a mutation puts in place of a field: every JSON type, the
// numbers and strings that trip naive decoders, and (nil) the removal of the field.
var Replacements = []json.RawMessage{
	nil, json.RawMessage(`null`), json.RawMessage(`true`), json.RawMessage(`false`),
	json.RawMessage(`0`), json.RawMessage(`-1`), json.RawMessage(`1.5`), json.RawMessage(`1e300`),
	json.RawMessage(`""`), json.RawMessage(`"x"`), json.RawMessage(`"123"`), json.RawMessage(`"1.5e3"`),
	json.RawMessage(`{}`), json.RawMessage(`{"time":1,"username":"u","x":[1]}`), json.RawMessage(`[]`),
	json.RawMessage(`[1,"a",null,{}]`),
}

// opaque subtrees are mutated as a whole but not inside: their content is carried, not read.
var opaque = map[string]bool{"logic": true, "actions": true, "arguments": true, "details": true,
	"defeats": true, "activeTimes": true, "aianalystData": true, "tag": true, "data": true}

// Mutate calls fn with variants of rec in which one value other than the top-level key field
// is replaced by one of Replacements (or removed). path names the value, e.g.
// "model.priority" or "device.ips[0].sid". Each value gets perPath of the Replacements (all
// when perPath <= 0 or >= len(Replacements)), rotating so that every replacement is used
// across the record. Variants are valid JSON objects; rec must be one (the corpus is).
func Mutate(rec []byte, key string, perPath int, fn func(path string, variant []byte)) error {
	if perPath <= 0 || perPath > len(Replacements) {
		perPath = len(Replacements)
	}
	if !json.Valid(rec) || bytes.TrimSpace(rec)[0] != '{' {
		return fmt.Errorf("corpus record is not a JSON object: %.40s", rec)
	}
	var spans []span
	p := parser{b: rec}
	p.value("", 0, true, key, &spans)
	next := 0
	buf := make([]byte, 0, len(rec)+64)
	for _, sp := range spans {
		for j := 0; j < perPath; j++ {
			r := Replacements[next%len(Replacements)]
			next++
			buf = buf[:0]
			switch {
			case r != nil:
				buf = append(append(append(buf, rec[:sp.start]...), r...), rec[sp.end:]...)
			case sp.memberStart >= 0:
				buf = append(append(buf, rec[:sp.memberStart]...), rec[sp.memberEnd:]...)
			default:
				continue // an array element is not removed
			}
			fn(sp.path, buf)
		}
	}
	return nil
}

// span is where one value is in the record, and for an object member where the member is
// (with one adjacent comma) so that removing it leaves valid JSON.
type span struct {
	path                   string
	start, end             int
	memberStart, memberEnd int // -1 for array elements
}

type parser struct {
	b []byte
	i int
}

func (p *parser) ws() {
	for p.i < len(p.b) && (p.b[p.i] == ' ' || p.b[p.i] == '\t' || p.b[p.i] == '\n' || p.b[p.i] == '\r') {
		p.i++
	}
}

// value parses the value at p.i (valid JSON), recording spans of its members and elements.
// Inside an opaque subtree nothing further is recorded.
func (p *parser) value(path string, depth int, record bool, key string, spans *[]span) {
	p.ws()
	switch p.b[p.i] {
	case '{':
		p.i++
		p.ws()
		type member struct {
			name                 string
			kStart, vStart, vEnd int
		}
		var ms []member
		for p.b[p.i] != '}' {
			kStart := p.i
			p.str()
			var name string
			_ = json.Unmarshal(p.b[kStart:p.i], &name)
			p.ws()
			p.i++ // ':'
			p.ws()
			vStart := p.i
			child := name
			if path != "" {
				child = path + "." + name
			}
			mark := len(*spans)
			p.value(child, depth+1, record && !opaque[name], key, spans)
			if record && !(depth == 0 && name == key) {
				sp := span{path: child, start: vStart, end: p.i}
				*spans = append((*spans)[:mark], append([]span{sp}, (*spans)[mark:]...)...)
			}
			ms = append(ms, member{name, kStart, vStart, p.i})
			p.ws()
			if p.b[p.i] == ',' {
				p.i++
				p.ws()
			}
		}
		p.i++
		// Member extents for removal: the member and the comma after it, or for the last
		// member the comma before it.
		if record {
			for j, m := range ms {
				for k := range *spans {
					sp := &(*spans)[k]
					if sp.start == m.vStart && sp.end == m.vEnd && sp.memberStart == 0 && sp.memberEnd == 0 {
						switch {
						case j+1 < len(ms):
							sp.memberStart, sp.memberEnd = m.kStart, ms[j+1].kStart
						case j > 0:
							sp.memberStart, sp.memberEnd = ms[j-1].vEnd, m.vEnd
						default:
							sp.memberStart, sp.memberEnd = m.kStart, m.vEnd
						}
					}
				}
			}
		}
	case '[':
		p.i++
		p.ws()
		for n := 0; p.b[p.i] != ']'; n++ {
			vStart := p.i
			child := path + "[" + strconv.Itoa(n) + "]"
			mark := len(*spans)
			p.value(child, depth+1, record, key, spans)
			if record {
				sp := span{path: child, start: vStart, end: p.i, memberStart: -1, memberEnd: -1}
				*spans = append((*spans)[:mark], append([]span{sp}, (*spans)[mark:]...)...)
			}
			p.ws()
			if p.b[p.i] == ',' {
				p.i++
				p.ws()
			}
		}
		p.i++
	case '"':
		p.str()
	default:
		for p.i < len(p.b) && strings.IndexByte(",]} \t\r\n", p.b[p.i]) < 0 {
			p.i++
		}
	}
}

func (p *parser) str() {
	for p.i++; p.b[p.i] != '"'; p.i++ {
		if p.b[p.i] == '\\' {
			p.i++
		}
	}
	p.i++
}
