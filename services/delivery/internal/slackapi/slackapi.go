// Package slackapi is delivery's adapter to the Slack Web API, on slack-go
// pointed at a configurable API URL (Slack, or the stand-in). It turns every
// outcome into one [*Error] whose [Kind] tells the caller what to do next:
// wait (rate limited), retry (temporary), check before retrying (ambiguous),
// refresh the token (auth), or give up (not found, refused).
//
// Tokens are passed per call and never logged or put into errors.
package slackapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/crmslack/crmslack/libs/responseurl"
	"github.com/crmslack/crmslack/services/delivery/internal/deliver"

	"github.com/slack-go/slack"
)

// The vocabulary of failures is the core's (deliver's port types).
type (
	Kind  = deliver.SlackKind
	Error = deliver.SlackError
)

// Kinds of failure.
const (
	KindTemporary   = deliver.KindTemporary
	KindAmbiguous   = deliver.KindAmbiguous
	KindRateLimited = deliver.KindRateLimited
	KindAuth        = deliver.KindAuth
	KindNotFound    = deliver.KindNotFound
	KindUnsupported = deliver.KindUnsupported
	KindRefused     = deliver.KindRefused
)

// KindOf returns the kind of err, or 0 when err is not an *Error.
func KindOf(err error) Kind { return deliver.KindOf(err) }

// authCodes are the errors that mean the token does not work.
var authCodes = []string{"invalid_auth", "not_authed", "token_expired", "token_revoked", "account_inactive", "no_permission", "org_login_required", "ekm_access_denied"}

// notFoundCodes mean the target is not in this team, or gone.
var notFoundCodes = []string{"channel_not_found", "user_not_found", "users_not_found", "message_not_found", "file_not_found", "user_not_visible"}

// temporaryCodes are Slack errors worth retrying.
var temporaryCodes = []string{"internal_error", "fatal_error", "service_unavailable", "request_timeout"}

// classify turns a slack-go error into an *Error. idempotent says whether
// repeating the call is harmless, which decides if a network failure is
// merely temporary or ambiguous.
func classify(method string, err error, idempotent bool) error {
	if err == nil {
		return nil
	}
	e := &Error{Method: method, Err: err}
	var rl *slack.RateLimitedError
	var sc slack.StatusCodeError
	var se slack.SlackErrorResponse
	switch {
	case errors.As(err, &rl):
		e.Kind, e.Code, e.RetryAfter = KindRateLimited, "ratelimited", max(rl.RetryAfter, time.Second)
	case errors.As(err, &sc):
		e.Code = fmt.Sprintf("http_%d", sc.Code)
		e.Kind = KindTemporary
		if sc.Code < 500 {
			e.Kind = KindRefused
		}
	case errors.As(err, &se):
		e.Code = se.Err
		e.Detail = strings.Join(se.ResponseMetadata.Messages, "; ")
		switch {
		case slices.Contains(authCodes, se.Err):
			e.Kind = KindAuth
		case slices.Contains(notFoundCodes, se.Err):
			e.Kind = KindNotFound
		case slices.Contains(temporaryCodes, se.Err):
			e.Kind = KindTemporary
		case se.Err == "unknown_method" || se.Err == "method_deprecated":
			e.Kind = KindUnsupported
		case se.Err == "ratelimited":
			e.Kind, e.RetryAfter = KindRateLimited, time.Second
		default:
			e.Kind = KindRefused
		}
	default:
		e.Code = "network"
		e.Kind = networkKind(err, idempotent)
	}
	return e
}

// networkKind decides whether a failure below HTTP may have let the request
// through. Only a failed dial is certain not to have.
func networkKind(err error, idempotent bool) Kind {
	if idempotent {
		return KindTemporary
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return KindTemporary
	}
	return KindAmbiguous
}

// Client calls the Web API at one base URL.
type Client struct {
	apiURL string
	hc     *http.Client
	// respondHosts are the only hosts response_url replies may go to;
	// plainHTTP those of them that may be reached without TLS.
	respondHosts []string
	plainHTTP    []string
	// replies admits only Slack's reply paths (/commands/, /actions/) on
	// those hosts: the same hosts also serve incoming webhooks.
	replies *responseurl.Policy

	// apis are the slack-go clients by token: slack.New makes a client, an
	// http.Client and a log.Logger each time, and it ran on every post.
	mu   sync.Mutex
	apis map[string]*slack.Client
}

