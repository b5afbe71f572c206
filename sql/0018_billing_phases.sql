-- 0018_billing_phases.sql: contract history (a contract changed within a
-- period bills each phase at its own terms, prorated by days) and the
-- billing engine made set-based: the lines of a whole batch of contract
-- periods come from one statement (billing_compute), staged, then each
-- client is written in its own short transaction with a handful of
-- set-based statements. Preview, dry run and real run still share the one
-- computation. Replaces 0015's billing_lines and billing_run_client.

-- Contract history ------------------------------------------------------

-- The terms of the contract row and its lines are in force from
-- terms_from (NULL: from the start); the terms before are versions in
-- contract_terms, each with the days it was in force.
ALTER TABLE contracts ADD COLUMN terms_from date;

CREATE TABLE contract_terms (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	id bigint GENERATED ALWAYS AS IDENTITY,
	contract_id bigint NOT NULL,
	valid daterange NOT NULL CHECK (NOT isempty(valid) AND NOT upper_inf(valid)),
	flat_fee numeric(14, 2) NOT NULL,
	hourly_rate numeric(14, 2),
	project_rate numeric(14, 2),
	overage_rate numeric(14, 2),
	block_minutes int,
	block_fee numeric(14, 2),
	block_rollover boolean NOT NULL,
	rollover_cap_minutes int,
	time_increment_minutes int,
	time_minimum_minutes int,
	lines jsonb NOT NULL DEFAULT '[]',   -- contract_lines rows as they were
	created_by bigint,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (tenant_id, id),
	FOREIGN KEY (tenant_id, contract_id) REFERENCES contracts (tenant_id, id)
		ON DELETE CASCADE,
	EXCLUDE USING gist (tenant_id WITH =, contract_id WITH =, valid WITH &&)
);

-- The day an edit of the terms takes effect, set by the edit (transaction
-- local app.terms_effective); NULL: no history kept (the edit applies
-- from the start of the version in force, e.g. setting a contract up).
CREATE FUNCTION contract_terms_effective() RETURNS date
LANGUAGE sql STABLE AS $$
	SELECT nullif(current_setting('app.terms_effective', true), '')::date
$$;

-- Keeps the terms of contract k as they are (row and lines) as a version
-- ending the day before p_eff; the caller moves terms_from to p_eff.
-- False when p_eff is not after the start of the version in force.
CREATE FUNCTION contract_terms_keep(k contracts, p_eff date) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
	IF p_eff IS NULL OR p_eff <= coalesce(k.terms_from, k.starts_on) THEN
		IF p_eff < k.terms_from THEN
			RAISE EXCEPTION 'the terms changed on % already: effective from must not be earlier',
				k.terms_from USING ERRCODE = 'check_violation';
		END IF;
		RETURN false;
	END IF;
	INSERT INTO contract_terms (tenant_id, contract_id, valid, flat_fee,
		hourly_rate, project_rate, overage_rate, block_minutes, block_fee,
		block_rollover, rollover_cap_minutes, time_increment_minutes,
		time_minimum_minutes, lines, created_by)
	VALUES (k.tenant_id, k.id, daterange(k.terms_from, p_eff), k.flat_fee,
		k.hourly_rate, k.project_rate, k.overage_rate, k.block_minutes,
		k.block_fee, k.block_rollover, k.rollover_cap_minutes,
		k.time_increment_minutes, k.time_minimum_minutes,
		coalesce((SELECT jsonb_agg(to_jsonb(cl) ORDER BY cl.id) FROM contract_lines cl
			WHERE cl.tenant_id = k.tenant_id AND cl.contract_id = k.id), '[]'),
		nullif(current_setting('app.terms_by', true), '')::bigint);
	RETURN true;
END
$$;

-- An edit of contract p_contract's terms (the contract form, its lines)
-- by user p_user takes effect from p_effective; NULL: today once the contract has been
-- billed (a period row exists), else from the start (it is being set up).
-- Sets it for this transaction; returns the day used (NULL: no history).
-- The caller checks that p_effective is not before terms_from.
CREATE FUNCTION contract_terms_edit(p_contract bigint, p_effective date,
	p_user bigint)
RETURNS date
LANGUAGE plpgsql AS $$
DECLARE
	v_eff date := p_effective;
BEGIN
	IF v_eff IS NULL AND EXISTS (SELECT 1 FROM billing_periods b
		WHERE b.tenant_id = app_tenant() AND b.contract_id = p_contract) THEN
		-- (never before a change already dated in the future)
		SELECT greatest((now() AT TIME ZONE t.time_zone)::date, k.terms_from)
		INTO v_eff
		FROM tenants t JOIN contracts k ON k.tenant_id = t.id AND k.id = p_contract
		WHERE t.id = app_tenant();
	END IF;
	PERFORM set_config('app.terms_effective', coalesce(v_eff::text, ''), true);
	PERFORM set_config('app.terms_by', coalesce(p_user::text, ''), true);
	RETURN v_eff;
END
$$;

CREATE FUNCTION contracts_terms_history() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF (OLD.flat_fee, OLD.hourly_rate, OLD.project_rate, OLD.overage_rate,
	    OLD.block_minutes, OLD.block_fee, OLD.block_rollover,
	    OLD.rollover_cap_minutes, OLD.time_increment_minutes,
	    OLD.time_minimum_minutes)
	   IS NOT DISTINCT FROM
	   (NEW.flat_fee, NEW.hourly_rate, NEW.project_rate, NEW.overage_rate,
	    NEW.block_minutes, NEW.block_fee, NEW.block_rollover,
	    NEW.rollover_cap_minutes, NEW.time_increment_minutes,
	    NEW.time_minimum_minutes) THEN
		RETURN NEW;
	END IF;
	IF contract_terms_keep(OLD, contract_terms_effective()) THEN
		NEW.terms_from := contract_terms_effective();
	END IF;
	RETURN NEW;
END
$$;
CREATE TRIGGER contracts_terms_history BEFORE UPDATE ON contracts
	FOR EACH ROW EXECUTE FUNCTION contracts_terms_history();

CREATE FUNCTION contract_lines_terms_history() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	k contracts;
	v_eff date := contract_terms_effective();
BEGIN
	IF v_eff IS NULL THEN
		RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
	END IF;
	IF TG_OP = 'UPDATE' AND (OLD.description, OLD.quantity_source,
	    OLD.quantity, OLD.asset_kinds, OLD.asset_categories, OLD.unit_price,
	    OLD.tax_rate_id)
	   IS NOT DISTINCT FROM (NEW.description, NEW.quantity_source,
	    NEW.quantity, NEW.asset_kinds, NEW.asset_categories, NEW.unit_price,
	    NEW.tax_rate_id) THEN
		RETURN NEW;
	END IF;
	SELECT * INTO k FROM contracts WHERE tenant_id = app_tenant()
	  AND id = CASE WHEN TG_OP = 'DELETE' THEN OLD.contract_id ELSE NEW.contract_id END
	FOR UPDATE;
	IF FOUND AND contract_terms_keep(k, v_eff) THEN
		UPDATE contracts SET terms_from = v_eff
		WHERE tenant_id = k.tenant_id AND id = k.id;
	END IF;
	RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$$;
CREATE TRIGGER contract_lines_terms_history
	BEFORE INSERT OR UPDATE OR DELETE ON contract_lines
	FOR EACH ROW EXECUTE FUNCTION contract_lines_terms_history();

