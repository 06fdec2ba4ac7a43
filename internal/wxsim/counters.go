/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package wxsim

import "time"

// --- quotas and counters ----------------------------------------------------

// consumeQuotaLocked counts a call against the component's daily quota of
// api and reports whether it is within the quota.
func (s *Simulator) consumeQuotaLocked(c *component, api string) bool {
	day := s.clock.Now().In(beijing).Format(time.DateOnly)
	if c.usageDay != day {
		c.usageDay, c.usage = day, map[string]int{}
	}
	limit := s.quotas[api]
	if limit > 0 && c.usage[api] >= limit {
		return false
	}
	c.usage[api]++
	return true
}

// SetQuota sets the daily limit of api per component (0: unlimited).
func (s *Simulator) SetQuota(api string, limit int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if limit <= 0 {
		delete(s.quotas, api)
		return
	}
	s.quotas[api] = limit
}

// Quotas returns the daily limits.
func (s *Simulator) Quotas() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.quotas))
	for k, v := range s.quotas {
		out[k] = v
	}
	return out
}

// Usage returns how many calls of api count against the component's quota
// today.
func (s *Simulator) Usage(componentAppID, api string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.components[componentAppID]
	if !ok || c.usageDay != s.clock.Now().In(beijing).Format(time.DateOnly) {
		return 0
	}
	return c.usage[api]
}

func (s *Simulator) countLocked(api string, appIDs []string, failed bool) {
	m := s.counters[api]
	if m == nil {
		m = map[string]*CallStats{}
		s.counters[api] = m
	}
	seen := false
	for _, id := range appIDs {
		if id == "" {
			continue
		}
		seen = true
		st := m[id]
		if st == nil {
			st = &CallStats{}
			m[id] = st
		}
		st.Calls++
		if failed {
			st.Errors++
		}
	}
	if !seen {
		st := m["-"]
		if st == nil {
			st = &CallStats{}
			m["-"] = st
		}
		st.Calls++
		if failed {
			st.Errors++
		}
	}
}

// Calls returns how many requests of api named appID (as component_appid or
// authorizer_appid).
func (s *Simulator) Calls(api, appID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.counters[api][appID]; st != nil {
		return st.Calls
	}
	return 0
}

// Counters returns a copy of all call counters: endpoint → appid → stats.
// Requests naming no appid are counted under "-".
func (s *Simulator) Counters() map[string]map[string]CallStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]map[string]CallStats, len(s.counters))
	for api, m := range s.counters {
		o := make(map[string]CallStats, len(m))
		for id, st := range m {
			o[id] = *st
		}
		out[api] = o
	}
	return out
}

// ResetCounters zeroes the call counters (not the quotas).
func (s *Simulator) ResetCounters() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counters = map[string]map[string]*CallStats{}
}
