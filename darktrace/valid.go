package darktrace

// valid.go: the check of every array element (split.go). It accepts exactly what json.Valid
// accepts (FuzzValidJSON compares them); json.Valid drives a state machine through a function
// call per byte, and was a third of the CPU of catching up on 100,000 breaches.

// maxNesting is encoding/json's limit on nested arrays and objects.
const maxNesting = 10000

// strStop marks the bytes that end the fast part of a string: the quote, the backslash and
// the control characters JSON does not allow unescaped. Everything else (invalid UTF-8
// included, as json.Valid does) is taken as is.
var strStop = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// validJSON reports whether b is one JSON value, optionally surrounded by whitespace, as
// json.Valid does.
func validJSON(b []byte) bool {
	end := validValue(b)
	return end >= 0 && skipWS(b, end) == len(b)
}

// validValue checks the JSON value at the start of b (after whitespace) and returns the index
// just after it, or -1 when b does not start with a valid value (or holds only part of one).
// It is iterative: no depth can exhaust the stack.
func validValue(b []byte) int {
	var stackBuf [32]byte
	stack := stackBuf[:0] // '{' or '[' per open container
	i := skipWS(b, 0)
	for {
		// A value starts at i.
		if i >= len(b) {
			return -1
		}
		switch c := b[i]; c {
		case '{', '[':
			if stack = append(stack, c); len(stack) > maxNesting {
				return -1
			}
			i = skipWS(b, i+1)
			if i < len(b) && b[i] == c+2 { // '}' is '{'+2, ']' is '['+2
				stack = stack[:len(stack)-1]
				i++
				break
			}
			if c == '{' {
				if i = validMember(b, i); i < 0 {
					return -1
				}
			}
			continue
		case '"':
			if i = validString(b, i); i < 0 {
				return -1
			}
		case 't':
			if i = literal(b, i, "true"); i < 0 {
				return -1
			}
		case 'f':
			if i = literal(b, i, "false"); i < 0 {
				return -1
			}
		case 'n':
			if i = literal(b, i, "null"); i < 0 {
				return -1
			}
		default:
			if i = validNumber(b, i); i < 0 {
				return -1
			}
		}
		// A value ended at i: close containers until another value is due.
		for {
			if len(stack) == 0 {
				return i
			}
			i = skipWS(b, i)
			if i >= len(b) {
				return -1
			}
			top := stack[len(stack)-1]
			c := b[i]
			if c == top+2 {
				stack = stack[:len(stack)-1]
				i++
				continue
			}
			if c != ',' {
				return -1
			}
			i = skipWS(b, i+1)
			if top == '{' {
				if i = validMember(b, i); i < 0 {
					return -1
				}
			}
			break
		}
	}
}

// validMember reads `"key" :` and the whitespace after it, returning the index of the value, or -1.
func validMember(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	if i = validString(b, i); i < 0 {
		return -1
	}
	i = skipWS(b, i)
	if i >= len(b) || b[i] != ':' {
		return -1
	}
	return skipWS(b, i+1)
}

func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

// validString checks the string whose quote is at i and returns the index after its closing
// quote, or -1.
func validString(b []byte, i int) int {
	if j, st := stringRest(b, i+1); st == strEnded {
		return j
	}
	return -1
}

// How stringRest found the rest of a string.
const (
	strEnded   = iota // at its closing quote
	strPartial        // b ended first
	strInvalid        // at a character or escape JSON does not allow
)

// stringRest checks the characters of a string from i (just after its opening quote, or
// between two of its characters) to its closing quote. It is the one rule for every string of
// an element: a whole one (validString), and the part of a long one the splitter drops past
// its cut (split.go), so a record is valid or not whether or not it was cut. It returns, by
// state: strEnded and the index after the closing quote; strPartial and the index of the
// escape b ended inside (len(b) when it ended between characters), from where to go on once
// more bytes came; strInvalid and the index of the offending character or escape.
func stringRest(b []byte, i int) (int, int) {
	for {
		for i < len(b) && !strStop[b[i]] {
			i++
		}
		if i >= len(b) {
			return i, strPartial
		}
		switch b[i] {
		case '"':
			return i + 1, strEnded
		case '\\':
			if i+1 >= len(b) {
				return i, strPartial
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				for _, h := range b[i+2 : min(i+6, len(b))] {
					if !isHex(h) {
						return i, strInvalid
					}
				}
				if i+6 > len(b) {
					return i, strPartial
				}
				i += 6
			default:
				return i, strInvalid
			}
		default: // a control character
			return i, strInvalid
		}
	}
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// validNumber checks the number at i (-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?) and
// returns the index after it, or -1.
func validNumber(b []byte, i int) int {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return -1
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		i = digits(b, i+1)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		j := digits(b, i+1)
		if j == i+1 {
			return -1
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(b, i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}

func digits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}

// literal checks that word (true, false, null) is at i and returns the index after it, or -1.
func literal(b []byte, i int, word string) int {
	if len(b)-i < len(word) || string(b[i:i+len(word)]) != word {
		return -1
	}
	return i + len(word)
}
