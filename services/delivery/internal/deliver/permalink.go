package deliver

import (
	"strings"
	"sync"
	"time"
)

// linkBases learns each team's permalink base ("https://acme.slack.com")
// from one chat.getPermalink answer and builds the team's later permalinks
// from it: Slack's format (<base>/archives/<channel>/p<ts without the dot>,
// plus thread_ts and cid for a reply) is stable and documented, and a call
// per post would double the Slack calls. A base is re-learnt after
// linkBaseTTL, so a renamed workspace is picked up.
type linkBases struct {
	now func() time.Time

	mu    sync.Mutex
	bases map[string]linkBase // by team
}

type linkBase struct {
	base    string
	learned time.Time
}

const linkBaseTTL = time.Hour

func newLinkBases(now func() time.Time) *linkBases {
	return &linkBases{now: now, bases: map[string]linkBase{}}
}

// build returns the permalink of channel/ts in team, or "" when the team's
// base is not known (or too old).
func (l *linkBases) build(team, channel, ts, threadTS string) string {
	l.mu.Lock()
	b, ok := l.bases[team]
	l.mu.Unlock()
	if !ok || l.now().Sub(b.learned) > linkBaseTTL {
		return ""
	}
	return permalinkOf(b.base, channel, ts, threadTS)
}

// learn keeps the base of link, Slack's answer for channel/ts, if building
// the same message's link from it gives link back.
func (l *linkBases) learn(team, channel, ts, threadTS, link string) {
	base, _, ok := strings.Cut(link, "/archives/")
	if !ok || permalinkOf(base, channel, ts, threadTS) != link {
		return
	}
	l.mu.Lock()
	l.bases[team] = linkBase{base: base, learned: l.now()}
	l.mu.Unlock()
}

func permalinkOf(base, channel, ts, threadTS string) string {
	var b strings.Builder
	b.Grow(len(base) + len(channel) + len(ts) + 12)
	b.WriteString(base)
	b.WriteString("/archives/")
	b.WriteString(channel)
	b.WriteString("/p")
	sec, frac, _ := strings.Cut(ts, ".")
	b.WriteString(sec)
	b.WriteString(frac)
	if threadTS != "" && threadTS != ts {
		b.WriteString("?thread_ts=")
		b.WriteString(threadTS)
		b.WriteString("&cid=")
		b.WriteString(channel)
	}
	return b.String()
}
