package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmslack/crmslack/libs/topology"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	// Registers the event types publish accepts.
	_ "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
	_ "github.com/crmslack/crmslack/proto/gen/go/crmslack/integration/v1"
	_ "github.com/crmslack/crmslack/proto/gen/go/crmslack/sharing/v1"
)

// line is one input event: its proto type, optional explicit subject and the
// event in protojson.
type line struct {
	Type    string          `json:"type"`
	Subject string          `json:"subject,omitempty"`
	Event   json.RawMessage `json:"event"`
}

// event is a decoded, validated input event ready to publish.
type event struct {
	Where   string
	Subject string
	Msg     enveloped
}

type enveloped interface {
	proto.Message
	GetEnvelope() *commonv1.Envelope
}

// publishable lists the packages whose events publish takes (sharing: the
// shares a CRM asks for through the bus).
var publishable = []string{"crmslack.crm.v1.", "crmslack.integration.v1.", "crmslack.sharing.v1."}

// decodeEvents reads JSON (one object or an array) or NDJSON and returns every
// event, or every problem found with its line number: nothing is published
// from an input with a bad line, so a file is never half-imported silently.
func decodeEvents(name string, r io.Reader, now time.Time) ([]event, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	type raw struct {
		where string
		data  []byte
	}
	var raws []raw
	trimmed := bytes.TrimSpace(data)
	if bytes.HasPrefix(trimmed, []byte("[")) {
		var arr []json.RawMessage
		if err := json.Unmarshal(trimmed, &arr); err != nil {
			return nil, fmt.Errorf("%s: not a JSON array of events: %w", name, err)
		}
		for i, a := range arr {
			raws = append(raws, raw{fmt.Sprintf("%s[%d]", name, i), a})
		}
	} else {
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
		for n := 1; sc.Scan(); n++ {
			if l := bytes.TrimSpace(sc.Bytes()); len(l) > 0 {
				raws = append(raws, raw{fmt.Sprintf("%s:%d", name, n), append([]byte(nil), l...)})
			}
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	var events []event
	var errs []error
	for _, r := range raws {
		ev, err := decodeEvent(r.data, now)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.where, err))
			continue
		}
		ev.Where = r.where
		events = append(events, ev)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return events, nil
}

func decodeEvent(data []byte, now time.Time) (event, error) {
	var l line
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return event{}, fmt.Errorf("not an event object {\"type\", \"event\", \"subject\"?}: %w", err)
	}
	if !isPublishable(l.Type) {
		return event{}, fmt.Errorf("type %q is not a publishable event (see crmctl types)", l.Type)
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(l.Type))
	if err != nil {
		return event{}, fmt.Errorf("unknown type %q (see crmctl types)", l.Type)
	}
	msg, ok := mt.New().Interface().(enveloped)
	if !ok {
		return event{}, fmt.Errorf("type %q has no envelope", l.Type)
	}
	if len(l.Event) == 0 {
		return event{}, errors.New(`missing "event"`)
	}
	if err := protojson.Unmarshal(l.Event, msg); err != nil {
		return event{}, fmt.Errorf("event: %w", err)
	}
	env := msg.GetEnvelope()
	if env == nil {
		env = &commonv1.Envelope{}
		msg.ProtoReflect().Set(msg.ProtoReflect().Descriptor().Fields().ByName("envelope"), protoreflect.ValueOfMessage(env.ProtoReflect()))
	}
	if env.GetOrgId() == "" {
		return event{}, errors.New("envelope.orgId is required")
	}
	if env.GetEventId() == "" {
		// Derived from the input itself, so publishing the same file twice
		// is dropped by the stream's duplicate window instead of doubled.
		sum := sha256.Sum256(append([]byte(l.Type+"\n"), data...))
		env.EventId = "crmctl-" + hex.EncodeToString(sum[:16])
	}
	if env.GetOccurredAt() == nil {
		env.OccurredAt = timestamppb.New(now)
	}
	if env.GetSchemaVersion() == 0 {
		env.SchemaVersion = 1
	}
	if env.GetProducer() == "" {
		env.Producer = "crmctl"
	}
	subject := l.Subject
	if subject == "" {
		if subject, err = topology.SubjectFor(msg); err != nil {
			return event{}, err
		}
	}
	return event{Subject: subject, Msg: msg}, nil
}

func isPublishable(typ string) bool {
	for _, p := range publishable {
		if strings.HasPrefix(typ, p) {
			return true
		}
	}
	return false
}

// eventTypes lists every publishable message type that has an envelope.
func eventTypes() []string {
	var names []string
	protoregistry.GlobalTypes.RangeMessages(func(mt protoreflect.MessageType) bool {
		name := string(mt.Descriptor().FullName())
		if isPublishable(name) && mt.Descriptor().Fields().ByName("envelope") != nil {
			names = append(names, name)
		}
		return true
	})
	sort.Strings(names)
	return names
}
