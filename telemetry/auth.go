package telemetry

// AuthResults are the values of grey_auth_requests_total{result}; any
// other value counts as "other".
var AuthResults = []string{"allowed", "anonymous", "unauthenticated", "denied"}

// AuthRequest counts one request on an authorized API route by its
// authentication result.
func (m *Metrics) AuthRequest(result string) {
	ok := false
	for _, r := range AuthResults {
		if r == result {
			ok = true
			break
		}
	}
	if !ok {
		result = Other
	}
	m.authRequests.WithLabelValues(result).Inc()
}

// AuditEvent counts one line written to the audit log.
func (m *Metrics) AuditEvent() { m.auditEvents.Inc() }