// maxAPIs bounds the clients kept: tokens rotate, so the map is emptied
// when it holds this many.
const maxAPIs = 4096

// New returns a client for apiURL ("https://slack.com/api/"). Replies to a
// response_url may go only to respondHosts (e.g. hooks.slack.com) and to the
// API URL's own host, over https, or over plain http only when the API URL
// itself is plain http (a local stand-in). Any other URL is refused, so CRM
// data never goes to a URL a command merely claims is Slack's.
func New(apiURL string, hc *http.Client, respondHosts []string) (*Client, error) {
	if !strings.HasSuffix(apiURL, "/") {
		apiURL += "/"
	}
	u, err := url.Parse(apiURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("slack API URL %q is not an absolute URL", apiURL)
	}
	c := &Client{apiURL: apiURL, hc: hc}
	for _, h := range append(slices.Clone(respondHosts), u.Host) {
		if h = strings.ToLower(strings.TrimSpace(h)); h != "" && !slices.Contains(c.respondHosts, h) {
			c.respondHosts = append(c.respondHosts, h)
		}
	}
	if u.Scheme == "http" {
		c.plainHTTP = []string{strings.ToLower(u.Host)}
	}
	bases := make([]string, 0, len(c.respondHosts)+len(c.plainHTTP))
	for _, h := range c.respondHosts {
		bases = append(bases, "https://"+h)
	}
	for _, h := range c.plainHTTP {
		bases = append(bases, "http://"+h)
	}
	if c.replies, err = responseurl.New(bases...); err != nil {
		return nil, fmt.Errorf("response_url hosts: %w", err)
	}
	return c, nil
}

// NewHTTPClient returns an HTTP client whose connection pool fits conns
// concurrent calls to one host (Go's default keeps only two idle), and that
// does not ask for compressed replies: Slack gzips a reply when asked, and
// decoding one cost ~4.4 KB and ~30 µs of CPU a post against the stand-in
// (a reply is ~1 KB).
func NewHTTPClient(conns int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = conns * 2
	t.MaxIdleConnsPerHost = conns
	t.DisableCompression = true
	return &http.Client{Transport: t}
}

func (c *Client) api(token string) *slack.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	if api := c.apis[token]; api != nil {
		return api
	}
	if c.apis == nil || len(c.apis) >= maxAPIs {
		c.apis = map[string]*slack.Client{}
	}
	api := slack.New(token, slack.OptionAPIURL(c.apiURL), slack.OptionHTTPClient(c.hc))
	c.apis[token] = api
	return api
}

// Content, Post, HistoryMessage and Response are the core's port types.
type (
	Content        = deliver.Content
	Post           = deliver.Post
	HistoryMessage = deliver.HistoryMessage
	Response       = deliver.Response
)

func options(ct Content) ([]slack.MsgOption, error) {
	opts := []slack.MsgOption{slack.MsgOptionText(ct.Text, false)}
	if len(ct.Blocks) > 0 {
		var raw []json.RawMessage
		if err := json.Unmarshal(ct.Blocks, &raw); err != nil {
			return nil, fmt.Errorf("blocks: %w", err)
		}
		blocks := make([]slack.Block, 0, len(raw))
		for _, r := range raw {
			b, err := slack.BlockFromJSON(string(r))
			if err != nil {
				return nil, fmt.Errorf("blocks: %w", err)
			}
			blocks = append(blocks, b)
		}
		opts = append(opts, slack.MsgOptionBlocks(blocks...))
	}
	return opts, nil
}

// MarkerEventType is the metadata event type of every message delivery
// posts; its payload carries the idempotency marker, so a post whose outcome
// was lost can be found again in the channel's history.
const MarkerEventType = "crmslack_delivery"

// MarkerField is the metadata payload field holding the marker.
const MarkerField = "delivery_key"

