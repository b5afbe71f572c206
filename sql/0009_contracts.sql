-- 0009_contracts.sql: contracts (what a client pays and which SLA tier it
-- gets), their recurring lines, the block-hours cycle, and the SLA tier of
-- a client at a moment.

CREATE TABLE contracts (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	id bigint GENERATED ALWAYS AS IDENTITY,
	client_id bigint NOT NULL,
	name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
	-- The headline type drives defaults; a hybrid is any type that also
	-- carries a flat fee, recurring lines and/or a block.
	type text NOT NULL CHECK (type IN ('per_asset', 'block_hours',
		'all_you_can_eat', 'pay_as_you_go')),
	starts_on date NOT NULL,
	ends_on date CHECK (ends_on IS NULL OR ends_on >= starts_on), -- NULL: rolling
	sla_tier_id bigint,          -- NULL: the tenant's fallback tier
	billing_frequency text NOT NULL DEFAULT 'monthly'
		CHECK (billing_frequency IN ('monthly', 'quarterly', 'annual')),
	billing_day smallint NOT NULL DEFAULT 1 CHECK (billing_day BETWEEN 1 AND 28),
	hourly_rate numeric(14, 2) CHECK (hourly_rate >= 0),
	project_rate numeric(14, 2) CHECK (project_rate >= 0),   -- NULL: hourly_rate
	overage_rate numeric(14, 2) CHECK (overage_rate >= 0),   -- NULL: hourly_rate
	flat_fee numeric(14, 2) NOT NULL DEFAULT 0 CHECK (flat_fee >= 0),
	block_minutes int CHECK (block_minutes > 0),             -- per cycle
	block_fee numeric(14, 2) CHECK (block_fee >= 0),
	block_rollover boolean NOT NULL DEFAULT false,
	rollover_cap_minutes int CHECK (rollover_cap_minutes >= 0), -- NULL: no cap
	notes text NOT NULL DEFAULT '' CHECK (length(notes) <= 10000),
	state text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'ended', 'voided')),
	ended_by bigint,
	ended_at timestamptz,
	void_reason text,
	voided_by bigint,
	voided_at timestamptz,
	created_by bigint,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (tenant_id, id),
	FOREIGN KEY (tenant_id, client_id) REFERENCES clients (tenant_id, id),
	FOREIGN KEY (tenant_id, sla_tier_id) REFERENCES sla_tiers (tenant_id, id),
	CHECK (block_minutes IS NOT NULL OR (block_fee IS NULL
		AND NOT block_rollover AND rollover_cap_minutes IS NULL)),
	CHECK (rollover_cap_minutes IS NULL OR block_rollover),
	CHECK (type <> 'block_hours' OR block_minutes IS NOT NULL),
	CHECK (type <> 'pay_as_you_go' OR (hourly_rate IS NOT NULL AND block_minutes IS NULL)),
	CHECK ((state = 'voided') = (voided_at IS NOT NULL)),
	CHECK (state <> 'voided' OR length(void_reason) BETWEEN 1 AND 1000),
	CHECK (state <> 'ended' OR ends_on IS NOT NULL),
	-- A client's contracts never overlap in time; a voided one never was.
	CONSTRAINT contracts_no_overlap EXCLUDE USING gist (tenant_id WITH =,
		client_id WITH =, daterange(starts_on, ends_on, '[]') WITH &&)
		WHERE (state <> 'voided')
);
CREATE INDEX contracts_client ON contracts (tenant_id, client_id, starts_on DESC);
CREATE INDEX contracts_list ON contracts (tenant_id, state, starts_on DESC, id DESC);

