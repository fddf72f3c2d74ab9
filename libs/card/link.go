package card

import crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"

// RecordURL is the record's "Open in CRM" link as the card's button has
// it: the record's own URL, else one built from cfg.BaseURL; "" when the
// link would not be a valid http(s) URL Slack takes.
func RecordURL(cfg Config, rec *crmv1.Record) string { return recordURL(cfg, rec) }