// PostMessage posts m and returns the channel and ts Slack assigned.
//
// It is the one call made per post, so it is made here rather than through
// slack-go: a JSON body (which chat.postMessage takes with the token in the
// Authorization header) carries the command's blocks as they are, where
// slack-go decodes them into its Block types and encodes them again into a
// form, and the reply is read into the three fields used, where slack-go
// decodes the whole message by reflection. Its failures are slack-go's
// error types, so classify treats them the same.
func (c *Client) PostMessage(ctx context.Context, token string, m Post) (channel, ts string, err error) {
	const method = "chat.postMessage"
	body, err := postBody(m)
	if err != nil {
		return "", "", &Error{Method: method, Kind: KindRefused, Code: "invalid_blocks", Err: err}
	}
	var reply struct {
		OK               bool   `json:"ok"`
		Error            string `json:"error"`
		Channel          string `json:"channel"`
		TS               string `json:"ts"`
		ResponseMetadata struct {
			Messages []string `json:"messages"`
		} `json:"response_metadata"`
	}
	if err := c.postJSON(ctx, token, method, body, &reply); err != nil {
		return "", "", classify(method, err, false)
	}
	if !reply.OK {
		se := slack.SlackErrorResponse{Err: reply.Error}
		se.ResponseMetadata.Messages = reply.ResponseMetadata.Messages
		return "", "", classify(method, se, false)
	}
	return reply.Channel, reply.TS, nil
}

// postBody is m as chat.postMessage's JSON arguments.
func postBody(m Post) ([]byte, error) {
	type metadata struct {
		EventType    string `json:"event_type"`
		EventPayload struct {
			Marker string `json:"delivery_key"` // MarkerField
		} `json:"event_payload"`
	}
	args := struct {
		Channel     string          `json:"channel"`
		Text        string          `json:"text"`
		Blocks      json.RawMessage `json:"blocks,omitempty"`
		ThreadTS    string          `json:"thread_ts,omitempty"`
		UnfurlLinks bool            `json:"unfurl_links"`
		Metadata    *metadata       `json:"metadata,omitempty"`
	}{Channel: m.Channel, Text: m.Content.Text, ThreadTS: m.ThreadTS, UnfurlLinks: m.UnfurlLinks}
	if len(m.Content.Blocks) > 0 {
		n, err := checkBlocks(m.Content.Blocks)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			args.Blocks = m.Content.Blocks
		}
	}
	if m.Marker != "" {
		args.Metadata = &metadata{EventType: MarkerEventType}
		args.Metadata.EventPayload.Marker = m.Marker
	}
	return json.Marshal(args)
}

// checkBlocks refuses what slack-go's BlockFromJSON refuses (the other
// methods' path): anything but an array of objects that each have a type.
// It returns the number of blocks.
func checkBlocks(raw json.RawMessage) (int, error) {
	var blocks []struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(raw, &blocks); err != nil {
		return 0, fmt.Errorf("blocks: %w", err)
	}
	for i, b := range blocks {
		if b.Type == "" {
			return 0, fmt.Errorf("blocks: block %d has no type", i)
		}
	}
	return len(blocks), nil
}

// postJSON POSTs body to the Web API method and decodes the reply into
// reply, answering failures below the API as slack-go does: a 429 with
// Retry-After is a *slack.RateLimitedError, any other status but 200 a
// slack.StatusCodeError.
func (c *Client) postJSON(ctx context.Context, token, method string, body []byte, reply any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.apiURL+method, bytes.NewReader(body))
	if err != nil {
		return err
	}
	// As slack-go does: the transport may send the body again on a kept-alive
	// connection that turned out closed before anything was written.
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	req.Header["Content-Type"] = jsonContentType
	req.Header["Authorization"] = []string{"Bearer " + token}
	// The transport itself: http.Client.Do copies the request's headers for
	// redirects on every call, and the Web API does not redirect (a client
	// following one would repeat a post as a GET).
	rt := c.hc.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") != "" {
		secs, err := strconv.ParseInt(resp.Header.Get("Retry-After"), 10, 64)
		if err != nil {
			return fmt.Errorf("reading Retry-After: %w", err)
		}
		return &slack.RateLimitedError{RetryAfter: time.Duration(secs) * time.Second}
	}
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // so the connection is kept
		return slack.StatusCodeError{Code: resp.StatusCode, Status: resp.Status}
	}
	buf := replyBuffers.Get().(*bytes.Buffer)
	defer replyBuffers.Put(buf)
	buf.Reset()
	if _, err := buf.ReadFrom(io.LimitReader(resp.Body, maxReply)); err != nil {
		return err
	}
	if err := json.Unmarshal(buf.Bytes(), reply); err != nil {
		return fmt.Errorf("decoding %s reply: %w", method, err)
	}
	return nil
}