-- Recurring lines: a fixed quantity, or the live count of the client's
-- billable assets of some kinds and categories (empty arrays: any).
CREATE TABLE contract_lines (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	id bigint GENERATED ALWAYS AS IDENTITY,
	contract_id bigint NOT NULL,
	description text NOT NULL CHECK (length(description) BETWEEN 1 AND 300),
	quantity_source text NOT NULL CHECK (quantity_source IN ('fixed', 'assets')),
	quantity numeric(10, 2) CHECK (quantity >= 0),
	asset_kinds text[] NOT NULL DEFAULT '{}',
	asset_categories text[] NOT NULL DEFAULT '{}',
	unit_price numeric(14, 2) NOT NULL,
	tax_rate_id bigint,
	service_code text NOT NULL DEFAULT '' CHECK (length(service_code) <= 60),
	billing_category text NOT NULL DEFAULT '' CHECK (length(billing_category) <= 100),
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (tenant_id, id),
	CHECK ((quantity_source = 'fixed') = (quantity IS NOT NULL)),
	CHECK (quantity_source = 'assets' OR (cardinality(asset_kinds) = 0
		AND cardinality(asset_categories) = 0)),
	FOREIGN KEY (tenant_id, contract_id) REFERENCES contracts (tenant_id, id) ON DELETE CASCADE,
	FOREIGN KEY (tenant_id, tax_rate_id) REFERENCES tax_rates (tenant_id, id)
);
CREATE INDEX contract_lines_contract ON contract_lines (tenant_id, contract_id, id);

-- The billing cycle of a contract that holds day p_at: cycles start on
-- p_day of every 1, 3 or 12 months counted from the month the contract
-- starts, clipped to the contract's own dates. [lower, upper) in days.
-- plpgsql rather than SQL: its plan is cached, and pages call it per row.
CREATE FUNCTION contract_cycle(p_starts date, p_ends date, p_freq text,
	p_day int, p_at date)
RETURNS daterange
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
	n int := CASE p_freq WHEN 'monthly' THEN 1 WHEN 'quarterly' THEN 3 ELSE 12 END;
	months int := (extract(year FROM p_at)::int - extract(year FROM p_starts)::int) * 12
		+ extract(month FROM p_at)::int - extract(month FROM p_starts)::int;
	s date;
	e date;
BEGIN
	s := (date_trunc('month', p_starts)
		+ make_interval(months => (floor(months::numeric / n) * n)::int))::date
		+ (p_day - 1);
	IF s > p_at THEN
		s := (s - make_interval(months => n))::date;
	END IF;
	e := (s + make_interval(months => n))::date;
	RETURN daterange(greatest(s, p_starts), least(e, coalesce(p_ends + 1, e)));
END
$$;

-- Every cycle of a contract that touches days [p_from, p_to], in order.
CREATE FUNCTION contract_cycles(p_starts date, p_ends date, p_freq text,
	p_day int, p_from date, p_to date)
RETURNS SETOF daterange
-- ROWS: a handful of cycles per report period; the default 1000 makes the
-- planner expect millions of joined rows and switch JIT on.
LANGUAGE plpgsql IMMUTABLE ROWS 6 AS $$
DECLARE
	r daterange;
	d date := greatest(p_from, p_starts);
	last date := least(p_to, coalesce(p_ends, p_to));
BEGIN
	WHILE d <= last LOOP
		r := contract_cycle(p_starts, p_ends, p_freq, p_day, d);
		RETURN NEXT r;
		EXIT WHEN upper(r) <= d;
		d := upper(r);
	END LOOP;
END
$$;

-- The tier of a new ticket of client p_client at p_at: the tier of the
-- contract in force that day (in the tenant's time zone; voided ones never
-- were), else the tenant's fallback tier (also for a contract without a
-- tier). Replaces 0008's fallback-only version; same signature. Without a
-- bound tenant (the owner inserting) the client's tenant is used.
CREATE OR REPLACE FUNCTION sla_client_tier(p_client bigint, p_at timestamptz)
RETURNS bigint
LANGUAGE sql STABLE AS $$
	WITH t AS (
		SELECT id, (p_at AT TIME ZONE time_zone)::date AS day FROM tenants
		WHERE id = coalesce(app_tenant(),
			(SELECT c.tenant_id FROM clients c WHERE c.id = p_client))
	)
	SELECT coalesce(
		(SELECT k.sla_tier_id FROM contracts k, t
		 WHERE k.tenant_id = t.id AND k.client_id = p_client
		   AND k.state <> 'voided' AND k.starts_on <= t.day
		   AND (k.ends_on IS NULL OR k.ends_on >= t.day)
		 ORDER BY k.starts_on DESC LIMIT 1),
		(SELECT s.id FROM sla_tiers s, t
		 WHERE s.tenant_id = t.id AND s.is_fallback))
$$;

DO $$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['contracts', 'contract_lines']
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
