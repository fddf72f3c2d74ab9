package action

import "time"

// EntryKind is what a history entry records.
type EntryKind string

const (
	// Sent: a message was handed to the egress.
	Sent EntryKind = "sent"
	// Posted and Failed: the egress's outcome for a sent message.
	Posted EntryKind = "posted"
	Failed EntryKind = "failed"
	// Skipped: the action fired but sent nothing, for Reason.
	Skipped EntryKind = "skipped"
	// Removed: the action was deleted with its team.
	Removed EntryKind = "removed"
)

// Entry is one history record; entries are only ever inserted.
type Entry struct {
	// ID is unique: a replayed event inserts nothing new.
	ID             string
	Kind           EntryKind
	Org, ActionID  string
	RuleID         string
	TriggerEventID string
	RecordID       string
	// MessageID and Target, for Sent, Posted and Failed.
	MessageID, Target string
	Permalink, Reason string
	At                time.Time
}

// Execution is one firing of an action, its messages' entries folded in.
type Execution struct {
	ActionID, RuleID, TriggerEventID, RecordID string
	At                                         time.Time
	// Outcome is Sent while a message has no outcome yet, Failed when any
	// failed, else Posted; Skipped or Removed for entries without messages.
	Outcome  EntryKind
	Reason   string
	Messages []Message
}

// Message is one message of an execution.
type Message struct {
	ID, Target        string
	Outcome           EntryKind
	Permalink, Reason string
	At                time.Time
}

// Fold groups entries (any order) into executions, newest first, at most
// limit. Outcomes join their message by message id.
func Fold(entries []Entry, limit int) []Execution {
	type key struct{ action, trigger string }
	byKey := map[key]*Execution{}
	var order []key
	outcomes := map[string]Entry{}
	for _, e := range entries {
		switch e.Kind {
		case Posted, Failed:
			// A later outcome (a retry that posted) wins.
			if prev, ok := outcomes[e.MessageID]; !ok || e.At.After(prev.At) {
				outcomes[e.MessageID] = e
			}
			continue
		}
		k := key{e.ActionID, e.TriggerEventID}
		ex, ok := byKey[k]
		if !ok {
			ex = &Execution{ActionID: e.ActionID, RuleID: e.RuleID, TriggerEventID: e.TriggerEventID, RecordID: e.RecordID, At: e.At, Outcome: e.Kind, Reason: e.Reason}
			byKey[k] = ex
			order = append(order, k)
		}
		if e.At.Before(ex.At) {
			ex.At = e.At
		}
		if e.Kind == Sent {
			ex.Messages = append(ex.Messages, Message{ID: e.MessageID, Target: e.Target, Outcome: Sent, At: e.At})
		}
	}
	out := make([]Execution, 0, len(order))
	for _, k := range order {
		ex := byKey[k]
		if len(ex.Messages) > 0 {
			ex.Outcome = Posted
			for i := range ex.Messages {
				m := &ex.Messages[i]
				if o, ok := outcomes[m.ID]; ok {
					m.Outcome, m.Permalink, m.Reason, m.At = o.Kind, o.Permalink, o.Reason, o.At
				}
				switch {
				case m.Outcome == Failed:
					ex.Outcome = Failed
				case m.Outcome == Sent && ex.Outcome != Failed:
					ex.Outcome = Sent
				}
			}
		}
		out = append(out, *ex)
	}
	sortExecutions(out)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}
