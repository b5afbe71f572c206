-- The SLA state and next due time from the columns they read, not from a
-- whole tickets row. A list that called sla_state(t::tickets) built a copy
-- of every row it showed twice (the description included): 50 rows of the
-- queue cost ~100 us of the statement's 160. The row forms stay, and say
-- the same by calling these, so the rules are written once.

CREATE FUNCTION sla_state_of(p_tier bigint, p_first_response timestamptz,
	p_closed timestamptz, p_paused timestamptz, p_response_due timestamptz,
	p_resolution_due timestamptz, p_response_warn timestamptz,
	p_resolution_warn timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT CASE
	WHEN p_tier IS NULL THEN 'none'
	WHEN coalesce(p_first_response, p_closed, p_paused, now()) > p_response_due
	  OR coalesce(p_closed, p_paused, now()) > p_resolution_due THEN 'breached'
	WHEN p_closed IS NOT NULL THEN 'met'
	WHEN p_paused IS NOT NULL THEN 'paused'
	WHEN (p_first_response IS NULL AND now() >= p_response_warn)
	  OR now() >= p_resolution_warn THEN 'at_risk'
	ELSE 'ok' END
$$;

CREATE FUNCTION sla_next_due_of(p_first_response timestamptz,
	p_closed timestamptz, p_response_due timestamptz,
	p_resolution_due timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE WHEN p_closed IS NULL THEN
		least(CASE WHEN p_first_response IS NULL THEN p_response_due END,
		      p_resolution_due) END
$$;

CREATE OR REPLACE FUNCTION sla_state(t tickets) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT sla_state_of(t.sla_tier_id, t.first_response_at, t.closed_at,
		t.sla_paused_at, t.response_due_at, t.resolution_due_at,
		t.response_warn_at, t.resolution_warn_at)
$$;

CREATE OR REPLACE FUNCTION sla_next_due(t tickets) RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $$
	SELECT sla_next_due_of(t.first_response_at, t.closed_at,
		t.response_due_at, t.resolution_due_at)
$$;
