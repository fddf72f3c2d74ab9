package natsauth

import (
	"fmt"
	"strings"
)

// ServerConfig renders the authorization block of a production
// nats-server configuration for the services and crmOrgs, each password
// read from the server's environment ($<USER>_NATS_PASSWORD, or a bcrypt
// hash there: nats server passwd). deploy/nats/nats-server.conf is this
// output; TestServerConfigIsCurrent keeps it so.
func ServerConfig(crmOrgs []string) (string, error) {
	var b strings.Builder
	b.WriteString("# Generated from libs/natsauth (go test ./libs/natsauth -update); edit the table there.\n")
	b.WriteString("authorization {\n  users = [\n")
	for _, s := range Services {
		p, err := Permissions(s)
		if err != nil {
			return "", err
		}
		writeUser(&b, s, p.Publish.Allow, p.Subscribe.Allow)
	}
	for _, org := range crmOrgs {
		p := CRMPermissions(org)
		writeUser(&b, CRMUser(org), p.Publish.Allow, p.Subscribe.Allow)
	}
	b.WriteString("  ]\n}\n")
	return b.String(), nil
}

func writeUser(b *strings.Builder, user string, pubAllow, subAllow []string) {
	env := PasswordVar(user)
	fmt.Fprintf(b, "    {\n      user: %q\n      password: $%s\n      permissions: {\n", user, env)
	fmt.Fprintf(b, "        publish: { allow: %s }\n", list(pubAllow))
	fmt.Fprintf(b, "        subscribe: { allow: %s }\n", list(subAllow))
	b.WriteString("      }\n    }\n")
}

// PasswordVar is the server's environment variable holding user's password.
func PasswordVar(user string) string {
	return strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(user)) + "_NATS_PASSWORD"
}

func list(subjects []string) string {
	q := make([]string, len(subjects))
	for i, s := range subjects {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
