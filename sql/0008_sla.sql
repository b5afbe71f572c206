-- 0008_sla.sql: SLA tiers (targets, calendar, holidays), the SLA clocks
-- on tickets and the events the sla-sweep batch raises.
--
-- Every clock is "start + N business seconds" in the tier's calendar, where
-- N = target + time paused so far. Due times are computed here, by
-- triggers, so every way a ticket is created gets them. See docs/DESIGN.md
-- ("SLA").

CREATE TABLE sla_tiers (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	id bigint GENERATED ALWAYS AS IDENTITY,
	name text NOT NULL CHECK (length(name) BETWEEN 1 AND 60),
	-- The tier of tickets whose client has no active contract.
	is_fallback boolean NOT NULL DEFAULT false,
	position int NOT NULL DEFAULT 0,
	-- Minutes per priority 1..4 (index 1 = priority 1, the most urgent).
	response_minutes int[] NOT NULL CHECK (cardinality(response_minutes) = 4
		AND 0 < ALL (response_minutes) AND 5256000 >= ALL (response_minutes)),
	resolution_minutes int[] NOT NULL CHECK (cardinality(resolution_minutes) = 4
		AND 0 < ALL (resolution_minutes) AND 5256000 >= ALL (resolution_minutes)),
	-- '24x7' counts every minute; 'business' only the opening hours, in
	-- time_zone, skipping sla_holidays.
	calendar text NOT NULL DEFAULT '24x7' CHECK (calendar IN ('24x7', 'business')),
	time_zone text NOT NULL DEFAULT 'Europe/London',
	-- Opening hours per ISO weekday (index 1 = Monday), local time; NULL:
	-- closed that day. closes may be 24:00.
	opens time[] NOT NULL DEFAULT '{NULL,NULL,NULL,NULL,NULL,NULL,NULL}',
	closes time[] NOT NULL DEFAULT '{NULL,NULL,NULL,NULL,NULL,NULL,NULL}',
	pause_on_waiting boolean NOT NULL DEFAULT true,
	-- VIP contacts: 'bump' raises the priority by one, 'targets' caps the
	-- targets at vip_*_minutes, 'none' treats them like anyone else.
	vip_mode text NOT NULL DEFAULT 'bump' CHECK (vip_mode IN ('none', 'bump', 'targets')),
	vip_response_minutes int CHECK (vip_response_minutes BETWEEN 1 AND 5256000),
	vip_resolution_minutes int CHECK (vip_resolution_minutes BETWEEN 1 AND 5256000),
	warn_percent smallint NOT NULL DEFAULT 75 CHECK (warn_percent BETWEEN 1 AND 99),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (tenant_id, id),
	UNIQUE (tenant_id, name),
	CHECK (vip_mode <> 'targets' OR (vip_response_minutes IS NOT NULL
		AND vip_resolution_minutes IS NOT NULL)),
	CHECK (cardinality(opens) = 7 AND cardinality(closes) = 7)
);
CREATE UNIQUE INDEX sla_tiers_one_fallback ON sla_tiers (tenant_id) WHERE is_fallback;

-- Days a business calendar is closed all day (local dates).
CREATE TABLE sla_holidays (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	id bigint GENERATED ALWAYS AS IDENTITY,
	tier_id bigint NOT NULL,
	day date NOT NULL,
	name text NOT NULL DEFAULT '' CHECK (length(name) <= 100),
	PRIMARY KEY (tenant_id, id),
	UNIQUE (tenant_id, tier_id, day),
	FOREIGN KEY (tenant_id, tier_id) REFERENCES sla_tiers (tenant_id, id) ON DELETE CASCADE
);

-- What sla-sweep raised: once per ticket, clock and kind. Notifications
-- and the workflow engine consume these; breaches are kept for reporting.
CREATE TABLE sla_events (
	tenant_id bigint NOT NULL,
	id bigint GENERATED ALWAYS AS IDENTITY,
	ticket_id bigint NOT NULL,
	clock text NOT NULL CHECK (clock IN ('response', 'resolution')),
	kind text NOT NULL CHECK (kind IN ('warning', 'breach')),
	due_at timestamptz NOT NULL,
	raised_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (tenant_id, id),
	UNIQUE (tenant_id, ticket_id, clock, kind),
	FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id)
);
-- Consumers read new events by id (the primary key).

