package action

import (
	"slices"
	"strings"
)

func sortExecutions(xs []Execution) {
	slices.SortStableFunc(xs, func(a, b Execution) int {
		if c := b.At.Compare(a.At); c != 0 {
			return c
		}
		return strings.Compare(a.ActionID+a.TriggerEventID, b.ActionID+b.TriggerEventID)
	})
}
