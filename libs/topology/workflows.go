package topology

// Subjects and durable consumers of the workflows service.

// WorkflowActionsRemoved is the subject of workflows.v1.WorkflowActionsRemoved:
// a removed team's workflow actions were deleted.
func WorkflowActionsRemoved(org string) string {
	return "integration.v1." + org + ".workflow.actions_removed"
}

// WorkflowTargetsFlagged is the subject of workflows.v1.WorkflowTargetsFlagged:
// Slack said targets of a workflow action no longer exist.
func WorkflowTargetsFlagged(org string) string {
	return "integration.v1." + org + ".workflow.targets_flagged"
}

// BucketWorkflows is the JetStream key-value bucket the workflows service
// keeps its actions, the latest module schemas and the orgs' formats in.
const BucketWorkflows = "workflows"
