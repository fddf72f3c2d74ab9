package ledger

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// encode is rec as json.Marshal writes it (the same bytes,
// FuzzEncodeIsJSONMarshal), written by hand because the claim and the
// result are written for every post and json.Marshal's boxing of the record
// and its time encoding cost as much again as the record's bytes.
func encode(rec *Record) ([]byte, error) {
	if y := rec.ClaimedAt.Year(); y < 0 || y > 9999 {
		c := *rec                 // a copy escapes, not rec
		b, err := json.Marshal(c) // its error says what is wrong
		if err != nil {
			return nil, fmt.Errorf("encoding ledger record: %w", err)
		}
		return b, nil
	}
	dst := make([]byte, 0, 160+len(rec.Permalink)+len(rec.CommandID))
	dst = append(dst, `{"s":`...)
	dst = appendString(dst, string(rec.State))
	dst = append(dst, `,"c":`...)
	dst = appendString(dst, rec.CommandID)
	dst = append(dst, `,"o":`...)
	dst = appendString(dst, rec.Owner)
	dst = append(dst, `,"t":"`...)
	dst = rec.ClaimedAt.AppendFormat(dst, "2006-01-02T15:04:05.999999999Z07:00")
	dst = append(dst, '"')
	if rec.Channel != "" {
		dst = append(dst, `,"ch":`...)
		dst = appendString(dst, rec.Channel)
	}
	if rec.TS != "" {
		dst = append(dst, `,"ts":`...)
		dst = appendString(dst, rec.TS)
	}
	if rec.Permalink != "" {
		dst = append(dst, `,"pl":`...)
		dst = appendString(dst, rec.Permalink)
	}
	if len(rec.FileIDs) > 0 {
		dst = append(dst, `,"f":[`...)
		for i, id := range rec.FileIDs {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, id)
		}
		dst = append(dst, ']')
	}
	return append(dst, '}'), nil
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string escaped as encoding/json escapes
// it: quotes, backslashes and control characters, the HTML characters <, >
// and &, U+2028 and U+2029, and invalid UTF-8 as U+FFFD.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
