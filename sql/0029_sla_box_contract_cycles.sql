-- Values a page shows only for some rows, computed only for those rows.
--
-- PostgreSQL compiles every expression of a statement's select list each
-- time it runs the statement, whether a row needs it or not. The ticket
-- page's SLA box (two clocks: due times in two forms, state, time left)
-- was eleven columns of CASE, coalesce and to_char: about 30 us of every
-- ticket page, the many tickets without a tier included. The contract in
-- force carried its block cycles the same way, for contracts without a
-- block too. Each is now one call, made by the page only where it applies
-- (CASE WHEN ... THEN f(...) END), and each returns a JSON array the page
-- reads. Functions in PL/pgSQL keep their plans for the session.

-- One clock of the box: [due in p_zone "YYYY-MM-DD HH24:MI", due in UTC ISO
-- 8601, state, seconds], state one of ok, at_risk, breached, met, paused;
-- seconds left (business time) or, when breached, minus the wall seconds
-- overdue, both at the instant the clock stopped (p_stop), paused, or now.
-- NULL when the clock has no due time.
CREATE FUNCTION sla_clock(p_tenant bigint, p_tier bigint, p_due timestamptz,
	p_warn timestamptz, p_stop timestamptz, p_paused timestamptz,
	p_zone text) RETURNS json
LANGUAGE plpgsql STABLE AS $$
DECLARE
	v_at timestamptz := coalesce(p_stop, p_paused, now());
	v_state text;
	v_secs bigint;
BEGIN
	IF p_due IS NULL THEN
		RETURN NULL;
	END IF;
	IF v_at > p_due THEN
		v_state := 'breached';
		v_secs := -floor(extract(epoch FROM v_at - p_due))::bigint;
	ELSE
		v_state := CASE WHEN p_stop IS NOT NULL THEN 'met'
			WHEN p_paused IS NOT NULL THEN 'paused'
			WHEN now() >= p_warn THEN 'at_risk'
			ELSE 'ok' END;
		v_secs := sla_business_seconds(p_tenant, p_tier, v_at, p_due);
	END IF;
	RETURN json_build_array(
		to_char(p_due AT TIME ZONE p_zone, 'YYYY-MM-DD HH24:MI'),
		to_char(p_due AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
		v_state, v_secs);
END
$$;

-- A ticket's SLA box: [tier name, calendar, response clock, resolution
-- clock] (see sla_clock), or NULL when the tier is not found.
CREATE FUNCTION sla_box(p_tenant bigint, p_tier bigint,
	p_first_response timestamptz, p_closed timestamptz,
	p_paused timestamptz, p_response_due timestamptz,
	p_response_warn timestamptz, p_resolution_due timestamptz,
	p_resolution_warn timestamptz, p_zone text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
	r record;
BEGIN
	SELECT name, calendar INTO r FROM sla_tiers
	WHERE tenant_id = p_tenant AND id = p_tier;
	IF NOT FOUND THEN
		RETURN NULL;
	END IF;
	RETURN json_build_array(r.name, r.calendar,
		sla_clock(p_tenant, p_tier, p_response_due, p_response_warn,
			coalesce(p_first_response, p_closed), p_paused, p_zone),
		sla_clock(p_tenant, p_tier, p_resolution_due,
			p_resolution_warn, p_closed, p_paused, p_zone))::text;
END
$$;

-- A block contract's cycles on the tenant's today (p_zone): [first day,
-- day after the last, last day, and as instants in p_zone: the cycle's
-- start and end, the previous cycle's start and end] — dates as
-- YYYY-MM-DD, instants as timestamptz text; the previous cycle's are null
-- in the first cycle.
CREATE FUNCTION contract_block_cycles(p_starts date, p_ends date,
	p_freq text, p_day integer, p_zone text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
	cy daterange := contract_cycle(p_starts, p_ends, p_freq, p_day,
		(now() AT TIME ZONE p_zone)::date);
	pc daterange;
BEGIN
	IF lower(cy) > p_starts THEN
		pc := contract_cycle(p_starts, p_ends, p_freq, p_day,
			lower(cy) - 1);
	END IF;
	RETURN json_build_array(lower(cy)::text, upper(cy)::text,
		(upper(cy) - 1)::text,
		(lower(cy)::timestamp AT TIME ZONE p_zone)::text,
		(upper(cy)::timestamp AT TIME ZONE p_zone)::text,
		(lower(pc)::timestamp AT TIME ZONE p_zone)::text,
		(upper(pc)::timestamp AT TIME ZONE p_zone)::text)::text;
END
$$;
