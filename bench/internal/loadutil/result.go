package loadutil

import (
	"fmt"
	"strconv"
)

// Problems renders a result's mismatches and errors as extra lines of
// the driver's progress log ("" when there are none).
func Problems(mismatch, errs []string) string {
	out := ""
	for _, m := range mismatch {
		out += "\n  MISMATCH: " + m
	}
	for _, e := range errs {
		out += "\n  ERROR: " + e
	}
	return out
}

// CapErrors keeps the first n of errs and says how many more there were.
func CapErrors(errs []string, n int) []string {
	if len(errs) <= n {
		return errs
	}
	return append(errs[:n:n], fmt.Sprintf("... and %d more", len(errs)-n))
}

// Round2 rounds x to two decimals (for the JSON output).
func Round2(x float64) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'f', 2, 64), 64)
	return v
}