-- Line sources checked per statement ------------------------------------

-- The per-row foreign keys of the two source tables cost three index
-- probes per billed entry and per counted day (and their cached plans went
-- bad on a table that started empty: 26 s of a 40 s run). The same rules,
-- checked once per statement on the rows it touched: a source row needs
-- its line and its time entry; deleting a line deletes its sources;
-- a time entry some line billed cannot be deleted. (A line is inserted in
-- the transaction that inserts its sources, and the entry is row-locked
-- by the UPDATE that links it, so no concurrent delete slips between.)
ALTER TABLE invoice_line_entries
	DROP CONSTRAINT invoice_line_entries_tenant_id_fkey,
	DROP CONSTRAINT invoice_line_entries_tenant_id_line_id_fkey,
	DROP CONSTRAINT invoice_line_entries_tenant_id_entry_id_fkey;
ALTER TABLE invoice_line_days
	DROP CONSTRAINT invoice_line_days_tenant_id_fkey,
	DROP CONSTRAINT invoice_line_days_tenant_id_line_id_fkey;

-- (By arrays of keys: a transition table has no statistics, and a join
-- planned from them can hash a whole table for a client's rows.)
CREATE FUNCTION billing_sources_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	bad boolean;
BEGIN
	IF TG_TABLE_NAME = 'invoice_line_entries' THEN
		SELECT bool_or(cardinality(n.lines) <> (SELECT count(*) FROM invoice_lines l
				WHERE l.tenant_id = n.tenant_id AND l.id = ANY (n.lines))
			OR cardinality(n.entries) <> (SELECT count(*) FROM time_entries e
				WHERE e.tenant_id = n.tenant_id AND e.id = ANY (n.entries)))
		INTO bad
		FROM (SELECT r.tenant_id, array_agg(DISTINCT r.line_id) AS lines,
			array_agg(DISTINCT r.entry_id) AS entries
		      FROM new_rows r GROUP BY r.tenant_id) n;
	ELSE
		SELECT bool_or(cardinality(n.lines) <> (SELECT count(*) FROM invoice_lines l
				WHERE l.tenant_id = n.tenant_id AND l.id = ANY (n.lines)))
		INTO bad
		FROM (SELECT r.tenant_id, array_agg(DISTINCT r.line_id) AS lines
		      FROM new_rows r GROUP BY r.tenant_id) n;
	END IF;
	IF bad THEN
		RAISE EXCEPTION '%: no such invoice line or time entry', TG_TABLE_NAME
			USING ERRCODE = 'foreign_key_violation';
	END IF;
	RETURN NULL;
END
$$;
CREATE TRIGGER invoice_line_entries_check_ins AFTER INSERT ON invoice_line_entries
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION billing_sources_check();
CREATE TRIGGER invoice_line_entries_check_upd AFTER UPDATE ON invoice_line_entries
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION billing_sources_check();
CREATE TRIGGER invoice_line_days_check_ins AFTER INSERT ON invoice_line_days
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION billing_sources_check();
CREATE TRIGGER invoice_line_days_check_upd AFTER UPDATE ON invoice_line_days
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION billing_sources_check();

CREATE FUNCTION invoice_lines_sources_cascade() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM invoice_line_entries x USING old_rows o
	WHERE x.tenant_id = o.tenant_id AND x.line_id = o.id;
	DELETE FROM invoice_line_days x USING old_rows o
	WHERE x.tenant_id = o.tenant_id AND x.line_id = o.id;
	RETURN NULL;
END
$$;
CREATE TRIGGER invoice_lines_sources_cascade AFTER DELETE ON invoice_lines
	REFERENCING OLD TABLE AS old_rows
	FOR EACH STATEMENT EXECUTE FUNCTION invoice_lines_sources_cascade();

CREATE FUNCTION time_entries_sources_kept() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF EXISTS (SELECT 1 FROM old_rows o JOIN invoice_line_entries x
		ON x.tenant_id = o.tenant_id AND x.entry_id = o.id) THEN
		RAISE EXCEPTION 'a time entry deleted is the source of an invoice line'
			USING ERRCODE = 'foreign_key_violation';
	END IF;
	RETURN NULL;
END
$$;
CREATE TRIGGER time_entries_sources_kept AFTER DELETE ON time_entries
	REFERENCING OLD TABLE AS old_rows
	FOR EACH STATEMENT EXECUTE FUNCTION time_entries_sources_kept();

-- The lock on billed time entries (0010, 0015) does nothing unless the
-- entry was billed (OLD.invoice_line_id set): say so in the trigger's
-- WHEN, so linking an entry (and any edit of unbilled time) calls no
-- plpgsql per row. The same rules.
DROP TRIGGER time_entries_invoiced_lock ON time_entries;
CREATE TRIGGER time_entries_invoiced_lock
	BEFORE UPDATE OR DELETE ON time_entries
	FOR EACH ROW WHEN (OLD.invoice_line_id IS NOT NULL)
	EXECUTE FUNCTION time_entries_invoiced_lock();

-- The engine, set-based --------------------------------------------------

-- The lines of periods of contracts, computed, not written: item n is
-- contract p_contract[n] for days p_covers[n] in advance and p_usage[n]
-- in arrears, with p_carry[n] block minutes rolled over; time entries in
-- p_skip are left out (billed by an earlier period of the same run).
-- Each version of the terms bills the days it was in force (phases,
-- prorated by days): fixed lines (flat fee, block fee, fixed contract
-- lines) over covers, prorated by days of the whole cycle; asset-count
-- lines from per-day counts of usage; time up to the end of usage that no
-- invoice billed yet: project tickets at the project rate, then the block
-- (overage beyond the block plus rolled-over minutes, the block prorated
-- by days when its size changed) or pay-as-you-go at the technician's own
-- rate or the contract's, by ticket and rate, each entry at the terms of
-- its day. A closing period (covers empty) gives back the fixed fees of
-- the days after the contract ended. Amounts are exact numerics rounded
-- half away from zero to the penny.
CREATE FUNCTION billing_compute(p_contract bigint[], p_covers daterange[],
	p_usage daterange[], p_carry int[], p_skip bigint[])
RETURNS TABLE (item int, pos int, kind text, description text, breakdown text,
	quantity numeric, unit_price numeric, amount numeric, tax_rate_id bigint,
	tax_rate numeric, contract_line_id bigint, raw_minutes int,
	rounded_minutes int, entry_ids bigint[], entry_raw int[],
	entry_billed int[], days date[], day_counts int[],
	block_available int, block_used int, block_carry int)
LANGUAGE sql STABLE AS $$
WITH env AS (
	SELECT t.time_zone AS tz, r.id AS def_tax, coalesce(r.rate, 0) AS def_rate
	FROM tenants t LEFT JOIN tax_rates r ON r.tenant_id = t.id
		AND r.is_default AND NOT r.archived
	WHERE t.id = app_tenant()
), it0 AS (
	SELECT x.n::int AS item, k.id AS contract_id, k.client_id, k.name,
		k.type, k.starts_on, k.ends_on, k.billing_frequency, k.billing_day,
		x.covers, x.usage, coalesce(x.carry, 0) AS carry,
		isempty(x.covers) AND k.ends_on IS NOT NULL AND x.usage IS NOT NULL
			AND upper(x.usage) > k.ends_on + 1 AS closing,
		k.terms_from IS NOT NULL AS has_history, k.hourly_rate,
		k.project_rate, k.overage_rate, k.block_minutes, k.block_rollover,
		k.rollover_cap_minutes, k.time_increment_minutes AS inc,
		k.time_minimum_minutes AS mini
	FROM unnest(p_contract, p_covers, p_usage, p_carry) WITH ORDINALITY
		AS x (contract_id, covers, usage, carry, n)
	JOIN contracts k ON k.tenant_id = app_tenant() AND k.id = x.contract_id
), it AS MATERIALIZED (
	SELECT i.item, i.contract_id, i.client_id, i.name, i.type, i.starts_on,
		i.ends_on, i.covers, i.carry, i.has_history, i.hourly_rate,
		i.project_rate, i.overage_rate, i.block_minutes, i.block_rollover,
		i.rollover_cap_minutes, i.inc, i.mini,
		CASE WHEN NOT i.closing THEN i.usage
		     WHEN i.ends_on + 1 <= lower(i.usage) THEN NULL
		     ELSE daterange(lower(i.usage), i.ends_on + 1) END AS usage,
		CASE WHEN i.closing THEN daterange(greatest(lower(i.usage),
			i.ends_on + 1), upper(i.usage)) END AS refund,
		CASE WHEN NOT isempty(i.covers) THEN (SELECT upper(c) - lower(c)
			FROM billing_full_cycle(i.starts_on, i.billing_frequency,
				i.billing_day, lower(i.covers)) c) END AS cover_days,
		CASE WHEN i.closing THEN (SELECT upper(c) - lower(c)
			FROM billing_full_cycle(i.starts_on, i.billing_frequency,
				i.billing_day, greatest(lower(i.usage), i.ends_on + 1)) c)
			END AS refund_days,
		CASE WHEN i.usage IS NOT NULL THEN (SELECT upper(c) - lower(c)
			FROM billing_full_cycle(i.starts_on, i.billing_frequency,
				i.billing_day, lower(i.usage)) c) END AS usage_days
	FROM it0 i
), terms AS MATERIALIZED (
	-- Every version of the terms with the days it was in force.
	SELECT k.id AS contract_id, daterange(k.terms_from, NULL) AS valid,
		k.flat_fee, k.hourly_rate, k.project_rate, k.overage_rate,
		k.block_minutes, k.block_fee, k.block_rollover,
		k.rollover_cap_minutes, k.time_increment_minutes AS inc,
		k.time_minimum_minutes AS mini
	FROM contracts k
	WHERE k.tenant_id = app_tenant() AND k.id = ANY (p_contract)
	UNION ALL
	SELECT v.contract_id, v.valid, v.flat_fee, v.hourly_rate, v.project_rate,
		v.overage_rate, v.block_minutes, v.block_fee, v.block_rollover,
		v.rollover_cap_minutes, v.time_increment_minutes,
		v.time_minimum_minutes
	FROM contract_terms v
	WHERE v.tenant_id = app_tenant() AND v.contract_id = ANY (p_contract)
), tlines_v AS (
	SELECT cl.contract_id, daterange(k.terms_from, NULL) AS valid,
		cl.id AS line_key, cl.id AS live_id, cl.description,
		cl.quantity_source, cl.quantity, cl.unit_price, cl.tax_rate_id,
		cl.asset_kinds, cl.asset_categories
	FROM contract_lines cl
	JOIN contracts k ON k.tenant_id = cl.tenant_id AND k.id = cl.contract_id
	WHERE cl.tenant_id = app_tenant() AND cl.contract_id = ANY (p_contract)
	UNION ALL
	SELECT v.contract_id, v.valid, l.id,
		(SELECT c.id FROM contract_lines c
		 WHERE c.tenant_id = app_tenant() AND c.id = l.id),
		l.description, l.quantity_source, l.quantity, l.unit_price,
		l.tax_rate_id, coalesce(l.asset_kinds, '{}'),
		coalesce(l.asset_categories, '{}')
	FROM contract_terms v
	CROSS JOIN LATERAL jsonb_to_recordset(v.lines) AS l (id bigint,
		description text, quantity_source text, quantity numeric,
		unit_price numeric, tax_rate_id bigint, asset_kinds text[],
		asset_categories text[])
	WHERE v.tenant_id = app_tenant() AND v.contract_id = ANY (p_contract)
), tlines AS MATERIALIZED (
	-- A line is one phase for as long as it stays the same, whatever
	-- else changed (versions alike and adjacent merge).
	SELECT g.contract_id, u.valid, g.line_key, g.live_id, g.description,
		g.quantity_source, g.quantity, g.unit_price, g.tax_rate_id,
		g.asset_kinds, g.asset_categories
	FROM (SELECT l.contract_id, l.line_key, l.live_id, l.description,
		l.quantity_source, l.quantity, l.unit_price, l.tax_rate_id,
		l.asset_kinds, l.asset_categories, range_agg(l.valid) AS m
	      FROM tlines_v l
	      GROUP BY l.contract_id, l.line_key, l.live_id, l.description,
		l.quantity_source, l.quantity, l.unit_price, l.tax_rate_id,
		l.asset_kinds, l.asset_categories) g
	CROSS JOIN LATERAL unnest(g.m) AS u (valid)
), bterms AS MATERIALIZED (
	-- The block of contracts with history: the terms on the last day of
	-- usage say whether there is one; its size is prorated by days when
	-- it changed within usage.
	SELECT i.item, t.block_minutes, t.block_rollover, t.rollover_cap_minutes,
		coalesce(t.overage_rate, t.hourly_rate, 0) AS rate,
		(SELECT CASE WHEN bool_and(s.block_minutes IS NOT DISTINCT FROM t.block_minutes)
				THEN t.block_minutes
				ELSE round(sum(coalesce(s.block_minutes, 0)::numeric
					* (upper(s.valid * i.usage) - lower(s.valid * i.usage)))
					/ (upper(i.usage) - lower(i.usage)))::int END
		 FROM terms s WHERE s.contract_id = i.contract_id AND s.valid && i.usage)
			AS block
	FROM it i
	JOIN terms t ON t.contract_id = i.contract_id AND t.valid @> (upper(i.usage) - 1)
	WHERE i.usage IS NOT NULL AND i.has_history
), itb AS MATERIALIZED (
	-- Items with usage, with the block (the contract's own terms when it
	-- has no history) and the contract's current rates.
	SELECT i.item, i.contract_id, i.client_id, i.type, i.starts_on, i.usage,
		i.carry, i.hourly_rate, i.project_rate, i.inc, i.mini, i.has_history,
		b.block_minutes, b.block_rollover, b.rollover_cap_minutes,
		b.rate AS over_rate, b.block
	FROM it i
	CROSS JOIN LATERAL (SELECT i.block_minutes, i.block_rollover,
			i.rollover_cap_minutes,
			coalesce(i.overage_rate, i.hourly_rate, 0) AS rate,
			i.block_minutes AS block
		WHERE NOT i.has_history
		UNION ALL
		(SELECT x.block_minutes, x.block_rollover, x.rollover_cap_minutes,
			x.rate, x.block FROM bterms x
		 WHERE i.has_history AND x.item = i.item)) b
	WHERE i.usage IS NOT NULL
), fx_src AS (
	-- What bills in advance, per version of the terms.
	SELECT f.contract_id, f.valid, 1 AS grp, 0::bigint AS key,
		'flat_fee' AS kind, NULL::text AS descr, 1::numeric AS qty,
		f.flat_fee AS price, NULL::bigint AS tax_id, NULL::numeric AS rate,
		NULL::bigint AS live_id
	FROM (SELECT t.contract_id, unnest(range_agg(t.valid)) AS valid, t.flat_fee
	      FROM terms t WHERE t.flat_fee > 0
	      GROUP BY t.contract_id, t.flat_fee) f
	UNION ALL
	SELECT b.contract_id, b.valid, 2, 0, 'block_fee',
		'Block of ' || billing_hours(b.block_minutes) || ' h', 1,
		b.block_fee, NULL, NULL, NULL
	FROM (SELECT t.contract_id, unnest(range_agg(t.valid)) AS valid,
		t.block_minutes, t.block_fee
	      FROM terms t
	      WHERE t.block_minutes IS NOT NULL AND coalesce(t.block_fee, 0) > 0
	      GROUP BY t.contract_id, t.block_minutes, t.block_fee) b
	UNION ALL
	SELECT l.contract_id, l.valid, 3, l.line_key, 'fixed', l.description,
		l.quantity, l.unit_price, l.tax_rate_id, r.rate, l.live_id
	FROM tlines l
	LEFT JOIN tax_rates r ON r.tenant_id = app_tenant() AND r.id = l.tax_rate_id
	WHERE l.quantity_source = 'fixed'
), fx AS (
	-- In advance for covers, or given back after the end (refund).
	SELECT i.item, s.grp, s.key, lower(p.ph) AS ph_lo, NULL::numeric AS sort2,
		s.kind, coalesce(s.descr, i.name) || ', ' || billing_range_text(p.ph)
			AS description,
		CASE WHEN p.nd < i.cover_days THEN CASE WHEN s.kind = 'fixed'
			THEN trim_scale(s.qty) || ' × ' ELSE '' END
			|| p.nd || ' of ' || i.cover_days || ' days' ELSE '' END AS breakdown,
		round(s.qty * p.nd / i.cover_days, 10) AS quantity, s.price,
		round(s.qty * s.price * p.nd / i.cover_days, 2) AS amount,
		s.tax_id, s.rate, s.live_id
	FROM it i
	JOIN fx_src s ON s.contract_id = i.contract_id AND s.valid && i.covers
	CROSS JOIN LATERAL (SELECT s.valid * i.covers AS ph) p0
	CROSS JOIN LATERAL (SELECT p0.ph, upper(p0.ph) - lower(p0.ph) AS nd) p
	WHERE NOT isempty(i.covers)
	UNION ALL
	SELECT i.item, 3 + s.grp, s.key, lower(p.ph), NULL,
		s.kind, coalesce(s.descr, i.name) || ', ' || billing_range_text(p.ph),
		'contract ended ' || to_char(i.ends_on, 'FMDD Mon YYYY') || ': '
			|| p.nd || ' of ' || i.refund_days || ' days back',
		-round(s.qty * p.nd / i.refund_days, 10), s.price,
		-round(s.qty * s.price * p.nd / i.refund_days, 2),
		s.tax_id, s.rate, s.live_id
	FROM it i
	JOIN fx_src s ON s.contract_id = i.contract_id AND s.valid && i.refund
	CROSS JOIN LATERAL (SELECT s.valid * i.refund AS ph) p0
	CROSS JOIN LATERAL (SELECT p0.ph, upper(p0.ph) - lower(p0.ph) AS nd) p
	WHERE i.refund IS NOT NULL
), ap AS MATERIALIZED (
	-- Asset lines, per version over usage.
	SELECT row_number() OVER () AS ap, i.item, i.client_id, i.usage_days,
		l.line_key, l.live_id, l.description, l.unit_price, l.tax_rate_id,
		r.rate, l.asset_kinds, l.asset_categories, l.valid * i.usage AS ph
	FROM it i
	JOIN tlines l ON l.contract_id = i.contract_id
		AND l.quantity_source = 'assets' AND l.valid && i.usage
	LEFT JOIN tax_rates r ON r.tenant_id = app_tenant() AND r.id = l.tax_rate_id
), hist AS (
	-- Each counting asset's first and last day (counted as it stood at
	-- the end of the day in the tenant's zone), clipped to the phase.
	SELECT a.ap, greatest(d.first, lower(a.ph)) AS f,
		least(d.last, upper(a.ph) - 1) AS l
	FROM ap a CROSS JOIN env
	JOIN asset_history h ON h.tenant_id = app_tenant()
		AND h.client_id = a.client_id AND h.counts
		AND h.valid && tstzrange(lower(a.ph)::timestamp AT TIME ZONE env.tz,
			upper(a.ph)::timestamp AT TIME ZONE env.tz)
		AND (cardinality(a.asset_kinds) = 0 OR h.kind = ANY (a.asset_kinds))
		AND (cardinality(a.asset_categories) = 0
			OR h.category = ANY (a.asset_categories))
	CROSS JOIN LATERAL (SELECT
		CASE WHEN lower_inf(h.valid) THEN '-infinity'::date
			ELSE (lower(h.valid) AT TIME ZONE env.tz)::date END AS first,
		CASE WHEN upper_inf(h.valid) THEN 'infinity'::date
			ELSE (upper(h.valid) AT TIME ZONE env.tz)::date - 1 END AS last) d
), ev AS (
	SELECT e.ap, e.day, sum(e.delta) AS delta
	FROM (SELECT h.ap, h.f AS day, 1 AS delta FROM hist h WHERE h.f <= h.l
	      UNION ALL
	      SELECT h.ap, h.l + 1, -1 FROM hist h WHERE h.f <= h.l) e
	GROUP BY e.ap, e.day
), dc AS MATERIALIZED (
	SELECT a.ap, lower(a.ph) + g.n AS day,
		(sum(coalesce(ev.delta, 0)) OVER (PARTITION BY a.ap ORDER BY g.n))::int
			AS cnt
	FROM ap a
	CROSS JOIN LATERAL generate_series(0, upper(a.ph) - lower(a.ph) - 1) AS g (n)
	LEFT JOIN ev ON ev.ap = a.ap AND ev.day = lower(a.ph) + g.n
), dagg AS MATERIALIZED (
	SELECT dc.ap, sum(dc.cnt) AS total, array_agg(dc.day ORDER BY dc.day) AS days,
		array_agg(dc.cnt ORDER BY dc.day) AS counts
	FROM dc GROUP BY dc.ap
), druns AS MATERIALIZED (
	-- Runs of equal counts: "5 days × 100 assets, 25 days × 110 assets".
	SELECT g.ap, string_agg(g.n || CASE WHEN g.n = 1 THEN ' day × ' ELSE ' days × ' END
			|| g.cnt || CASE WHEN g.cnt = 1 THEN ' asset' ELSE ' assets' END,
			', ' ORDER BY g.first_day) AS text
	FROM (SELECT x.ap, x.cnt, min(x.day) AS first_day, count(*) AS n
	      FROM (SELECT dc.ap, dc.day, dc.cnt, dc.day - (row_number() OVER (
			PARTITION BY dc.ap, dc.cnt ORDER BY dc.day))::int AS grp
		    FROM dc) x
	      GROUP BY x.ap, x.cnt, x.grp) g
	GROUP BY g.ap
), assets AS (
	SELECT a.item, 7 AS grp, a.line_key AS key, lower(a.ph) AS ph_lo,
		NULL::numeric AS sort2, 'assets' AS kind,
		a.description || ', ' || billing_range_text(a.ph) AS description,
		r.text || CASE WHEN a.usage_days <> upper(a.ph) - lower(a.ph)
			THEN ' (' || (upper(a.ph) - lower(a.ph)) || ' of ' || a.usage_days
				|| ' days)' ELSE '' END AS breakdown,
		round(g.total::numeric / a.usage_days, 10) AS quantity, a.unit_price,
		round(g.total * a.unit_price / a.usage_days, 2) AS amount,
		a.tax_rate_id, a.rate, a.live_id, g.days, g.counts
	FROM ap a JOIN dagg g ON g.ap = a.ap JOIN druns r ON r.ap = a.ap
	WHERE g.total > 0
), ents AS MATERIALIZED (
	-- Time not billed yet, from the contract's start to the end of usage,
	-- each entry at the terms of its day.
	SELECT i.item, e.id, e.ticket_id, tk.number, tk.subject,
		tk.type = 'project' AS project, u.hourly_rate AS user_rate,
		i.type = 'pay_as_you_go' AND i.block_minutes IS NULL AS payg,
		e.minutes AS raw, t.hourly_rate,
		coalesce(t.project_rate, t.hourly_rate) AS prate,
		greatest(CASE WHEN t.inc IS NULL THEN e.minutes
			ELSE ((e.minutes + t.inc - 1) / t.inc) * t.inc END,
			coalesce(t.mini, 0)) AS billed
	FROM itb i CROSS JOIN env
	JOIN time_entries e ON e.tenant_id = app_tenant()
		AND e.client_id = i.client_id AND e.invoice_line_id IS NULL
		AND e.kind = 'billable' AND e.status = 'committed'
		AND e.started_at >= i.starts_on::timestamp AT TIME ZONE env.tz
		AND e.started_at < upper(i.usage)::timestamp AT TIME ZONE env.tz
	JOIN tickets tk ON tk.tenant_id = e.tenant_id AND tk.id = e.ticket_id
	JOIN users u ON u.tenant_id = e.tenant_id AND u.id = e.user_id
	-- the terms of the entry's day (looked up only for a contract with
	-- history; the others have one version)
	CROSS JOIN LATERAL (SELECT i.hourly_rate, i.project_rate, i.inc, i.mini
		WHERE NOT i.has_history
		UNION ALL
		(SELECT h.hourly_rate, h.project_rate, h.inc, h.mini FROM terms h
		 WHERE i.has_history AND h.contract_id = i.contract_id
		   AND h.valid @> (e.started_at AT TIME ZONE env.tz)::date
		 LIMIT 1)) t
	WHERE i.usage IS NOT NULL
	  AND NOT EXISTS (SELECT 1 FROM unnest(p_skip) s (id) WHERE s.id = e.id)
), proj AS (
	SELECT e.item, 8 AS grp, e.number::bigint AS key, NULL::date AS ph_lo,
		e.prate AS sort2, 'project' AS kind,
		'Project #' || e.number || ' ' || e.subject AS description,
		billing_hours(sum(e.billed)) || ' h at project rate (raw '
			|| billing_hours(sum(e.raw)) || ' h, ' || count(*)
			|| CASE WHEN count(*) = 1 THEN ' entry)' ELSE ' entries)' END
			AS breakdown,
		round(sum(e.billed)::numeric / 60, 10) AS quantity, e.prate AS price,
		round(sum(e.billed) * e.prate / 60, 2) AS amount,
		sum(e.raw)::int AS raw, sum(e.billed)::int AS billed,
		array_agg(e.id ORDER BY e.id) AS ids,
		array_agg(e.raw ORDER BY e.id) AS raws,
		array_agg(e.billed ORDER BY e.id) AS billeds
	FROM ents e WHERE e.project AND e.prate IS NOT NULL
	GROUP BY e.item, e.ticket_id, e.number, e.subject, e.prate
), used AS MATERIALIZED (
	SELECT e.item, sum(e.raw)::int AS raw, sum(e.billed)::int AS billed,
		array_agg(e.id ORDER BY e.id) AS ids,
		array_agg(e.raw ORDER BY e.id) AS raws,
		array_agg(e.billed ORDER BY e.id) AS billeds
	FROM ents e WHERE NOT e.project GROUP BY e.item
), block AS (
	SELECT b.item, 9 AS grp, 0::bigint AS key, NULL::date AS ph_lo,
		NULL::numeric AS sort2, 'overage' AS kind,
		'Hours beyond the block, ' || billing_range_text(b.usage) AS description,
		billing_hours(s.used) || ' h used of ' || billing_hours(s.avail)
			|| ' h available' || CASE WHEN s.avail > b.block
				THEN ' (' || billing_hours(s.avail - b.block)
					|| ' h rolled over)' ELSE '' END
			|| ': ' || billing_hours(s.over) || ' h over (raw '
			|| billing_hours(s.raw) || ' h)' AS breakdown,
		round(s.over::numeric / 60, 10) AS quantity, b.over_rate AS price,
		round(s.over * b.over_rate / 60, 2) AS amount, s.raw, s.used,
		u.ids, u.raws, u.billeds, s.avail,
		CASE WHEN b.block_rollover THEN least(greatest(0, b.block - s.used),
			coalesce(b.rollover_cap_minutes, 2147483647)) ELSE 0 END AS carry
	FROM itb b
	LEFT JOIN used u ON u.item = b.item
	CROSS JOIN LATERAL (SELECT coalesce(u.raw, 0) AS raw,
		coalesce(u.billed, 0) AS used, b.block + CASE WHEN b.block_rollover
			THEN b.carry ELSE 0 END AS avail) s0
	CROSS JOIN LATERAL (SELECT s0.raw, s0.used, s0.avail,
		greatest(0, s0.used - s0.avail) AS over) s
	WHERE b.block_minutes IS NOT NULL
), payg AS (
	SELECT e.item, 9 AS grp, e.number::bigint AS key, NULL::date AS ph_lo,
		coalesce(e.user_rate, e.hourly_rate) AS sort2, 'time' AS kind,
		'#' || e.number || ' ' || e.subject AS description,
		billing_hours(sum(e.billed)) || ' h (raw ' || billing_hours(sum(e.raw))
			|| ' h, ' || count(*)
			|| CASE WHEN count(*) = 1 THEN ' entry)' ELSE ' entries)' END
			AS breakdown,
		round(sum(e.billed)::numeric / 60, 10) AS quantity,
		coalesce(e.user_rate, e.hourly_rate) AS price,
		round(sum(e.billed) * coalesce(e.user_rate, e.hourly_rate) / 60, 2)
			AS amount,
		sum(e.raw)::int AS raw, sum(e.billed)::int AS billed,
		array_agg(e.id ORDER BY e.id) AS ids,
		array_agg(e.raw ORDER BY e.id) AS raws,
		array_agg(e.billed ORDER BY e.id) AS billeds
	FROM ents e
	WHERE NOT e.project AND e.payg
	  AND coalesce(e.user_rate, e.hourly_rate) IS NOT NULL
	GROUP BY e.item, e.ticket_id, e.number, e.subject,
		coalesce(e.user_rate, e.hourly_rate)
), alll AS (
	SELECT f.item, f.grp, f.key, f.ph_lo, f.sort2, f.kind, f.description,
		f.breakdown, f.quantity, f.price AS unit_price, f.amount,
		coalesce(f.tax_id, env.def_tax) AS tax_rate_id,
		CASE WHEN f.tax_id IS NULL THEN env.def_rate ELSE f.rate END AS tax_rate,
		f.live_id AS contract_line_id, NULL::int AS raw_minutes,
		NULL::int AS rounded_minutes, NULL::bigint[] AS entry_ids,
		NULL::int[] AS entry_raw, NULL::int[] AS entry_billed,
		NULL::date[] AS days, NULL::int[] AS day_counts,
		NULL::int AS block_available, NULL::int AS block_used,
		NULL::int AS block_carry
	FROM fx f CROSS JOIN env
	UNION ALL
	SELECT a.item, a.grp, a.key, a.ph_lo, a.sort2, a.kind, a.description,
		a.breakdown, a.quantity, a.unit_price, a.amount,
		coalesce(a.tax_rate_id, env.def_tax),
		CASE WHEN a.tax_rate_id IS NULL THEN env.def_rate ELSE a.rate END,
		a.live_id, NULL, NULL, NULL, NULL, NULL, a.days, a.counts,
		NULL, NULL, NULL
	FROM assets a CROSS JOIN env
	UNION ALL
	SELECT p.item, p.grp, p.key, p.ph_lo, p.sort2, p.kind, p.description,
		p.breakdown, p.quantity, p.price, p.amount, env.def_tax, env.def_rate,
		NULL, p.raw, p.billed, p.ids, p.raws, p.billeds, NULL, NULL,
		NULL, NULL, NULL
	FROM proj p CROSS JOIN env
	UNION ALL
	SELECT b.item, b.grp, b.key, b.ph_lo, b.sort2, b.kind, b.description,
		b.breakdown, b.quantity, b.price, b.amount, env.def_tax, env.def_rate,
		NULL, b.raw, b.used, b.ids, b.raws, b.billeds, NULL, NULL,
		b.avail, b.used, b.carry
	FROM block b CROSS JOIN env
	UNION ALL
	SELECT p.item, p.grp, p.key, p.ph_lo, p.sort2, p.kind, p.description,
		p.breakdown, p.quantity, p.price, p.amount, env.def_tax, env.def_rate,
		NULL, p.raw, p.billed, p.ids, p.raws, p.billeds, NULL, NULL,
		NULL, NULL, NULL
	FROM payg p CROSS JOIN env
)
SELECT a.item, (row_number() OVER (PARTITION BY a.item
		ORDER BY a.grp, a.key, a.ph_lo, a.sort2))::int,
	a.kind, a.description, a.breakdown, a.quantity, a.unit_price, a.amount,
	a.tax_rate_id, a.tax_rate, a.contract_line_id, a.raw_minutes,
	a.rounded_minutes, a.entry_ids, a.entry_raw, a.entry_billed, a.days,
	a.day_counts, a.block_available, a.block_used, a.block_carry