// jsonContentType is shared by every request (the transport only reads it);
// Slack asks for the charset.
var jsonContentType = []string{"application/json; charset=utf-8"}

// maxReply bounds a reply read: chat.postMessage echoes the message, whose
// blocks may be up to Slack's limits.
const maxReply = 4 << 20

// replyBuffers hold replies while they are decoded: a post's reply is read
// whole (one buffer per post, grown each time, was the largest part of it).
var replyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// UpdateMessage replaces the content of the app's message ts in channel.
// Repeating it is harmless.
func (c *Client) UpdateMessage(ctx context.Context, token, channel, ts string, content Content) error {
	opts, err := options(content)
	if err != nil {
		return &Error{Method: "chat.update", Kind: KindRefused, Code: "invalid_blocks", Err: err}
	}
	_, _, _, err = c.api(token).UpdateMessageContext(ctx, channel, ts, opts...)
	return classify("chat.update", err, true)
}

// PostEphemeral shows content to user in channel.
func (c *Client) PostEphemeral(ctx context.Context, token, channel, user string, content Content) (ts string, err error) {
	opts, err := options(content)
	if err != nil {
		return "", &Error{Method: "chat.postEphemeral", Kind: KindRefused, Code: "invalid_blocks", Err: err}
	}
	ts, err = c.api(token).PostEphemeralContext(ctx, channel, user, opts...)
	return ts, classify("chat.postEphemeral", err, false)
}

// LookupByEmail finds the user of the token's team with email.
func (c *Client) LookupByEmail(ctx context.Context, token, email string) (userID string, err error) {
	u, err := c.api(token).GetUserByEmailContext(ctx, email)
	if err != nil {
		return "", classify("users.lookupByEmail", err, true)
	}
	if u.Deleted {
		return "", &Error{Method: "users.lookupByEmail", Kind: KindNotFound, Code: "user_disabled"}
	}
	return u.ID, nil
}

// OpenDM opens (or finds) the direct message channel with user.
func (c *Client) OpenDM(ctx context.Context, token, user string) (channelID string, err error) {
	ch, _, _, err := c.api(token).OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{user}})
	if err != nil {
		return "", classify("conversations.open", err, true)
	}
	return ch.ID, nil
}

// History returns one page of channel's messages between oldest and latest
// (Slack ts, both included), newest first, with their metadata, and the
// cursor of the next page ("" at the end).
func (c *Client) History(ctx context.Context, token, channel, oldest, latest, cursor string) ([]HistoryMessage, string, error) {
	resp, err := c.api(token).GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{
		ChannelID: channel, Oldest: oldest, Latest: latest, Inclusive: true, Cursor: cursor, Limit: 200, IncludeAllMetadata: true,
	})
	if err != nil {
		return nil, "", classify("conversations.history", err, true)
	}
	out := make([]HistoryMessage, 0, len(resp.Messages))
	for _, m := range resp.Messages {
		hm := HistoryMessage{TS: m.Timestamp}
		if m.Metadata.EventType == MarkerEventType {
			hm.Marker, _ = m.Metadata.EventPayload[MarkerField].(string)
		}
		out = append(out, hm)
	}
	next := ""
	if resp.HasMore {
		next = resp.ResponseMetaData.NextCursor
	}
	return out, next, nil
}

// Permalink returns the permalink of message ts in channel.
func (c *Client) Permalink(ctx context.Context, token, channel, ts string) (string, error) {
	link, err := c.api(token).GetPermalinkContext(ctx, &slack.PermalinkParameters{Channel: channel, Ts: ts})
	return link, classify("chat.getPermalink", err, true)
}

// GetUploadURL reserves a file of size bytes and returns where to upload it.
func (c *Client) GetUploadURL(ctx context.Context, token, filename string, size int) (uploadURL, fileID string, err error) {
	resp, err := c.api(token).GetUploadURLExternalContext(ctx, slack.GetUploadURLExternalParameters{FileName: filename, FileSize: size})
	if err != nil {
		return "", "", classify("files.getUploadURLExternal", err, true)
	}
	return resp.UploadURL, resp.FileID, nil
}

