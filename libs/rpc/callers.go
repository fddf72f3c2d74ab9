package rpc

import (
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/crmslack/crmslack/libs/identity"
	deliveryv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/delivery/v1"
	queryv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/query/v1"
	remindersv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/reminders/v1"
	sharingv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/sharing/v1"
	signalsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/signals/v1"
	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"
	workflowsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/workflows/v1"
)

// console is the one identity besides the CRM that acts for a CRM user.
var console = []string{identity.Console}

// Callers is who may call each gRPC method, by full method name: the one
// authorization table, enforced for every server by one interceptor
// (authz.go). A method missing here is refused to everyone, and
// TestEveryMethodHasARule fails until it has a row.
//
// To add a service: give it a name in libs/identity, add one row per method it serves
// (who calls it, and whether the CRM may, as user or admin), and add it to
// the Services of the rows of the methods it calls. The console calls for
// the CRM user signed in: it is in ForCRM of the rows it calls, never in
// Services.
var Callers = map[string]Rule{
	// Team registry.
	teamsv1.TeamRegistryService_ListTeams_FullMethodName:          {Services: []string{identity.Sharing, identity.Workflows}, CRM: CRMUser, ForCRM: console},
	teamsv1.TeamRegistryService_GetTeam_FullMethodName:            {CRM: CRMUser, ForCRM: console},
	teamsv1.TeamRegistryService_BeginInstall_FullMethodName:       {CRM: CRMAdmin, ForCRM: console},
	teamsv1.TeamRegistryService_CompleteInstall_FullMethodName:    {Services: []string{identity.Gateway}},
	teamsv1.TeamRegistryService_RemoveTeam_FullMethodName:         {CRM: CRMAdmin, ForCRM: console},
	teamsv1.TeamRegistryService_DisableIntegration_FullMethodName: {CRM: CRMAdmin, ForCRM: console},
	teamsv1.TeamRegistryService_EnableIntegration_FullMethodName:  {CRM: CRMAdmin, ForCRM: console},
	teamsv1.TeamRegistryService_GetIntegration_FullMethodName:     {CRM: CRMUser, ForCRM: console},
	teamsv1.TeamRegistryService_GetBotToken_FullMethodName:        {Services: []string{identity.Delivery}},
	teamsv1.TeamRegistryService_ReportTokenFailure_FullMethodName: {Services: []string{identity.Delivery}},
	teamsv1.TeamRegistryService_ResolveTeam_FullMethodName:        {Services: []string{identity.Query}},
	teamsv1.TeamRegistryService_GetSlackUser_FullMethodName:       {Services: []string{identity.Query, identity.Sharing}},
	teamsv1.TeamRegistryService_ListDirectory_FullMethodName:      {Services: []string{identity.Sharing, identity.Workflows, identity.Signals}},

	// Query.
	queryv1.QueryService_RunSlashCommand_FullMethodName: {Services: []string{identity.Gateway}},
	queryv1.QueryService_GetRecord_FullMethodName:       {Services: []string{identity.Sharing}},
	queryv1.QueryService_IsCrmUser_FullMethodName:       {Services: []string{identity.Sharing}},

	// Sharing: what the CRM's share dialog and share history ask.
	sharingv1.SharingService_ShareRecord_FullMethodName: {CRM: CRMUser},
	sharingv1.SharingService_ShareChart_FullMethodName:  {CRM: CRMUser},
	sharingv1.SharingService_ListTargets_FullMethodName: {CRM: CRMUser, ForCRM: console},
	sharingv1.SharingService_ListShares_FullMethodName:  {CRM: CRMUser},

	// Workflow actions: admins change them, any user of the org reads them.
	workflowsv1.WorkflowActionsService_CreateAction_FullMethodName: {CRM: CRMAdmin, ForCRM: console},
	workflowsv1.WorkflowActionsService_UpdateAction_FullMethodName: {CRM: CRMAdmin, ForCRM: console},
	workflowsv1.WorkflowActionsService_DeleteAction_FullMethodName: {CRM: CRMAdmin, ForCRM: console},
	workflowsv1.WorkflowActionsService_SetOrgFormat_FullMethodName: {CRM: CRMAdmin},
	workflowsv1.WorkflowActionsService_GetAction_FullMethodName:    {CRM: CRMUser, ForCRM: console},
	workflowsv1.WorkflowActionsService_ListActions_FullMethodName:  {CRM: CRMUser, ForCRM: console},
	workflowsv1.WorkflowActionsService_ListHistory_FullMethodName:  {CRM: CRMUser, ForCRM: console},
	workflowsv1.WorkflowActionsService_GetOrgFormat_FullMethodName: {CRM: CRMUser},
	// The fields a template may name, for the editor's "#" completion.
	workflowsv1.WorkflowActionsService_GetModuleSchema_FullMethodName: {CRM: CRMUser, ForCRM: console},

	// SalesSignals settings: admins change the matrix and teams, users read.
	signalsv1.SalesSignalsSettingsService_GetSettings_FullMethodName:    {CRM: CRMUser, ForCRM: console},
	signalsv1.SalesSignalsSettingsService_UpdateCells_FullMethodName:    {CRM: CRMAdmin, ForCRM: console},
	signalsv1.SalesSignalsSettingsService_ReplaceMatrix_FullMethodName:  {CRM: CRMAdmin, ForCRM: console},
	signalsv1.SalesSignalsSettingsService_ResetSettings_FullMethodName:  {CRM: CRMAdmin, ForCRM: console},
	signalsv1.SalesSignalsSettingsService_SetDefaultTeam_FullMethodName: {CRM: CRMAdmin, ForCRM: console},
	// The owner themself or an admin: the service checks which.
	signalsv1.SalesSignalsSettingsService_SetOwnerTeam_FullMethodName: {CRM: CRMUser},

	// Reminder preferences: each identity.CRM user's own (SetPreferences' user is the
	// credential's).
	remindersv1.ReminderPreferencesService_GetPreferences_FullMethodName: {CRM: CRMUser, ForCRM: console},
	remindersv1.ReminderPreferencesService_SetPreferences_FullMethodName: {CRM: CRMUser, ForCRM: console},

	// Delivery's audit trail.
	deliveryv1.DeliveryAuditService_ListDeliveries_FullMethodName: {CRM: CRMAdmin, ForCRM: console},
	// Its dead letters: what it gave up on, and sending one back.
	deliveryv1.DeadLetterService_ListDeadLetters_FullMethodName:   {CRM: CRMAdmin, ForCRM: console},
	deliveryv1.DeadLetterService_ReplayDeadLetter_FullMethodName:  {CRM: CRMAdmin, ForCRM: console},
	deliveryv1.DeadLetterService_DiscardDeadLetter_FullMethodName: {CRM: CRMAdmin, ForCRM: console},

	// Every authenticated peer may ask a server's health and read its
	// schema (the schema is public: it is in the repository).
	healthpb.Health_Check_FullMethodName:                             {AnyService: true},
	healthpb.Health_Watch_FullMethodName:                             {AnyService: true},
	healthpb.Health_List_FullMethodName:                              {AnyService: true},
	"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo":      {AnyService: true},
	"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": {AnyService: true},
}
