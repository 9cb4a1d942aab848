package api

import (
	"net/http"
	"time"

	"github.com/grey-distributed/grey/apitypes"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/tenant"
)

func (s *Server) createTenant(w http.ResponseWriter, r *http.Request) {
	var t tenant.Tenant
	if err := s.decode(w, r, &t); err != nil {
		s.writeError(w, r, err)
		return
	}
	if !t.CreatedAt.IsZero() || !t.UpdatedAt.IsZero() || t.AutoCreated {
		s.writeError(w, r, greyerr.Invalid("created_at", "created_at, updated_at and auto_created are set by the server"))
		return
	}
	out, err := s.eng.CreateTenant(r.Context(), &t)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, out)
}

func (s *Server) listTenants(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, apitypes.TenantList{Tenants: s.eng.ListTenants(r.Context())})
}

func (s *Server) getTenant(w http.ResponseWriter, r *http.Request) {
	t, err := s.eng.GetTenant(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

func (s *Server) updateTenant(w http.ResponseWriter, r *http.Request) {
	var req apitypes.UpdateTenantRequest
	if err := s.decode(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Quota == nil {
		s.writeError(w, r, greyerr.Invalid("quota", "is required: PUT replaces the whole quota (omitted fields mean no limit)"))
		return
	}
	id := r.PathValue("id")
	if err := tenant.ValidID("id", id); err != nil {
		s.writeError(w, r, err)
		return
	}
	out, err := s.eng.UpdateTenant(r.Context(), &tenant.Tenant{ID: id, Quota: *req.Quota})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) deleteTenant(w http.ResponseWriter, r *http.Request) {
	t, err := s.eng.DeleteTenant(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

func (s *Server) usage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var from, to time.Time
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"from", &from}, {"to", &to}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				s.writeError(w, r, greyerr.Invalid(p.name, "must be an RFC 3339 time, got %q", v))
				return
			}
			*p.dst = t
		}
	}
	rep, err := s.eng.Usage(r.Context(), q.Get("tenant"), from, to)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}
