package rpc

import "strings"

// ServerOf is the identity (libs/identity) that serves a full method name
// ("/crmslack.teams.v1.TeamRegistryService/GetTeam" → "teams"): each
// service's API is in a proto package named for it, crmslack.<name>.v1.
// It is "" for a method outside those packages (gRPC's health and
// reflection, which every service serves).
func ServerOf(method string) string {
	rest, ok := strings.CutPrefix(method, "/crmslack.")
	if !ok {
		return ""
	}
	name, rest, ok := strings.Cut(rest, ".")
	if !ok || !strings.HasPrefix(rest, "v") {
		return ""
	}
	return name
}
