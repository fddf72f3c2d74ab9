// Package action is the workflows domain: a rule's "Notify via Slack"
// instant actions, the ids of the messages a firing sends, and the history
// entries a firing leaves. Plain Go, no I/O.
package action

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"

	"github.com/crmslack/crmslack/services/workflows/internal/template"
)

// TargetKind says whether an action's targets are people or channels.
type TargetKind string

const (
	Users    TargetKind = "users"
	Channels TargetKind = "channels"
)

// OwnerTarget names the record owner's DM among an action's messages.
const OwnerTarget = "owner"

// Limits on what one action holds.
const (
	MaxTargets       = 20
	MaxActionsOfRule = 20
	MaxRuleID        = 128
)

// Spec is what an admin sets.
type Spec struct {
	RuleID, Module, Template, Team string
	Kind                           TargetKind
	Targets                        []string
	AttachCard, NotifyOwner        bool
}

// Person is a CRM user.
type Person struct{ ID, Name, Email string }

// Flag is a target Slack said no longer exists.
type Flag struct {
	Target, Reason, TriggerEventID string
	At                             time.Time
}

// Action is one instant action of a rule.
type Action struct {
	ID, Org string
	Spec    Spec
	// Canonical is the template with field tags by API name, as bound when
	// saved; Bound is it ready to render.
	Canonical            string
	Bound                template.Bound
	Flags                []Flag
	CreatedAt, UpdatedAt time.Time
	UpdatedBy            Person
	// Revision is the store's revision of the action.
	Revision uint64
}

// Flagged reports whether target is flagged.
func (a *Action) Flagged(target string) bool {
	for _, f := range a.Flags {
		if f.Target == target {
			return true
		}
	}
	return false
}

// NewID returns a fresh action id, "wfa_" and 20 hex digits.
func NewID() string {
	var b [10]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return "wfa_" + hex.EncodeToString(b[:])
}

// IDOK reports whether id can be an action id.
func IDOK(id string) bool {
	if !strings.HasPrefix(id, "wfa_") || len(id) != 24 {
		return false
	}
	_, err := hex.DecodeString(id[4:])
	return err == nil
}

// MessageID is the id of the message an action sends to one target for
// one trigger: the same trigger delivered again gives the same id, which
// the bus and the egress use to post it once. It reads back with
// [ParseMessageID].
func MessageID(triggerEventID, actionID, target string) string {
	sum := sha256.Sum256([]byte(triggerEventID + "\x00" + actionID + "\x00" + target))
	return "wf:" + actionID + ":" + target + ":" + hex.EncodeToString(sum[:16])
}

// ParseMessageID returns the action and target of a [MessageID].
func ParseMessageID(id string) (actionID, target string, ok bool) {
	parts := strings.Split(id, ":")
	if len(parts) != 4 || parts[0] != "wf" || !IDOK(parts[1]) || parts[2] == "" || len(parts[3]) != 32 {
		return "", "", false
	}
	return parts[1], parts[2], true
}
