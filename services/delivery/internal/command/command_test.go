package command

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	slackv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/slack/v1"
)

func env(org string) *commonv1.Envelope { return &commonv1.Envelope{EventId: "e1", OrgId: org} }

func marshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func channel(c string) *slackv1.Target {
	return &slackv1.Target{Kind: &slackv1.Target_ChannelId{ChannelId: c}}
}

func TestDecode(t *testing.T) {
	t.Parallel()
	post := &slackv1.PostMessage{Envelope: env("o1"), TeamId: "T1", Target: channel("C1"), Text: "hi", IdempotencyKey: "k"}
	for _, tc := range []struct {
		name    string
		subject string
		data    []byte
		want    error
		lane    string
	}{
		{"post", "slack.out.v1.o1.T1.post", marshal(t, post), nil, "msg/T1/C1"},
		{"post in a partition", "slack.out.v1.o1.T1.post.5", marshal(t, post), nil, "msg/T1/C1"},
		{"not a partition token", "slack.out.v1.o1.T1.post.x", marshal(t, post), ErrUndecodable, ""},
		{"too many tokens", "slack.out.v1.o1.T1.post.5.6", marshal(t, post), ErrUndecodable, ""},
		{"org differs from the subject", "slack.out.v1.o2.T1.post", marshal(t, post), ErrInvalid, ""},
		{"team differs from the subject", "slack.out.v1.o1.T2.post", marshal(t, post), ErrInvalid, ""},
		{"unknown kind", "slack.out.v1.o1.T1.shout", marshal(t, post), ErrUndecodable, ""},
		{"not a command subject", "crm.v1.o1.record", marshal(t, post), ErrUndecodable, ""},
		{"garbage", "slack.out.v1.o1.T1.post", []byte{0xff, 0xff, 0xff}, ErrUndecodable, ""},
		{"no envelope", "slack.out.v1.o1.T1.post", marshal(t, &slackv1.PostMessage{TeamId: "T1"}), ErrUndecodable, ""},
		{"post without target", "slack.out.v1.o1.T1.post", marshal(t, &slackv1.PostMessage{Envelope: env("o1"), TeamId: "T1"}), ErrInvalid, ""},
		{"update", "slack.out.v1.o1.T1.update", marshal(t, &slackv1.UpdateMessage{Envelope: env("o1"), TeamId: "T1", ChannelId: "C1", Ts: "1.2"}), nil, "msg/T1/C1"},
		{"update without ts", "slack.out.v1.o1.T1.update", marshal(t, &slackv1.UpdateMessage{Envelope: env("o1"), TeamId: "T1", ChannelId: "C1"}), ErrInvalid, ""},
		{"ephemeral", "slack.out.v1.o1.T1.ephemeral", marshal(t, &slackv1.PostEphemeral{Envelope: env("o1"), TeamId: "T1", ChannelId: "C1", SlackUserId: "U1"}), nil, "eph/T1/C1/U1"},
		{"respond", "slack.out.v1.o1.T1.respond", marshal(t, &slackv1.RespondToURL{Envelope: env("o1"), TeamId: "T1", ResponseUrl: "https://hooks.slack.com/x"}), nil, "resp/https://hooks.slack.com/x"},
		{"upload", "slack.out.v1.o1.T1.upload", marshal(t, &slackv1.UploadFile{Envelope: env("o1"), TeamId: "T1", Filename: "a.png", Content: []byte{1},
			Targets: []*slackv1.Target{channel("C2"), {Kind: &slackv1.Target_Email{Email: "a@b.c"}}}}), nil, "upload/T1/channel C2,email a@b.c"},
		{"upload without content", "slack.out.v1.o1.T1.upload", marshal(t, &slackv1.UploadFile{Envelope: env("o1"), TeamId: "T1", Filename: "a.png", Targets: []*slackv1.Target{channel("C2")}}), ErrInvalid, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := Decode(tc.subject, tc.data)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("Decode = %v, want %v", err, tc.want)
			}
			if errors.Is(err, ErrInvalid) && (c == nil || c.ID != "e1") {
				t.Fatalf("an invalid command must still carry its identity: %+v", c)
			}
			if tc.lane != "" && c.Lane() != tc.lane {
				t.Errorf("lane %q, want %q", c.Lane(), tc.lane)
			}
		})
	}
}

func TestIdempotencyKeyDefaultsToEventID(t *testing.T) {
	t.Parallel()
	c, err := Decode("slack.out.v1.o1.T1.post", marshal(t, &slackv1.PostMessage{Envelope: env("o1"), TeamId: "T1", Target: channel("C1"),
		Origin: &slackv1.Origin{Service: "sharing", Purpose: "share_record"}}))
	if err != nil {
		t.Fatal(err)
	}
	if c.IdempotencyKey != "e1" || c.Origin != "sharing/share_record" {
		t.Fatalf("key %q origin %q", c.IdempotencyKey, c.Origin)
	}
}

func TestPostsToOneTargetShareALane(t *testing.T) {
	t.Parallel()
	email := func(e string) *Command {
		return &Command{Kind: Post, Team: "T1", PostMessage: &slackv1.PostMessage{Target: &slackv1.Target{Kind: &slackv1.Target_Email{Email: e}}}}
	}
	if email("Bob@X.com ").Lane() != email("bob@x.com").Lane() {
		t.Error("the same email, cased differently, must share a lane")
	}
}