// Upload sends the file's bytes to the URL GetUploadURL returned. slack-go
// refuses to send the token to a host that is not Slack's or the API URL's.
func (c *Client) Upload(ctx context.Context, token, uploadURL, filename string, content []byte) error {
	err := c.api(token).UploadToURL(ctx, slack.UploadToURLParameters{
		UploadURL: uploadURL, Filename: filename, Reader: bytes.NewReader(content),
	})
	return classify("upload", err, true)
}

// CompleteUpload shares the uploaded file to channels, with comment as its
// initial comment. A file can be completed once: completing it again
// answers file_not_found.
func (c *Client) CompleteUpload(ctx context.Context, token, fileID, title string, channels []string, comment string) error {
	p := slack.CompleteUploadExternalParameters{
		Files:          []slack.FileSummary{{ID: fileID, Title: title}},
		InitialComment: comment,
	}
	if len(channels) == 1 {
		p.Channel = channels[0]
	} else {
		p.Channels = channels
	}
	_, err := c.api(token).CompleteUploadExternalContext(ctx, p)
	return classify("files.completeUploadExternal", err, false)
}

// ErrHostNotAllowed is returned by Respond for a response_url on a host
// that is not one of Slack's.
var ErrHostNotAllowed = errors.New("response_url host is not an allowed Slack host")

// CheckResponseURL refuses a response_url that is not https on an allowed
// host (plain http only for a configured host, such as a local stand-in).
func (c *Client) CheckResponseURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%w: not an absolute URL", ErrHostNotAllowed)
	}
	if u.User != nil {
		return fmt.Errorf("%w: URL carries credentials", ErrHostNotAllowed)
	}
	host := strings.ToLower(u.Host)
	if !slices.Contains(c.respondHosts, host) {
		return fmt.Errorf("%w: %s", ErrHostNotAllowed, u.Host)
	}
	if u.Scheme != "https" && (u.Scheme != "http" || !slices.Contains(c.plainHTTP, host)) {
		return fmt.Errorf("%w: %s must be reached over https", ErrHostNotAllowed, u.Host)
	}
	if err := c.replies.Check(raw); err != nil {
		return fmt.Errorf("%w: %w", ErrHostNotAllowed, err)
	}
	return nil
}

// Respond POSTs r to a response_url. Slack answers 404 expired_url or
// used_url when the URL is past its 30 minutes or 5 uses.
func (c *Client) Respond(ctx context.Context, responseURL string, r Response) error {
	const method = "response_url"
	if err := c.CheckResponseURL(responseURL); err != nil {
		return &Error{Method: method, Kind: KindRefused, Code: "host_not_allowed", Err: err}
	}
	body, err := json.Marshal(r)
	if err != nil {
		return &Error{Method: method, Kind: KindRefused, Code: "invalid_payload", Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, responseURL, bytes.NewReader(body))
	if err != nil {
		return &Error{Method: method, Kind: KindRefused, Code: "invalid_url", Err: err}
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	resp, err := c.hc.Do(req)
	if err != nil {
		return &Error{Method: method, Kind: networkKind(err, false), Code: "network", Err: err}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var answer struct {
		OK               bool   `json:"ok"`
		Error            string `json:"error"`
		ResponseMetadata struct {
			Messages []string `json:"messages"`
		} `json:"response_metadata"`
	}
	_ = json.Unmarshal(raw, &answer)
	switch {
	case resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode == http.StatusTooManyRequests:
		d := parseRetryAfter(resp.Header.Get("Retry-After"))
		return &Error{Method: method, Kind: KindRateLimited, Code: "ratelimited", RetryAfter: d}
	case resp.StatusCode >= 500:
		return &Error{Method: method, Kind: KindTemporary, Code: fmt.Sprintf("http_%d", resp.StatusCode)}
	case answer.Error == "expired_url" || answer.Error == "used_url" || resp.StatusCode == http.StatusNotFound:
		code := answer.Error
		if code == "" {
			code = "expired_url"
		}
		return &Error{Method: method, Kind: KindNotFound, Code: code}
	default:
		code := answer.Error
		if code == "" {
			code = fmt.Sprintf("http_%d", resp.StatusCode)
		}
		return &Error{Method: method, Kind: KindRefused, Code: code, Detail: strings.Join(answer.ResponseMetadata.Messages, "; ")}
	}
}

func parseRetryAfter(v string) time.Duration {
	var secs int
	if _, err := fmt.Sscan(v, &secs); err != nil || secs < 1 {
		return time.Second
	}
	return time.Duration(secs) * time.Second
}
