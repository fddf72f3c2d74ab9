package crmusers_test

import (
	"errors"
	"testing"

	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
	"github.com/crmslack/crmslack/services/query/internal/crmusers"
)

func up(org, id, email string, v int64, active bool) *crmv1.CrmUserUpserted {
	return &crmv1.CrmUserUpserted{Envelope: &commonv1.Envelope{OrgId: org}, User: &crmv1.CrmUser{Id: id, Email: email, FullName: "N " + id, Active: active, Version: v}}
}

func off(org, id string, v int64) *crmv1.CrmUserDeactivated {
	return &crmv1.CrmUserDeactivated{Envelope: &commonv1.Envelope{OrgId: org}, UserId: id, Version: v}
}

func TestLookupFollowsVersions(t *testing.T) {
	t.Parallel()
	type step struct {
		up  *crmv1.CrmUserUpserted
		off *crmv1.CrmUserDeactivated
	}
	tests := []struct {
		name   string
		steps  []step
		email  string
		wantID string // "" when nobody is found
	}{
		{"active user, email in another case", []step{{up: up("o", "u1", " Ada@Zylker.com", 1, true)}}, "ada@zylker.COM", "u1"},
		{"inactive user", []step{{up: up("o", "u1", "ada@z.com", 1, false)}}, "ada@z.com", ""},
		{"deactivated", []step{{up: up("o", "u1", "ada@z.com", 1, true)}, {off: off("o", "u1", 2)}}, "ada@z.com", ""},
		{"older upsert after deactivation stays out", []step{{up: up("o", "u1", "ada@z.com", 1, true)}, {off: off("o", "u1", 3)}, {up: up("o", "u1", "ada@z.com", 2, true)}}, "ada@z.com", ""},
		{"newer upsert reactivates", []step{{off: off("o", "u1", 3)}, {up: up("o", "u1", "ada@z.com", 4, true)}}, "ada@z.com", "u1"},
		{"stale deactivation ignored", []step{{up: up("o", "u1", "ada@z.com", 5, true)}, {off: off("o", "u1", 4)}}, "ada@z.com", "u1"},
		{"email change drops the old email", []step{{up: up("o", "u1", "old@z.com", 1, true)}, {up: up("o", "u1", "new@z.com", 2, true)}}, "old@z.com", ""},
		{"shared email answers the active one", []step{{up: up("o", "u1", "x@z.com", 1, false)}, {up: up("o", "u2", "x@z.com", 1, true)}}, "x@z.com", "u2"},
		{"another org's user", []step{{up: up("other", "u1", "ada@z.com", 1, true)}}, "ada@z.com", ""},
		{"empty email never matches", []step{{up: up("o", "u1", "", 1, true)}}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := crmusers.New()
			for i, s := range tt.steps {
				var err error
				if s.up != nil {
					_, err = d.ApplyUpserted(s.up)
				} else {
					_, err = d.ApplyDeactivated(s.off)
				}
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
			}
			u, ok := d.Lookup("o", tt.email)
			if got := map[bool]string{true: u.ID}[ok]; got != tt.wantID {
				t.Fatalf("Lookup = %q (%v), want %q", u.ID, ok, tt.wantID)
			}
		})
	}
}

func TestDuplicatesChangeNothing(t *testing.T) {
	t.Parallel()
	d := crmusers.New()
	if ok, _ := d.ApplyUpserted(up("o", "u1", "a@z.com", 1, true)); !ok {
		t.Fatal("first upsert not applied")
	}
	if ok, _ := d.ApplyUpserted(up("o", "u1", "b@z.com", 1, true)); ok {
		t.Fatal("duplicate version applied")
	}
	if _, ok := d.Lookup("o", "a@z.com"); !ok || d.Count() != 1 {
		t.Fatal("duplicate changed the directory")
	}
}

func TestInvalidEvents(t *testing.T) {
	t.Parallel()
	d := crmusers.New()
	if _, err := d.ApplyUpserted(up("", "u1", "a@z.com", 1, true)); !errors.Is(err, crmusers.ErrInvalidEvent) {
		t.Errorf("no org: %v", err)
	}
	if _, err := d.ApplyUpserted(&crmv1.CrmUserUpserted{Envelope: &commonv1.Envelope{OrgId: "o"}}); !errors.Is(err, crmusers.ErrInvalidEvent) {
		t.Errorf("no user: %v", err)
	}
	if _, err := d.ApplyDeactivated(off("o", "", 1)); !errors.Is(err, crmusers.ErrInvalidEvent) {
		t.Errorf("no id: %v", err)
	}
}