FROM alll a
$$;

-- 0015's signature, for the preview: the same computation for one period.
CREATE OR REPLACE FUNCTION billing_lines(p_contract bigint, p_covers daterange,
	p_usage daterange, p_carry_in int)
RETURNS TABLE (pos int, kind text, description text, breakdown text,
	quantity numeric, unit_price numeric, amount numeric,
	tax_rate_id bigint, tax_rate numeric, contract_line_id bigint,
	raw_minutes int, rounded_minutes int, entries jsonb, days jsonb,
	block_available int, block_used int, block_carry int)
LANGUAGE sql STABLE AS $$
	SELECT c.pos, c.kind, c.description, c.breakdown, c.quantity, c.unit_price,
		c.amount, c.tax_rate_id, c.tax_rate, c.contract_line_id, c.raw_minutes,
		c.rounded_minutes,
		(SELECT jsonb_agg(jsonb_build_array(x.id, x.raw, x.billed) ORDER BY x.id)
		 FROM unnest(c.entry_ids, c.entry_raw, c.entry_billed) x (id, raw, billed)),
		(SELECT jsonb_agg(jsonb_build_array(x.day, x.cnt) ORDER BY x.day)
		 FROM unnest(c.days, c.day_counts) x (day, cnt)),
		c.block_available, c.block_used, c.block_carry
	FROM billing_compute(ARRAY[p_contract], ARRAY[p_covers], ARRAY[p_usage],
		ARRAY[p_carry_in], NULL) c
	ORDER BY c.pos
