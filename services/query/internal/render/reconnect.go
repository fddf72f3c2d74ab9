package render

import "github.com/slack-go/slack"

// ReconnectMessage tells a user their workspace's authorization is gone.
const ReconnectMessage = "This Slack workspace must be reconnected to the CRM: Slack no longer accepts the app's authorization"

// Reconnect renders the answer for a team whose token Slack refuses: no
// data, and what to do.
func Reconnect() Answer {
	return Answer{
		Text: ReconnectMessage + ". Ask a CRM administrator to reconnect Slack.",
		Blocks: []slack.Block{
			section(":electric_plug: " + ReconnectMessage + "."),
			contextBlock("Ask a CRM administrator to reconnect Slack under Setup > Marketplace > Slack."),
		},
	}
}
