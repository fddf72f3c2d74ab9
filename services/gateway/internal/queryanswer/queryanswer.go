// Package queryanswer asks the query service for a slash command's answer
// and shapes it as the body Slack shows: an ephemeral message, visible only
// to the caller.
package queryanswer

import (
	"context"
	"encoding/json"
	"fmt"

	queryv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/query/v1"

	"github.com/crmslack/crmslack/services/gateway/internal/slackhttp"
)

// Client answers through QueryService.RunSlashCommand.
type Client struct {
	query queryv1.QueryServiceClient
}

// New returns a client of the query service.
func New(q queryv1.QueryServiceClient) *Client { return &Client{query: q} }

// response is Slack's slash-command response body.
type response struct {
	ResponseType string          `json:"response_type"`
	Text         string          `json:"text"`
	Blocks       json.RawMessage `json:"blocks,omitempty"`
}

// Answer returns the Slack body for c, or an error when the query service
// did not answer within ctx.
func (c *Client) Answer(ctx context.Context, org string, cmd slackhttp.SlashCommand) ([]byte, error) {
	resp, err := c.query.RunSlashCommand(ctx, &queryv1.RunSlashCommandRequest{
		OrgId: org, TeamId: cmd.TeamID, ChannelId: cmd.ChannelID, SlackUserId: cmd.UserID,
		Text: cmd.Text, ResponseUrl: cmd.ResponseURL, CommandEventId: slackhttp.CommandEventID(cmd),
	})
	if err != nil {
		return nil, fmt.Errorf("asking the query service: %w", err)
	}
	body := response{ResponseType: "ephemeral", Text: resp.GetText()}
	if b := resp.GetBlocksJson(); len(b) > 0 {
		if !json.Valid(b) {
			return nil, fmt.Errorf("the query service answered invalid blocks JSON")
		}
		body.Blocks = b
	}
	return json.Marshal(body)
}