$$;

-- The run: staged per batch, written per client --------------------------

-- Stages every due period of every contract of clients p_clients as of
-- p_as_of (NULL: today in the tenant's zone) into this session's temporary
-- tables billing_stage_periods / billing_stage_lines, replacing what was
-- staged before. A contract with several periods due (a run missed) is
-- computed period after period (round after round), the block's carry
-- and the time billed flowing from one to the next as if each was written.
CREATE FUNCTION billing_stage(p_clients bigint[], p_as_of date)
RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	v_as_of date;
	r int := 0;
	n int;
	v_ids bigint[];
	v_skip bigint[];
BEGIN
	CREATE TEMP TABLE IF NOT EXISTS billing_stage_periods (
		id int PRIMARY KEY, tenant_id bigint, client_id bigint,
		contract_id bigint, contract text, ord int, round int,
		starts_on date, covers daterange, usage daterange, currency text,
		carry int, nlines int, nentries int, subtotal numeric, tax numeric,
		block_available int, block_used int, block_carry int);
	CREATE INDEX IF NOT EXISTS billing_stage_periods_client
		ON billing_stage_periods (client_id);
	CREATE TEMP TABLE IF NOT EXISTS billing_stage_lines (
		period int, pos int, kind text, description text, breakdown text,
		quantity numeric, unit_price numeric, amount numeric,
		tax_rate_id bigint, tax_rate numeric, contract_line_id bigint,
		raw_minutes int, rounded_minutes int, entry_ids bigint[],
		entry_raw int[], entry_billed int[], days date[], day_counts int[],
		block_available int, block_used int, block_carry int,
		PRIMARY KEY (period, pos));
	TRUNCATE billing_stage_periods, billing_stage_lines;
	SELECT coalesce(p_as_of, (now() AT TIME ZONE t.time_zone)::date) INTO v_as_of
	FROM tenants t WHERE t.id = app_tenant();
	INSERT INTO billing_stage_periods (id, tenant_id, client_id, contract_id,
		contract, ord, round, starts_on, covers, usage, currency, carry)
	SELECT row_number() OVER (ORDER BY k.client_id, k.starts_on, k.id, d.n),
		app_tenant(), k.client_id, k.id, k.name,
		dense_rank() OVER (PARTITION BY k.client_id ORDER BY k.starts_on, k.id),
		d.n, d.starts_on, d.covers, d.usage,
		coalesce(c.currency, t.currency),
		CASE WHEN d.n = 1 THEN coalesce((SELECT b.block_carry_minutes
			FROM billing_periods b WHERE b.tenant_id = app_tenant()
			  AND b.contract_id = k.id AND b.state <> 'pending'
			ORDER BY b.starts_on DESC LIMIT 1), 0) END
	FROM contracts k
	JOIN clients c ON c.tenant_id = k.tenant_id AND c.id = k.client_id
	JOIN tenants t ON t.id = k.tenant_id
	CROSS JOIN LATERAL billing_due(k.id, v_as_of) WITH ORDINALITY
		AS d (starts_on, covers, usage, n)
	WHERE k.tenant_id = app_tenant() AND k.client_id = ANY (p_clients)
	  AND k.state <> 'voided';
	LOOP
		r := r + 1;
		SELECT array_agg(p.id ORDER BY p.id) INTO v_ids
		FROM billing_stage_periods p WHERE p.round = r;
		EXIT WHEN v_ids IS NULL;
		IF r > 1 THEN
			-- carry and time from the period before, as if written
			UPDATE billing_stage_periods p SET carry = coalesce(q.block_carry, 0)
			FROM billing_stage_periods q
			WHERE p.round = r AND q.round = r - 1 AND q.contract_id = p.contract_id;
			SELECT array_agg(x.id) INTO v_skip
			FROM billing_stage_lines l
			JOIN billing_stage_periods q ON q.id = l.period
			CROSS JOIN LATERAL unnest(l.entry_ids) x (id)
			WHERE q.round < r;
		END IF;
		INSERT INTO billing_stage_lines
		SELECT v_ids[c.item], c.pos, c.kind, left(c.description, 500),
			c.breakdown, c.quantity, c.unit_price, c.amount, c.tax_rate_id,
			c.tax_rate, c.contract_line_id, c.raw_minutes, c.rounded_minutes,
			c.entry_ids, c.entry_raw, c.entry_billed, c.days, c.day_counts,
			c.block_available, c.block_used, c.block_carry
		FROM (SELECT array_agg(p.contract_id ORDER BY p.id) AS k,
			array_agg(p.covers ORDER BY p.id) AS cv,
			array_agg(p.usage ORDER BY p.id) AS us,
			array_agg(p.carry ORDER BY p.id) AS ca
		      FROM billing_stage_periods p WHERE p.round = r) a
		CROSS JOIN LATERAL billing_compute(a.k, a.cv, a.us, a.ca, v_skip) c;
		UPDATE billing_stage_periods p SET block_available = l.block_available,
			block_used = l.block_used, block_carry = l.block_carry
		FROM billing_stage_lines l
		WHERE p.round = r AND l.period = p.id AND l.block_carry IS NOT NULL;
	END LOOP;
	UPDATE billing_stage_periods p SET nlines = s.n, nentries = s.ne,
		subtotal = s.sub, tax = s.tax
	FROM (SELECT q.id, count(l.pos)::int AS n,
		coalesce(sum(cardinality(l.entry_ids)), 0)::int AS ne,
		coalesce((SELECT sum(r2.net) FROM (SELECT sum(l2.amount) AS net
			FROM billing_stage_lines l2 WHERE l2.period = q.id
			GROUP BY l2.tax_rate) r2), 0) AS sub,
		coalesce((SELECT sum(round(r2.net * r2.rate / 100, 2))
			FROM (SELECT sum(l2.amount) AS net, l2.tax_rate AS rate
			      FROM billing_stage_lines l2 WHERE l2.period = q.id
			      GROUP BY l2.tax_rate) r2), 0) AS tax
	      FROM billing_stage_periods q
	      LEFT JOIN billing_stage_lines l ON l.period = q.id
	      GROUP BY q.id) s
	WHERE s.id = p.id;
	SELECT count(*) INTO n FROM billing_stage_periods;
	RETURN n;
END
$$;

-- Writes (unless p_dry) what billing_stage staged for client p_client: per
-- period, the period row first under its unique key (a period billed
-- meanwhile, by a rerun or a second host, is left alone), then the draft
-- invoice with its lines, their per-day counts and time entries (each
-- linked only from NULL and only as read, else the client rolls back),
-- in two set-based statements per period. Returns what it did, period by
-- period; a dry run's also with the lines and what changed since the
-- contract's previous invoice (for its report).
CREATE FUNCTION billing_write_client(p_client bigint, p_dry boolean)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
	p record;
	inv_id bigint;
	per_id bigint;
	nlinked int;
	ls jsonb;
	changes jsonb;
	prev_total numeric;
	prev_lines jsonb;
	last_contract bigint := NULL;
	result jsonb := '[]';
BEGIN
	FOR p IN SELECT * FROM billing_stage_periods s
		WHERE s.tenant_id = app_tenant() AND s.client_id = p_client
		ORDER BY s.ord, s.round
	LOOP
		inv_id := NULL;
		ls := NULL;
		changes := NULL;
		IF p_dry THEN
			IF last_contract IS DISTINCT FROM p.contract_id THEN
				last_contract := p.contract_id;
				prev_total := NULL;
				prev_lines := NULL;
				SELECT it.total, (SELECT jsonb_agg(jsonb_build_object('kind', l.kind,
						'contract_line_id', l.contract_line_id, 'amount', l.amount))
					FROM invoice_lines l WHERE l.tenant_id = v.tenant_id
					  AND l.invoice_id = v.id)
				INTO prev_total, prev_lines
				FROM invoices v JOIN invoice_totals it ON it.tenant_id = v.tenant_id
					AND it.invoice_id = v.id
				WHERE v.tenant_id = app_tenant() AND v.contract_id = p.contract_id
				ORDER BY v.period_to DESC NULLS LAST, v.id DESC LIMIT 1;
			END IF;
			SELECT jsonb_agg(jsonb_build_object('pos', l.pos, 'kind', l.kind,
				'description', l.description, 'breakdown', l.breakdown,
				'quantity', l.quantity, 'unit_price', l.unit_price,
				'amount', l.amount, 'contract_line_id', l.contract_line_id)
				ORDER BY l.pos)
			INTO ls FROM billing_stage_lines l WHERE l.period = p.id;
			-- What changed since the previous invoice, by kind of line.
			SELECT jsonb_agg(jsonb_build_object('line', coalesce(n.key, o.key),
					'before', coalesce(o.amt, 0), 'after', coalesce(n.amt, 0),
					'why', coalesce(n.why, 'not billed this period'))
				ORDER BY coalesce(n.key, o.key))
			INTO changes
			FROM (SELECT l.kind || coalesce(' #' || l.contract_line_id, '') AS key,
				sum(l.amount) AS amt,
				string_agg(nullif(l.breakdown, ''), '; ' ORDER BY l.pos) AS why
			      FROM billing_stage_lines l WHERE l.period = p.id GROUP BY 1) n
			FULL JOIN (SELECT x.kind || coalesce(' #' || x.contract_line_id, '') AS key,
				sum(x.amount) AS amt
			      FROM jsonb_to_recordset(coalesce(prev_lines, '[]')) AS x (kind text,
				contract_line_id bigint, amount numeric)
			      GROUP BY 1) o ON o.key = n.key
			WHERE n.amt IS DISTINCT FROM o.amt;
		ELSE
			-- The period row first, under its unique key, and its invoice
			-- when there is something to bill.
			WITH per AS (
				INSERT INTO billing_periods AS b (tenant_id, contract_id,
					starts_on, covers, usage, state, block_available_minutes,
					block_used_minutes, block_carry_minutes)
				VALUES (app_tenant(), p.contract_id, p.starts_on, p.covers,
					p.usage, 'skipped', p.block_available, p.block_used,
					coalesce(p.block_carry, 0))
				ON CONFLICT (tenant_id, contract_id, starts_on) DO UPDATE
					SET state = 'skipped',
					    block_available_minutes = EXCLUDED.block_available_minutes,
					    block_used_minutes = EXCLUDED.block_used_minutes,
					    block_carry_minutes = EXCLUDED.block_carry_minutes
					WHERE b.state = 'pending'
				RETURNING b.id
			), inv AS (
				INSERT INTO invoices (tenant_id, client_id, contract_id,
					currency, period_from, period_to)
				SELECT app_tenant(), p_client, p.contract_id, p.currency,
					coalesce(lower(p.usage), lower(p.covers)),
					CASE WHEN isempty(p.covers) THEN upper(p.usage)
						ELSE upper(p.covers) END - 1
				FROM per WHERE p.nlines > 0
				RETURNING id
			)
			SELECT (SELECT per.id FROM per), (SELECT inv.id FROM inv)
			INTO per_id, inv_id;
			IF per_id IS NULL THEN
				CONTINUE;  -- billed meanwhile
			END IF;
			IF inv_id IS NOT NULL THEN
				-- Lines, their sources, the entries linked (only from NULL
				-- and only as read), the period billed, the audit row.
				WITH ins AS (
					INSERT INTO invoice_lines (tenant_id, invoice_id, position,
						kind, description, breakdown, quantity, unit_price,
						amount, tax_rate_id, tax_rate, contract_line_id,
						raw_minutes, rounded_minutes)
					SELECT app_tenant(), inv_id, l.pos, l.kind, l.description,
						l.breakdown, l.quantity, l.unit_price, l.amount,
						l.tax_rate_id, l.tax_rate, l.contract_line_id,
						l.raw_minutes, l.rounded_minutes
					FROM billing_stage_lines l WHERE l.period = p.id
					RETURNING id, position
				), m AS (
					SELECT ins.id AS line_id, l.entry_ids, l.entry_raw,
						l.entry_billed, l.days, l.day_counts
					FROM ins JOIN billing_stage_lines l ON l.period = p.id
						AND l.pos = ins.position
				), d AS (
					INSERT INTO invoice_line_days (tenant_id, line_id, day, count)
					SELECT app_tenant(), m.line_id, x.day, x.cnt
					FROM m CROSS JOIN LATERAL unnest(m.days, m.day_counts) x (day, cnt)
				), e AS (
					INSERT INTO invoice_line_entries (tenant_id, line_id,
						entry_id, raw_minutes, billed_minutes)
					SELECT app_tenant(), m.line_id, x.id, x.raw, x.billed
					FROM m CROSS JOIN LATERAL unnest(m.entry_ids, m.entry_raw,
						m.entry_billed) x (id, raw, billed)
				), b AS (
					UPDATE billing_periods SET state = 'billed', invoice_id = inv_id
					WHERE tenant_id = app_tenant() AND id = per_id
				), au AS (
					INSERT INTO audit_log (tenant_id, actor, action, object_type,
						object_id, detail)
					VALUES (app_tenant(), 'system:billing-run', 'invoice.create',
						'invoice', inv_id, jsonb_build_object('contract_id',
						p.contract_id, 'period', p.starts_on,
						'total', p.subtotal + p.tax))
				)
				UPDATE time_entries t SET invoice_line_id = x.line_id
				FROM (SELECT m.line_id, u.id, u.raw FROM m
				      CROSS JOIN LATERAL unnest(m.entry_ids, m.entry_raw) u (id, raw)) x
				WHERE t.tenant_id = app_tenant() AND t.id = x.id
				  AND t.minutes = x.raw AND t.invoice_line_id IS NULL;
				GET DIAGNOSTICS nlinked = ROW_COUNT;
				IF nlinked <> p.nentries THEN
					RAISE EXCEPTION 'time entries of contract % changed or were billed meanwhile',
						p.contract_id USING ERRCODE = 'serialization_failure';
				END IF;
			END IF;
		END IF;
		IF NOT p_dry THEN
			result := result || jsonb_build_object('contract_id', p.contract_id,
				'starts_on', p.starts_on, 'invoice_id', inv_id,
				'skipped', p.nlines = 0, 'total', p.subtotal + p.tax);
			CONTINUE;
		END IF;
		result := result || jsonb_build_object('contract_id', p.contract_id,
			'contract', p.contract, 'starts_on', p.starts_on,
			'covers', CASE WHEN isempty(p.covers) THEN NULL
				ELSE billing_range_text(p.covers) END,
			'usage', CASE WHEN p.usage IS NULL THEN NULL
				ELSE billing_range_text(p.usage) END,
			'invoice_id', inv_id, 'skipped', p.nlines = 0,
			'lines', coalesce(ls, '[]'), 'subtotal', p.subtotal, 'tax', p.tax,
			'total', p.subtotal + p.tax, 'previous_total', prev_total,
			'changes', coalesce(changes, '[]'));
		IF p.nlines > 0 THEN
			prev_total := p.subtotal + p.tax;
			SELECT jsonb_agg(jsonb_build_object('kind', l.kind,
				'contract_line_id', l.contract_line_id, 'amount', l.amount))
			INTO prev_lines FROM billing_stage_lines l WHERE l.period = p.id;
		END IF;
	END LOOP;
	RETURN result;
END
$$;

-- billing-run's one statement per client (its own transaction): binds
-- tenant p_tenant for the transaction, as db_tx_begin would, and writes
-- (unless p_dry) what was staged for client p_client. Counts, the total
-- and (dry run) the text for people.
CREATE FUNCTION billing_write(p_tenant bigint, p_client bigint, p_dry boolean,
	OUT invoices int, OUT would_bill int, OUT total text, OUT report text)
LANGUAGE plpgsql AS $$
DECLARE
	r jsonb;
BEGIN
	PERFORM set_config('app.tenant_id', p_tenant::text, true);
	r := billing_write_client(p_client, p_dry);
	SELECT count(*) FILTER (WHERE e ->> 'invoice_id' IS NOT NULL),
		count(*) FILTER (WHERE NOT (e ->> 'skipped')::boolean),
		coalesce(sum((e ->> 'total')::numeric), 0)::numeric(14, 2)::text
	INTO invoices, would_bill, total
	FROM jsonb_array_elements(r) e;
	report := '';
	IF p_dry THEN
		SELECT coalesce(billing_report(c.name, r), '') INTO report
		FROM clients c WHERE c.tenant_id = app_tenant() AND c.id = p_client;
	END IF;
END
$$;

-- 0015's one-client entry point, now the staged engine for one client.
CREATE OR REPLACE FUNCTION billing_run_client(p_client bigint, p_as_of date, p_dry boolean)
RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM clients c WHERE c.tenant_id = app_tenant()
		AND c.id = p_client) THEN
		RAISE EXCEPTION 'no client %', p_client USING ERRCODE = 'no_data_found';
	END IF;
	PERFORM billing_stage(ARRAY[p_client], p_as_of);
	RETURN billing_write_client(p_client, p_dry);
END
$$;

DO $$
BEGIN
	ALTER TABLE contract_terms ENABLE ROW LEVEL SECURITY;
	ALTER TABLE contract_terms FORCE ROW LEVEL SECURITY;
	CREATE POLICY tenant_isolation ON contract_terms
		USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
	GRANT SELECT, INSERT, UPDATE, DELETE ON contract_terms TO tallydesk_app;
END
$$;