ALTER TABLE tickets
	ADD COLUMN sla_tier_id bigint,
	ADD COLUMN response_due_at timestamptz,
	ADD COLUMN resolution_due_at timestamptz,
	-- When the warning threshold of each clock is reached (business time).
	ADD COLUMN response_warn_at timestamptz,
	ADD COLUMN resolution_warn_at timestamptz,
	-- Set while waiting on the client and the tier pauses.
	ADD COLUMN sla_paused_at timestamptz,
	-- Business seconds paused before sla_paused_at (already in the due times).
	ADD COLUMN sla_paused_seconds bigint NOT NULL DEFAULT 0,
	ADD FOREIGN KEY (tenant_id, sla_tier_id) REFERENCES sla_tiers (tenant_id, id);
CREATE INDEX tickets_sla_response_due ON tickets (tenant_id, response_due_at)
	WHERE first_response_at IS NULL AND closed_at IS NULL;
CREATE INDEX tickets_sla_resolution_due ON tickets (tenant_id, resolution_due_at)
	WHERE closed_at IS NULL;
CREATE INDEX tickets_sla_tier ON tickets (tenant_id, sla_tier_id);

-- sla-sweep's work list: a copy of each SLA ticket's clocks, kept by the
-- triggers below, with what the sweep has raised. next_at is the next
-- instant the sweep has something to raise (NULL: nothing pending). The
-- sweep marks progress here, in a narrow table, instead of rewriting the
-- wide, heavily indexed ticket rows.
CREATE TABLE sla_schedule (
	tenant_id bigint NOT NULL,
	ticket_id bigint NOT NULL,
	tier_id bigint NOT NULL,
	running boolean NOT NULL,       -- open and not paused
	response_open boolean NOT NULL, -- no first response yet
	response_warn_at timestamptz,
	response_due_at timestamptz,
	resolution_warn_at timestamptz,
	resolution_due_at timestamptz,
	response_warned boolean NOT NULL DEFAULT false,
	response_breached boolean NOT NULL DEFAULT false,
	resolution_warned boolean NOT NULL DEFAULT false,
	resolution_breached boolean NOT NULL DEFAULT false,
	next_at timestamptz GENERATED ALWAYS AS (CASE WHEN running THEN least(
		CASE WHEN response_open AND NOT response_warned THEN response_warn_at END,
		CASE WHEN response_open AND NOT response_breached THEN response_due_at END,
		CASE WHEN NOT resolution_warned THEN resolution_warn_at END,
		CASE WHEN NOT resolution_breached THEN resolution_due_at END) END) STORED,
	PRIMARY KEY (tenant_id, ticket_id),
	FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX sla_schedule_next ON sla_schedule (tenant_id, next_at)
	WHERE next_at IS NOT NULL;

-- The tier a new ticket of a client gets at a given time. Here: the
-- tenant's fallback tier. 0009 (contracts) replaces it to return the
-- active contract's tier first; callers always go through this function.
-- Without a bound tenant (the owner inserting, e.g. tests) the client's
-- tenant is used. plpgsql so its plan is cached (it runs per new ticket).
CREATE FUNCTION sla_client_tier(p_client bigint, p_at timestamptz) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE
	v_tenant bigint := app_tenant();
	v_tier bigint;
BEGIN
	IF v_tenant IS NULL THEN
		SELECT c.tenant_id INTO v_tenant FROM clients c WHERE c.id = p_client;
	END IF;
	SELECT id INTO v_tier FROM sla_tiers WHERE tenant_id = v_tenant AND is_fallback;
	RETURN v_tier;
END
$$;

-- p_start plus each of p_seconds (business seconds) in a calendar of
-- opening hours (p_opens/p_closes per ISO weekday, local time in p_tz)
-- without the days in p_holidays (ascending), in one walk over the days.
-- A clock starting outside opening hours starts at the next opening.
-- Local dates and times become instants with AT TIME ZONE, so a
-- daylight-saving change moves the instants and not the opening hours. A
-- week without holidays or clock change is skipped at once. No opening
-- hours at all: every second counts.
CREATE FUNCTION sla_walk(p_tz text, p_opens time[], p_closes time[], p_holidays date[],
	p_start timestamptz, p_seconds bigint[]) RETURNS timestamptz[]
LANGUAGE plpgsql STABLE AS $$
DECLARE
	n int := cardinality(p_seconds);
	v_out timestamptz[] := array_fill(NULL::timestamptz, ARRAY[n]);
	v_first date := (p_start AT TIME ZONE p_tz)::date;
	v_day date := (p_start AT TIME ZONE p_tz)::date;
	v_week interval := interval '0';
	v_done interval := interval '0';
	v_left int := n;
	v_hol int := 1;
	v_guard int := 0;
	v_dow int;
	v_open timestamptz;
	v_close timestamptz;
	v_span interval;
	v_need interval;
	v_min interval;
	i int;
BEGIN
	IF array_remove(p_opens, NULL) = '{}' THEN
		FOR i IN 1 .. n LOOP
			v_out[i] := p_start + make_interval(secs => greatest(p_seconds[i], 0));
		END LOOP;
		RETURN v_out;
	END IF;
	FOR i IN 1 .. 7 LOOP
		IF p_opens[i] IS NOT NULL THEN
			v_week := v_week + (p_closes[i] - p_opens[i]);
		END IF;
	END LOOP;
	WHILE v_left > 0 LOOP
		WHILE p_holidays[v_hol] < v_day LOOP
			v_hol := v_hol + 1;
		END LOOP;
		IF v_day > v_first AND (p_holidays[v_hol] IS NULL OR p_holidays[v_hol] >= v_day + 7) THEN
			v_min := NULL;
			FOR i IN 1 .. n LOOP
				IF v_out[i] IS NULL THEN
					v_min := least(v_min, make_interval(secs => greatest(p_seconds[i], 0)) - v_done);
				END IF;
			END LOOP;
			IF v_min > v_week AND ((v_day + 7)::timestamp AT TIME ZONE p_tz)
					- (v_day::timestamp AT TIME ZONE p_tz) = interval '7 days' THEN
				v_done := v_done + v_week;
				v_day := v_day + 7;
				CONTINUE;
			END IF;
		END IF;
		v_dow := extract(isodow FROM v_day)::int;
		IF p_opens[v_dow] IS NOT NULL AND v_day IS DISTINCT FROM p_holidays[v_hol] THEN
			v_open := greatest((v_day + p_opens[v_dow]) AT TIME ZONE p_tz, p_start);
			v_close := (v_day + p_closes[v_dow]) AT TIME ZONE p_tz;
			IF v_open < v_close THEN
				v_span := v_close - v_open;
				FOR i IN 1 .. n LOOP
					IF v_out[i] IS NULL THEN
						v_need := make_interval(secs => greatest(p_seconds[i], 0)) - v_done;
						IF v_need <= v_span THEN
							v_out[i] := v_open + v_need;
							v_left := v_left - 1;
						END IF;
					END IF;
				END LOOP;
				v_done := v_done + v_span;
			END IF;
		END IF;
		v_day := v_day + 1;
		v_guard := v_guard + 1;
		IF v_guard > 20000 THEN
			RAISE EXCEPTION 'SLA calendar has no opening hours ahead';
		END IF;
	END LOOP;
	RETURN v_out;
END
$$;

-- p_start plus each of p_seconds of business time in tier p_tier's
-- calendar (24x7: plain addition).
CREATE FUNCTION sla_add_business_many(p_tenant bigint, p_tier bigint,
	p_start timestamptz, p_seconds bigint[]) RETURNS timestamptz[]
LANGUAGE plpgsql STABLE AS $$
DECLARE
	t record;
	v_out timestamptz[] := '{}';
	i int;
BEGIN
	SELECT s.calendar, s.time_zone, s.opens, s.closes,
		ARRAY(SELECT day FROM sla_holidays WHERE tenant_id = p_tenant
			AND tier_id = p_tier AND day >= (p_start AT TIME ZONE s.time_zone)::date - 1
			ORDER BY day) AS holidays
	INTO t FROM sla_tiers s WHERE s.tenant_id = p_tenant AND s.id = p_tier;
	IF t.calendar IS DISTINCT FROM 'business' THEN
		FOR i IN 1 .. cardinality(p_seconds) LOOP
			v_out := v_out || (p_start + make_interval(secs => greatest(p_seconds[i], 0)));
		END LOOP;
		RETURN v_out;
	END IF;
	RETURN sla_walk(t.time_zone, t.opens, t.closes, t.holidays, p_start, p_seconds);
END
$$;

-- p_start plus p_seconds of business time in tier p_tier's calendar.
CREATE FUNCTION sla_add_business(p_tenant bigint, p_tier bigint, p_start timestamptz,
	p_seconds bigint) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
	SELECT (sla_add_business_many(p_tenant, p_tier, p_start, ARRAY[p_seconds]))[1]
$$;

-- Business seconds between two instants in tier p_tier's calendar.
CREATE FUNCTION sla_business_seconds(p_tenant bigint, p_tier bigint, p_from timestamptz,
	p_to timestamptz) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE
	t record;
	v_day date;
	v_last date;
	v_dow int;
	v_open timestamptz;
	v_close timestamptz;
	v_sum interval := interval '0';
BEGIN
	IF p_to <= p_from THEN
		RETURN 0;
	END IF;
	SELECT s.calendar, s.time_zone, s.opens, s.closes,
		ARRAY(SELECT day FROM sla_holidays WHERE tenant_id = p_tenant
			AND tier_id = p_tier
			AND day BETWEEN (p_from AT TIME ZONE s.time_zone)::date - 1
			AND (p_to AT TIME ZONE s.time_zone)::date + 1) AS holidays
	INTO t FROM sla_tiers s WHERE s.tenant_id = p_tenant AND s.id = p_tier;
	IF t.calendar IS DISTINCT FROM 'business' OR array_remove(t.opens, NULL) = '{}' THEN
		RETURN floor(extract(epoch FROM p_to - p_from))::bigint;
	END IF;
	v_day := (p_from AT TIME ZONE t.time_zone)::date;
	v_last := (p_to AT TIME ZONE t.time_zone)::date;
	WHILE v_day <= v_last LOOP
		v_dow := extract(isodow FROM v_day)::int;
		IF t.opens[v_dow] IS NOT NULL AND NOT v_day = ANY (t.holidays) THEN
			v_open := greatest((v_day + t.opens[v_dow]) AT TIME ZONE t.time_zone, p_from);
			v_close := least((v_day + t.closes[v_dow]) AT TIME ZONE t.time_zone, p_to);
			IF v_open < v_close THEN
				v_sum := v_sum + (v_close - v_open);
			END IF;
		END IF;
		v_day := v_day + 1;
	END LOOP;
	RETURN floor(extract(epoch FROM v_sum))::bigint;
END
$$;

-- Whether tier p_tier's calendar is open at p_at (24x7: always).
CREATE FUNCTION sla_is_open(p_tenant bigint, p_tier bigint, p_at timestamptz)
RETURNS boolean
LANGUAGE sql STABLE AS $$
	SELECT coalesce(t.calendar = '24x7' OR array_remove(t.opens, NULL) = '{}'
	    OR (t.opens[extract(isodow FROM p_at AT TIME ZONE t.time_zone)] <=
			(p_at AT TIME ZONE t.time_zone)::time
		AND t.closes[extract(isodow FROM p_at AT TIME ZONE t.time_zone)] >=
			(p_at AT TIME ZONE t.time_zone)::time
		AND NOT EXISTS (SELECT 1 FROM sla_holidays d
			WHERE d.tenant_id = p_tenant AND d.tier_id = p_tier
			  AND d.day = (p_at AT TIME ZONE t.time_zone)::date)), false)
	FROM sla_tiers t WHERE t.tenant_id = p_tenant AND t.id = p_tier
$$;

-- Response and resolution targets (minutes) of a tier for a priority,
-- VIP handling included.
CREATE FUNCTION sla_targets(p_tenant bigint, p_tier bigint, p_priority int, p_vip boolean,
	OUT response_minutes int, OUT resolution_minutes int)
LANGUAGE sql STABLE AS $$
	SELECT CASE WHEN p_vip AND t.vip_mode = 'targets'
			THEN least(t.response_minutes[p_priority], t.vip_response_minutes)
		WHEN p_vip AND t.vip_mode = 'bump'
			THEN t.response_minutes[greatest(p_priority - 1, 1)]
		ELSE t.response_minutes[p_priority] END,
	       CASE WHEN p_vip AND t.vip_mode = 'targets'
			THEN least(t.resolution_minutes[p_priority], t.vip_resolution_minutes)
		WHEN p_vip AND t.vip_mode = 'bump'
			THEN t.resolution_minutes[greatest(p_priority - 1, 1)]
		ELSE t.resolution_minutes[p_priority] END
	FROM sla_tiers t WHERE t.tenant_id = p_tenant AND t.id = p_tier
$$;

-- The due and warning instants of a ticket's clocks: from created_at,
-- target (+ paused business seconds) in the tier's calendar. One query
-- and plain arithmetic for a 24x7 tier: it runs for every new ticket.
CREATE FUNCTION sla_clocks(p_tenant bigint, p_tier bigint, p_priority int,
	p_contact bigint, p_created timestamptz, p_paused bigint,
	OUT response_due timestamptz, OUT resolution_due timestamptz,
	OUT response_warn timestamptz, OUT resolution_warn timestamptz)
LANGUAGE plpgsql STABLE AS $$
DECLARE
	v_resp bigint;
	v_reso bigint;
	v_warn int;
	v_calendar text;
	v_mode text;
	v_bump_resp int;
	v_bump_reso int;
	v_tz text;
	v_opens time[];
	v_closes time[];
	v_holidays date[];
	v_at timestamptz[];
BEGIN
	IF p_tier IS NULL THEN
		RETURN;
	END IF;
	SELECT t.response_minutes[p_priority], t.resolution_minutes[p_priority],
	       t.response_minutes[greatest(p_priority - 1, 1)],
	       t.resolution_minutes[greatest(p_priority - 1, 1)],
	       t.warn_percent, t.calendar,
	       CASE WHEN p_contact IS NULL THEN 'none' ELSE t.vip_mode END,
	       t.time_zone, t.opens, t.closes,
	       CASE WHEN t.calendar = 'business' THEN ARRAY(SELECT d.day FROM sla_holidays d
			WHERE d.tenant_id = p_tenant AND d.tier_id = p_tier
			AND d.day >= (p_created AT TIME ZONE t.time_zone)::date - 1
			ORDER BY d.day) END
	INTO v_resp, v_reso, v_bump_resp, v_bump_reso, v_warn, v_calendar, v_mode,
	     v_tz, v_opens, v_closes, v_holidays
	FROM sla_tiers t WHERE t.tenant_id = p_tenant AND t.id = p_tier;
	IF NOT FOUND THEN
		RETURN;
	END IF;
	IF v_mode <> 'none' AND coalesce((SELECT c.is_vip FROM contacts c
			WHERE c.tenant_id = p_tenant AND c.id = p_contact), false) THEN
		IF v_mode = 'bump' THEN
			v_resp := v_bump_resp;
			v_reso := v_bump_reso;
		ELSE
			SELECT least(v_resp, t.vip_response_minutes),
			       least(v_reso, t.vip_resolution_minutes)
			INTO v_resp, v_reso
			FROM sla_tiers t WHERE t.tenant_id = p_tenant AND t.id = p_tier;
		END IF;
	END IF;
	v_resp := v_resp * 60;
	v_reso := v_reso * 60;
	IF v_calendar = '24x7' THEN
		response_due := p_created + make_interval(secs => v_resp + p_paused);
		resolution_due := p_created + make_interval(secs => v_reso + p_paused);
		response_warn := p_created + make_interval(secs => v_resp * v_warn / 100 + p_paused);
		resolution_warn := p_created + make_interval(secs => v_reso * v_warn / 100 + p_paused);
	ELSE
		v_at := sla_walk(v_tz, v_opens, v_closes, v_holidays, p_created,
			ARRAY[v_resp + p_paused, v_reso + p_paused,
			      v_resp * v_warn / 100 + p_paused, v_reso * v_warn / 100 + p_paused]);
		response_due := v_at[1];
		resolution_due := v_at[2];
		response_warn := v_at[3];
		resolution_warn := v_at[4];
	END IF;
END
$$;

CREATE FUNCTION tickets_sla_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	c record;
BEGIN
	IF NEW.sla_tier_id IS NULL THEN
		NEW.sla_tier_id := sla_client_tier(NEW.client_id, NEW.created_at);
	END IF;
	NEW.sla_paused_seconds := 0;
	NEW.sla_paused_at := NULL;
	c := sla_clocks(NEW.tenant_id, NEW.sla_tier_id, NEW.priority, NEW.contact_id,
		NEW.created_at, 0);
	NEW.response_due_at := c.response_due;
	NEW.resolution_due_at := c.resolution_due;
	NEW.response_warn_at := c.response_warn;
	NEW.resolution_warn_at := c.resolution_warn;
	IF NEW.status = 'waiting' AND NEW.sla_tier_id IS NOT NULL AND (SELECT pause_on_waiting
			FROM sla_tiers WHERE tenant_id = NEW.tenant_id AND id = NEW.sla_tier_id) THEN
		NEW.sla_paused_at := NEW.created_at;
	END IF;
	RETURN NEW;
END
$$;

CREATE FUNCTION tickets_sla_update() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	v_pauses boolean := false;
	v_recompute boolean := false;
	v_now timestamptz := now();
	c record;
BEGIN
	IF NEW.sla_tier_id IS NOT NULL THEN
		SELECT pause_on_waiting INTO v_pauses FROM sla_tiers
		WHERE tenant_id = NEW.tenant_id AND id = NEW.sla_tier_id;
	END IF;
	-- The clocks run again: fold the paused business time in.
	IF NEW.sla_paused_at IS NOT NULL AND (NEW.status <> 'waiting' OR NOT v_pauses
			OR NEW.sla_tier_id IS DISTINCT FROM OLD.sla_tier_id) THEN
		NEW.sla_paused_seconds := NEW.sla_paused_seconds
			+ sla_business_seconds(NEW.tenant_id, OLD.sla_tier_id, NEW.sla_paused_at,
				coalesce(NEW.closed_at, v_now));
		NEW.sla_paused_at := NULL;
		v_recompute := true;
	END IF;
	IF NEW.priority IS DISTINCT FROM OLD.priority
	   OR NEW.sla_tier_id IS DISTINCT FROM OLD.sla_tier_id
	   OR NEW.contact_id IS DISTINCT FROM OLD.contact_id
	   OR NEW.created_at IS DISTINCT FROM OLD.created_at THEN
		v_recompute := true;
	END IF;
	IF v_recompute THEN
		c := sla_clocks(NEW.tenant_id, NEW.sla_tier_id, NEW.priority, NEW.contact_id,
			NEW.created_at, NEW.sla_paused_seconds);
		NEW.response_due_at := c.response_due;
		NEW.resolution_due_at := c.resolution_due;
		NEW.response_warn_at := c.response_warn;
		NEW.resolution_warn_at := c.resolution_warn;
	END IF;
	-- Waiting on the client stops the clocks when the tier says so.
	IF NEW.status = 'waiting' AND v_pauses AND NEW.sla_paused_at IS NULL
	   AND NEW.closed_at IS NULL THEN
		NEW.sla_paused_at := v_now;
	END IF;
	RETURN NEW;
END
$$;

CREATE TRIGGER tickets_sla_insert BEFORE INSERT ON tickets
	FOR EACH ROW EXECUTE FUNCTION tickets_sla_insert();
CREATE TRIGGER tickets_sla_update BEFORE UPDATE OF status, priority, sla_tier_id,
	contact_id, created_at, first_response_at, closed_at, sla_paused_at,
	sla_paused_seconds ON tickets
	FOR EACH ROW EXECUTE FUNCTION tickets_sla_update();

-- New tickets join the sweep's work list, set-based (bulk inserts too).
CREATE FUNCTION tickets_sla_schedule_new() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO sla_schedule (tenant_id, ticket_id, tier_id, running, response_open,
		response_warn_at, response_due_at, resolution_warn_at, resolution_due_at)
	SELECT tenant_id, id, sla_tier_id, closed_at IS NULL AND sla_paused_at IS NULL,
		first_response_at IS NULL, response_warn_at, response_due_at,
		resolution_warn_at, resolution_due_at
	FROM new_rows WHERE sla_tier_id IS NOT NULL;
	RETURN NULL;
END
$$;
CREATE TRIGGER tickets_sla_schedule_new AFTER INSERT ON tickets
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION tickets_sla_schedule_new();

-- A ticket whose clocks or state changed: its work-list row follows
-- (what was raised stays raised).
CREATE FUNCTION tickets_sla_schedule_set() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.sla_tier_id IS NULL THEN
		DELETE FROM sla_schedule WHERE tenant_id = NEW.tenant_id AND ticket_id = NEW.id;
		RETURN NULL;
	END IF;
	INSERT INTO sla_schedule (tenant_id, ticket_id, tier_id, running, response_open,
		response_warn_at, response_due_at, resolution_warn_at, resolution_due_at)
	VALUES (NEW.tenant_id, NEW.id, NEW.sla_tier_id,
		NEW.closed_at IS NULL AND NEW.sla_paused_at IS NULL, NEW.first_response_at IS NULL,
		NEW.response_warn_at, NEW.response_due_at, NEW.resolution_warn_at,
		NEW.resolution_due_at)
	ON CONFLICT (tenant_id, ticket_id) DO UPDATE SET tier_id = EXCLUDED.tier_id,
		running = EXCLUDED.running, response_open = EXCLUDED.response_open,
		response_warn_at = EXCLUDED.response_warn_at,
		response_due_at = EXCLUDED.response_due_at,
		resolution_warn_at = EXCLUDED.resolution_warn_at,
		resolution_due_at = EXCLUDED.resolution_due_at;
	RETURN NULL;
END
$$;
CREATE TRIGGER tickets_sla_schedule_set AFTER UPDATE ON tickets
	FOR EACH ROW WHEN (OLD.sla_tier_id IS DISTINCT FROM NEW.sla_tier_id
		OR OLD.response_due_at IS DISTINCT FROM NEW.response_due_at
		OR OLD.resolution_due_at IS DISTINCT FROM NEW.resolution_due_at
		OR OLD.response_warn_at IS DISTINCT FROM NEW.response_warn_at
		OR OLD.resolution_warn_at IS DISTINCT FROM NEW.resolution_warn_at
		OR (OLD.first_response_at IS NULL) <> (NEW.first_response_at IS NULL)
		OR (OLD.closed_at IS NULL) <> (NEW.closed_at IS NULL)
		OR (OLD.sla_paused_at IS NULL) <> (NEW.sla_paused_at IS NULL))
	EXECUTE FUNCTION tickets_sla_schedule_set();

-- The SLA state of a ticket, for the queue's filter and sort and the
-- ticket page: 'none' (no tier), 'breached', 'paused', 'at_risk', 'met'
-- (closed in time) or 'ok'. Time stands still while paused.
CREATE FUNCTION sla_state(t tickets) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT CASE
	WHEN t.sla_tier_id IS NULL THEN 'none'
	WHEN coalesce(t.first_response_at, t.closed_at, t.sla_paused_at, now()) > t.response_due_at
	  OR coalesce(t.closed_at, t.sla_paused_at, now()) > t.resolution_due_at THEN 'breached'
	WHEN t.closed_at IS NOT NULL THEN 'met'
	WHEN t.sla_paused_at IS NOT NULL THEN 'paused'
	WHEN (t.first_response_at IS NULL AND now() >= t.response_warn_at)
	  OR now() >= t.resolution_warn_at THEN 'at_risk'
	ELSE 'ok' END
$$;

-- The next due time of an open ticket (for sorting the queue by urgency).
CREATE FUNCTION sla_next_due(t tickets) RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE WHEN t.closed_at IS NULL THEN
		least(CASE WHEN t.first_response_at IS NULL THEN t.response_due_at END,
		      t.resolution_due_at) END
$$;

-- The shipped tiers of a tenant.
CREATE FUNCTION sla_seed_tiers(p_tenant bigint, p_tz text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO sla_tiers (tenant_id, name, position, response_minutes,
		resolution_minutes, calendar, time_zone, vip_mode)
	VALUES (p_tenant, 'Gold', 1, '{15,30,60,120}', '{120,240,480,1440}',
		'24x7', p_tz, 'bump');
	INSERT INTO sla_tiers (tenant_id, name, position, response_minutes,
		resolution_minutes, calendar, time_zone, vip_mode, opens, closes)
	VALUES (p_tenant, 'Silver', 2, '{30,60,120,240}', '{240,480,960,2400}',
		'business', p_tz, 'bump',
		'{08:00,08:00,08:00,08:00,08:00,NULL,NULL}',
		'{18:00,18:00,18:00,18:00,18:00,NULL,NULL}');
	INSERT INTO sla_tiers (tenant_id, name, position, response_minutes,
		resolution_minutes, calendar, time_zone, vip_mode, opens, closes)
	VALUES (p_tenant, 'Bronze', 3, '{60,120,240,480}', '{480,960,1920,4800}',
		'business', p_tz, 'bump',
		'{09:00,09:00,09:00,09:00,09:00,NULL,NULL}',
		'{17:30,17:30,17:30,17:30,17:30,NULL,NULL}');
	INSERT INTO sla_tiers (tenant_id, name, is_fallback, position,
		response_minutes, resolution_minutes, calendar, time_zone, vip_mode,
		opens, closes)
	VALUES (p_tenant, 'No contract', true, 4, '{120,240,480,960}',
		'{960,1920,4800,9600}', 'business', p_tz, 'none',
		'{09:00,09:00,09:00,09:00,09:00,NULL,NULL}',
		'{17:30,17:30,17:30,17:30,17:30,NULL,NULL}');
END
$$;

-- Every new tenant gets them. SECURITY DEFINER: a tenant row is inserted
-- by tallydesk_app bound to it (cli_tenant_create) or by the owner.
CREATE FUNCTION tenants_sla_seed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
	-- A zone PostgreSQL does not know would break every business clock.
	PERFORM sla_seed_tiers(NEW.id, CASE WHEN EXISTS (SELECT 1 FROM pg_timezone_names
		WHERE name = NEW.time_zone) THEN NEW.time_zone ELSE 'UTC' END);
	RETURN NULL;
END
$$;
CREATE TRIGGER tenants_sla_seed AFTER INSERT ON tenants
	FOR EACH ROW EXECUTE FUNCTION tenants_sla_seed();

SELECT sla_seed_tiers(id, time_zone) FROM tenants;

-- sla-sweep visits every tenant with its own binding (row-level security
-- stays forced); the list of tenant ids is all it may see across tenants.
CREATE FUNCTION sla_sweep_tenants() RETURNS SETOF bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
	SELECT id FROM tenants ORDER BY id
$$;
REVOKE ALL ON FUNCTION sla_sweep_tenants() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sla_sweep_tenants() TO tallydesk_app;
REVOKE ALL ON FUNCTION sla_seed_tiers(bigint, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenants_sla_seed() FROM PUBLIC;

DO $$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['sla_tiers', 'sla_holidays', 'sla_events', 'sla_schedule']
	LOOP
		EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
		EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
		EXECUTE format('CREATE POLICY tenant_isolation ON %I'
			' USING (tenant_id = app_tenant())'
			' WITH CHECK (tenant_id = app_tenant())', t);
		EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO tallydesk_app', t);
	END LOOP;
END
$$;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO tallydesk_app;
