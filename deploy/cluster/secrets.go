package cluster

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Secret names: the product's own keys, Slack's (the stand-in plays Slack)
// and the database login. Each service is given only those it reads.
const (
	secSigning      = "SLACK_SIGNING_SECRET"
	secClient       = "SLACK_CLIENT_SECRET"
	secGatewayState = "GATEWAY_STATE_KEY"
	secInstall      = "INSTALL_TICKET_KEY"
	secShareButton  = "SHARE_BUTTON_KEY"
	secReminders    = "REMINDERS_BUTTON_KEY"
	secTokenKeys    = "TEAMS_TOKEN_KEYS"
	secPostgres     = "postgres"
)

// secrets returns the cluster's secrets, made at random on the first start
// and kept in dir/secrets.json (0600), so tokens sealed by one run open in
// the next. None is in the repository.
func secrets(dir string) (map[string]string, error) {
	path := filepath.Join(dir, "secrets.json")
	s := map[string]string{}
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, &s); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	hex32 := func() string { return hex.EncodeToString(random(32)) }
	made := map[string]func() string{
		secSigning: hex32, secClient: hex32, secGatewayState: hex32, secInstall: hex32,
		secShareButton: hex32, secReminders: hex32, secPostgres: hex32,
		secTokenKeys: func() string { return "c1:" + base64.StdEncoding.EncodeToString(random(32)) },
	}
	changed := false
	for k, gen := range made {
		if s[k] == "" {
			s[k], changed = gen(), true
		}
	}
	if !changed {
		return s, nil
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return s, os.WriteFile(path, b, 0o600)
}

func random(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return b
}
