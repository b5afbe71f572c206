-- 0015_billing.sql: the billing engine. Billing periods as rows per
-- contract (billed once, by a unique key), invoices with lines that keep
-- their sources (time entries, per-day asset counts, contract line),
-- credit notes and payments. Balances are derived, never stored. The
-- engine itself is SQL (billing_lines / billing_run_client): one
-- computation serves the preview, the dry run and the real run.

-- Time rounding per contract: each billable entry rounds up to the
-- increment, and to at least the minimum (NULL: none).
ALTER TABLE contracts
	ADD COLUMN time_increment_minutes int
		CHECK (time_increment_minutes BETWEEN 1 AND 240),
	ADD COLUMN time_minimum_minutes int
		CHECK (time_minimum_minutes BETWEEN 1 AND 1440);

-- Gapless numbers per tenant: taken in the transaction that issues, so a
-- rollback gives the number back. kind: 'invoice' or 'credit_note'.
CREATE TABLE billing_numbers (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	kind text NOT NULL CHECK (kind IN ('invoice', 'credit_note')),
	last bigint NOT NULL DEFAULT 0,
	PRIMARY KEY (tenant_id, kind)
);

-- status is what people did; paid / partly paid / overdue are read from
-- the derived balance and due date (invoice_totals), so they never drift.
-- 'void': fully reversed by credit notes.
CREATE TABLE invoices (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	id bigint GENERATED ALWAYS AS IDENTITY,
	client_id bigint NOT NULL,
	contract_id bigint,          -- NULL: a manual invoice
	status text NOT NULL DEFAULT 'draft'
		CHECK (status IN ('draft', 'issued', 'sent', 'void')),
	number text,                 -- assigned at issue
	issued_on date,
	due_on date,
	sent_at timestamptz,
	currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
	period_from date,            -- the days it bills (display, filters)
	period_to date,
	notes text NOT NULL DEFAULT '' CHECK (length(notes) <= 5000),
	created_by bigint,
	created_at timestamptz NOT NULL DEFAULT now(),
	issued_by bigint,
	PRIMARY KEY (tenant_id, id),
	UNIQUE (tenant_id, number),
	FOREIGN KEY (tenant_id, client_id) REFERENCES clients (tenant_id, id),
	FOREIGN KEY (tenant_id, contract_id) REFERENCES contracts (tenant_id, id),
	CHECK ((status = 'draft') = (number IS NULL)),
	CHECK (number IS NULL OR (issued_on IS NOT NULL AND due_on IS NOT NULL))
);
CREATE INDEX invoices_client ON invoices (tenant_id, client_id, id DESC);
CREATE INDEX invoices_contract ON invoices (tenant_id, contract_id, id DESC);
CREATE INDEX invoices_list ON invoices (tenant_id, status, id DESC);

-- A contract's billing periods. starts_on is the day the period falls due
-- (the key: one invoice per contract per period, whatever runs twice);
-- covers: the days its fixed lines bill in advance (empty for the closing
-- period after the contract ends); usage: the previous period, whose
-- asset counts and time it bills in arrears (NULL for the first).
CREATE TABLE billing_periods (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	id bigint GENERATED ALWAYS AS IDENTITY,
	contract_id bigint NOT NULL,
	starts_on date NOT NULL,
	covers daterange NOT NULL,
	usage daterange,
	state text NOT NULL DEFAULT 'pending'
		CHECK (state IN ('pending', 'billed', 'skipped')),
	invoice_id bigint,
	-- The block as finalised for the usage period (rollover reads the
	-- carry of the previous row).
	block_available_minutes int,
	block_used_minutes int,
	block_carry_minutes int NOT NULL DEFAULT 0,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (tenant_id, id),
	UNIQUE (tenant_id, contract_id, starts_on),
	FOREIGN KEY (tenant_id, contract_id) REFERENCES contracts (tenant_id, id),
	FOREIGN KEY (tenant_id, invoice_id) REFERENCES invoices (tenant_id, id),
	CHECK ((state = 'billed') = (invoice_id IS NOT NULL))
);

CREATE TABLE invoice_lines (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	id bigint GENERATED ALWAYS AS IDENTITY,
	invoice_id bigint NOT NULL,
	position int NOT NULL,
	kind text NOT NULL CHECK (kind IN ('flat_fee', 'block_fee', 'fixed',
		'assets', 'overage', 'time', 'project', 'manual')),
	description text NOT NULL CHECK (length(description) BETWEEN 1 AND 500),
	breakdown text NOT NULL DEFAULT '',   -- "5 days × 100 assets, ..."
	-- Enough scale for 108.333… (asset-days / days) and hours of minutes.
	quantity numeric(20, 10) NOT NULL,
	unit_price numeric(14, 2) NOT NULL,
	amount numeric(14, 2) NOT NULL,
	tax_rate_id bigint,
	tax_rate numeric(7, 4) NOT NULL DEFAULT 0,  -- the rate when billed
	contract_line_id bigint,
	raw_minutes int,             -- time lines: as recorded ...
	rounded_minutes int,         -- ... and as billed
	PRIMARY KEY (tenant_id, id),
	UNIQUE (tenant_id, invoice_id, position),
	FOREIGN KEY (tenant_id, invoice_id) REFERENCES invoices (tenant_id, id)
		ON DELETE CASCADE,
	FOREIGN KEY (tenant_id, tax_rate_id) REFERENCES tax_rates (tenant_id, id),
	FOREIGN KEY (tenant_id, contract_line_id) REFERENCES contract_lines (tenant_id, id)
		ON DELETE SET NULL (contract_line_id)
);

-- Sources: the per-day asset counts a line used ...
CREATE TABLE invoice_line_days (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	line_id bigint NOT NULL,
	day date NOT NULL,
	count int NOT NULL CHECK (count >= 0),
	PRIMARY KEY (tenant_id, line_id, day),
	FOREIGN KEY (tenant_id, line_id) REFERENCES invoice_lines (tenant_id, id)
		ON DELETE CASCADE
);

-- ... and the time entries it billed, raw and rounded. The entry itself
-- points at its line (time_entries.invoice_line_id, set only from NULL).
CREATE TABLE invoice_line_entries (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	line_id bigint NOT NULL,
	entry_id bigint NOT NULL,
	raw_minutes int NOT NULL,
	billed_minutes int NOT NULL,
	PRIMARY KEY (tenant_id, line_id, entry_id),
	FOREIGN KEY (tenant_id, line_id) REFERENCES invoice_lines (tenant_id, id)
		ON DELETE CASCADE,
	FOREIGN KEY (tenant_id, entry_id) REFERENCES time_entries (tenant_id, id)
);
CREATE INDEX invoice_line_entries_entry ON invoice_line_entries (tenant_id, entry_id);

-- No foreign key from time_entries.invoice_line_id: it is the lock flag
-- (0010's trigger), and invoice_line_entries above is the checked link.
CREATE INDEX time_entries_unbilled ON time_entries (tenant_id, client_id, started_at)
	WHERE invoice_line_id IS NULL AND kind = 'billable' AND status = 'committed';

CREATE TABLE credit_notes (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	id bigint GENERATED ALWAYS AS IDENTITY,
	invoice_id bigint NOT NULL,
	number text NOT NULL,
	amount numeric(14, 2) NOT NULL CHECK (amount > 0),  -- tax included
	reason text NOT NULL CHECK (length(reason) BETWEEN 1 AND 1000),
	issued_on date NOT NULL,
	created_by bigint,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (tenant_id, id),
	UNIQUE (tenant_id, number),
	FOREIGN KEY (tenant_id, invoice_id) REFERENCES invoices (tenant_id, id)
);
CREATE INDEX credit_notes_invoice ON credit_notes (tenant_id, invoice_id);

CREATE TABLE payments (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	id bigint GENERATED ALWAYS AS IDENTITY,
	invoice_id bigint NOT NULL,
	amount numeric(14, 2) NOT NULL CHECK (amount > 0),
	paid_on date NOT NULL,
	method text NOT NULL CHECK (method IN ('bank_transfer', 'card', 'cash',
		'cheque', 'direct_debit', 'other')),
	reference text NOT NULL DEFAULT '' CHECK (length(reference) <= 200),
	created_by bigint,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (tenant_id, id),
	FOREIGN KEY (tenant_id, invoice_id) REFERENCES invoices (tenant_id, id)
);
CREATE INDEX payments_invoice ON payments (tenant_id, invoice_id);

-- Totals, always derived: tax per rate on the sum of that rate's lines,
-- rounded half away from zero; balance = total - credits - payments.
CREATE VIEW invoice_totals WITH (security_invoker = true) AS
SELECT i.tenant_id, i.id AS invoice_id,
	coalesce(s.subtotal, 0)::numeric(14, 2) AS subtotal,
	coalesce(s.tax, 0)::numeric(14, 2) AS tax,
	(coalesce(s.subtotal, 0) + coalesce(s.tax, 0))::numeric(14, 2) AS total,
	coalesce(c.credited, 0)::numeric(14, 2) AS credited,
	coalesce(p.paid, 0)::numeric(14, 2) AS paid,
	(coalesce(s.subtotal, 0) + coalesce(s.tax, 0) - coalesce(c.credited, 0)
		- coalesce(p.paid, 0))::numeric(14, 2) AS balance
FROM invoices i
LEFT JOIN LATERAL (
	SELECT sum(net) AS subtotal, sum(round(net * rate / 100, 2)) AS tax
	FROM (SELECT sum(l.amount) AS net, l.tax_rate AS rate
	      FROM invoice_lines l
	      WHERE l.tenant_id = i.tenant_id AND l.invoice_id = i.id
	      GROUP BY l.tax_rate) r
) s ON true
LEFT JOIN LATERAL (
	SELECT sum(amount) AS credited FROM credit_notes n
	WHERE n.tenant_id = i.tenant_id AND n.invoice_id = i.id
) c ON true
LEFT JOIN LATERAL (
	SELECT sum(amount) AS paid FROM payments y
	WHERE y.tenant_id = i.tenant_id AND y.invoice_id = i.id
) p ON true;

-- Billing may release an entry (invoice_line_id back to NULL) when it
-- reverses the invoice that billed it: only inside a transaction that set
-- app.billing_release = 'on' (billing_contract_voided does, locally), and
-- nothing else of the entry may change. Replaces 0010's function.
CREATE OR REPLACE FUNCTION time_entries_invoiced_lock() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'DELETE' THEN
		IF OLD.invoice_line_id IS NOT NULL THEN
			RAISE EXCEPTION 'time entry % is on an invoice', OLD.id
				USING ERRCODE = 'check_violation';
		END IF;
		RETURN OLD;
	END IF;
	IF OLD.invoice_line_id IS NOT NULL AND NEW.invoice_line_id IS NULL
	   AND coalesce(current_setting('app.billing_release', true), '') = 'on'
	   AND (NEW.ticket_id, NEW.client_id, NEW.user_id, NEW.started_at,
	        NEW.minutes, NEW.kind, NEW.status, NEW.description, NEW.service)
	   IS NOT DISTINCT FROM
	       (OLD.ticket_id, OLD.client_id, OLD.user_id, OLD.started_at,
	        OLD.minutes, OLD.kind, OLD.status, OLD.description, OLD.service) THEN
		RETURN NEW;
	END IF;
	IF OLD.invoice_line_id IS NOT NULL AND
	   (NEW.ticket_id, NEW.client_id, NEW.user_id, NEW.started_at,
	    NEW.minutes, NEW.kind, NEW.status, NEW.description, NEW.service,
	    NEW.invoice_line_id)
	   IS DISTINCT FROM
	   (OLD.ticket_id, OLD.client_id, OLD.user_id, OLD.started_at,
	    OLD.minutes, OLD.kind, OLD.status, OLD.description, OLD.service,
	    OLD.invoice_line_id) THEN
		RAISE EXCEPTION 'time entry % is on an invoice', OLD.id
			USING ERRCODE = 'check_violation';
	END IF;
	RETURN NEW;
END
$$;

-- The whole cycle (not clipped to the contract's dates) holding p_at: the
-- denominator of proration. Cycles are counted in 1/3/12 months from the
-- start month; a year earlier keeps that alignment and never clips.
CREATE FUNCTION billing_full_cycle(p_starts date, p_freq text, p_day int,
	p_at date)
RETURNS daterange
LANGUAGE sql IMMUTABLE AS $$
	SELECT contract_cycle((date_trunc('month', p_starts) - interval '12 months')::date,
		NULL, p_freq, p_day, p_at)
$$;

-- "1 Dec 2026 – 31 Dec 2026" for [lower, upper).
CREATE FUNCTION billing_range_text(p daterange) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT to_char(lower(p), 'FMDD Mon YYYY') || ' – '
		|| to_char(upper(p) - 1, 'FMDD Mon YYYY')
$$;

-- Minutes as hours with two decimals: 105 -> "1.75".
CREATE FUNCTION billing_hours(p_minutes bigint) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT to_char(round(p_minutes::numeric / 60, 2), 'FM999999990.00')
$$;

-- The periods of contract p_contract due by day p_as_of and not yet billed
-- or skipped, in order: each cycle once its first day has come, then the
-- closing period (usage of the last cycle) the day after the contract ends.
CREATE FUNCTION billing_due(p_contract bigint, p_as_of date)
RETURNS TABLE (starts_on date, covers daterange, usage daterange)
LANGUAGE plpgsql STABLE ROWS 2 AS $$
DECLARE
	k contracts;
	last_row billing_periods;
	prev daterange;
	c daterange;
	d date;
	stop date;
BEGIN
	SELECT * INTO k FROM contracts
	WHERE tenant_id = app_tenant() AND id = p_contract;
	IF NOT FOUND OR k.state = 'voided' THEN
		RETURN;
	END IF;
	-- Periods left pending (a deleted draft) come first.
	RETURN QUERY SELECT b.starts_on, b.covers, b.usage FROM billing_periods b
		WHERE b.tenant_id = app_tenant() AND b.contract_id = p_contract
		  AND b.state = 'pending' AND b.starts_on <= p_as_of
		ORDER BY b.starts_on;
	SELECT * INTO last_row FROM billing_periods b
	WHERE b.tenant_id = app_tenant() AND b.contract_id = p_contract
	ORDER BY b.starts_on DESC LIMIT 1;
	IF FOUND THEN
		IF EXISTS (SELECT 1 FROM billing_periods b WHERE b.tenant_id = app_tenant()
			AND b.contract_id = p_contract AND isempty(b.covers)) THEN
			RETURN;  -- the closing period is the last
		END IF;
		prev := last_row.covers;
		d := upper(last_row.covers);
	ELSE
		d := k.starts_on;
	END IF;
	stop := least(p_as_of, coalesce(k.ends_on, p_as_of));
	WHILE d <= stop LOOP
		c := contract_cycle(k.starts_on, k.ends_on, k.billing_frequency,
			k.billing_day, d);
		-- Never before what is billed already (the billing day or the
		-- frequency changed since): the new cycle is prorated instead.
		c := daterange(greatest(lower(c), d), upper(c));
		starts_on := lower(c);
		covers := c;
		usage := prev;
		RETURN NEXT;
		prev := c;
		d := upper(c);
	END LOOP;
	IF k.ends_on IS NOT NULL AND k.ends_on < p_as_of AND prev IS NOT NULL
	   AND d > k.ends_on THEN
		starts_on := k.ends_on + 1;
		covers := 'empty'::daterange;
		usage := prev;
		RETURN NEXT;
	END IF;
END
$$;

-- The lines of one period of a contract, computed, not written: fixed
-- lines (flat fee, block fee, fixed contract lines) for `covers`, prorated
-- by days of the whole cycle; asset-count lines from the per-day counts of
-- `usage`; time up to the end of `usage` that no invoice billed yet:
-- project tickets at the project rate, then the block (overage beyond the
-- block plus p_carry_in rolled-over minutes) or pay-as-you-go at the
-- technician's own rate or the contract's, by ticket. All-you-can-eat and
-- per-asset contracts without a block bill no time but project time.
-- Amounts are exact numerics rounded half away from zero to the penny.
CREATE FUNCTION billing_lines(p_contract bigint, p_covers daterange,
	p_usage daterange, p_carry_in int)
RETURNS TABLE (pos int, kind text, description text, breakdown text,
	quantity numeric, unit_price numeric, amount numeric,
	tax_rate_id bigint, tax_rate numeric, contract_line_id bigint,
	raw_minutes int, rounded_minutes int, entries jsonb, days jsonb,
	block_available int, block_used int, block_carry int)
LANGUAGE plpgsql STABLE AS $$
DECLARE
	k contracts;
	tz text;
	def_tax bigint;
	def_rate numeric;
	full_c daterange;
	ndays int;
	fdays int;
	prorate text := '';
	l record;
	n int := 0;
	total_asset_days bigint;
	used int;
	avail int;
	over int;
	v_rate numeric;
	from_ts timestamptz;
	to_ts timestamptz;
	tmp jsonb;
	refund daterange;
BEGIN
	SELECT * INTO k FROM contracts
	WHERE tenant_id = app_tenant() AND id = p_contract;
	SELECT t.time_zone INTO tz FROM tenants t WHERE t.id = app_tenant();
	SELECT r.id, r.rate INTO def_tax, def_rate FROM tax_rates r
	WHERE r.tenant_id = app_tenant() AND r.is_default AND NOT r.archived;
	def_rate := coalesce(def_rate, 0);
	entries := NULL; days := NULL; raw_minutes := NULL; rounded_minutes := NULL;
	block_available := NULL; block_used := NULL; block_carry := NULL;

	IF NOT isempty(p_covers) THEN
		full_c := billing_full_cycle(k.starts_on, k.billing_frequency,
			k.billing_day, lower(p_covers));
		ndays := upper(p_covers) - lower(p_covers);
		fdays := upper(full_c) - lower(full_c);
		IF ndays < fdays THEN
			prorate := ndays || ' of ' || fdays || ' days';
		END IF;
		IF k.flat_fee > 0 THEN
			n := n + 1;
			pos := n; kind := 'flat_fee';
			description := k.name || ', ' || billing_range_text(p_covers);
			breakdown := prorate;
			quantity := round(ndays::numeric / fdays, 10);
			unit_price := k.flat_fee;
			amount := round(k.flat_fee * ndays / fdays, 2);
			tax_rate_id := def_tax; tax_rate := def_rate;
			contract_line_id := NULL;
			RETURN NEXT;
		END IF;
		IF k.block_minutes IS NOT NULL AND coalesce(k.block_fee, 0) > 0 THEN
			n := n + 1;
			pos := n; kind := 'block_fee';
			description := 'Block of ' || billing_hours(k.block_minutes)
				|| ' h, ' || billing_range_text(p_covers);
			breakdown := prorate;
			quantity := round(ndays::numeric / fdays, 10);
			unit_price := k.block_fee;
			amount := round(k.block_fee * ndays / fdays, 2);
			tax_rate_id := def_tax; tax_rate := def_rate;
			contract_line_id := NULL;
			RETURN NEXT;
		END IF;
		FOR l IN SELECT cl.*, r.rate FROM contract_lines cl
			LEFT JOIN tax_rates r ON r.tenant_id = cl.tenant_id
				AND r.id = cl.tax_rate_id
			WHERE cl.tenant_id = app_tenant() AND cl.contract_id = k.id
			  AND cl.quantity_source = 'fixed' ORDER BY cl.id
		LOOP
			n := n + 1;
			pos := n; kind := 'fixed';
			description := l.description || ', ' || billing_range_text(p_covers);
			breakdown := CASE WHEN prorate = '' THEN ''
				ELSE trim_scale(l.quantity) || ' × ' || prorate END;
			quantity := round(l.quantity * ndays / fdays, 10);
			unit_price := l.unit_price;
			amount := round(l.quantity * l.unit_price * ndays / fdays, 2);
			tax_rate_id := coalesce(l.tax_rate_id, def_tax);
			tax_rate := CASE WHEN l.tax_rate_id IS NULL THEN def_rate ELSE l.rate END;
			contract_line_id := l.id;
			RETURN NEXT;
		END LOOP;
	END IF;

	IF p_usage IS NULL THEN
		RETURN;
	END IF;
	-- The closing period of a contract ended after its last period was
	-- billed in advance: give back the fixed fees of the days after the
	-- end, and bill usage only up to it.
	IF isempty(p_covers) AND k.ends_on IS NOT NULL
	   AND upper(p_usage) > k.ends_on + 1 THEN
		refund := daterange(greatest(lower(p_usage), k.ends_on + 1), upper(p_usage));
		full_c := billing_full_cycle(k.starts_on, k.billing_frequency,
			k.billing_day, lower(refund));
		ndays := upper(refund) - lower(refund);
		fdays := upper(full_c) - lower(full_c);
		prorate := 'contract ended ' || to_char(k.ends_on, 'FMDD Mon YYYY')
			|| ': ' || ndays || ' of ' || fdays || ' days back';
		FOR l IN SELECT 'flat_fee' AS kind, k.name AS description,
				1::numeric AS quantity, k.flat_fee AS unit_price,
				NULL::bigint AS tax_rate_id, NULL::numeric AS rate,
				NULL::bigint AS id
			WHERE k.flat_fee > 0
			UNION ALL
			SELECT 'block_fee', 'Block of ' || billing_hours(k.block_minutes) || ' h',
				1, k.block_fee, NULL, NULL, NULL
			WHERE k.block_minutes IS NOT NULL AND coalesce(k.block_fee, 0) > 0
			UNION ALL
			SELECT 'fixed', cl.description, cl.quantity, cl.unit_price,
				cl.tax_rate_id, r.rate, cl.id
			FROM contract_lines cl LEFT JOIN tax_rates r
				ON r.tenant_id = cl.tenant_id AND r.id = cl.tax_rate_id
			WHERE cl.tenant_id = app_tenant() AND cl.contract_id = k.id
			  AND cl.quantity_source = 'fixed'
		LOOP
			n := n + 1;
			pos := n; kind := l.kind;
			description := l.description || ', ' || billing_range_text(refund);
			breakdown := prorate;
			quantity := -round(l.quantity * ndays / fdays, 10);
			unit_price := l.unit_price;
			amount := -round(l.quantity * l.unit_price * ndays / fdays, 2);
			tax_rate_id := coalesce(l.tax_rate_id, def_tax);
			tax_rate := CASE WHEN l.tax_rate_id IS NULL THEN def_rate ELSE l.rate END;
			contract_line_id := l.id;
			RETURN NEXT;
		END LOOP;
		contract_line_id := NULL;
		IF k.ends_on + 1 <= lower(p_usage) THEN
			RETURN;  -- ended before the period began: nothing used
		END IF;
		p_usage := daterange(lower(p_usage), k.ends_on + 1);
	END IF;
	full_c := billing_full_cycle(k.starts_on, k.billing_frequency,
		k.billing_day, lower(p_usage));
	fdays := upper(full_c) - lower(full_c);
	FOR l IN SELECT cl.*, r.rate FROM contract_lines cl
		LEFT JOIN tax_rates r ON r.tenant_id = cl.tenant_id
			AND r.id = cl.tax_rate_id
		WHERE cl.tenant_id = app_tenant() AND cl.contract_id = k.id
		  AND cl.quantity_source = 'assets' ORDER BY cl.id
	LOOP
		SELECT sum(c.count),
			jsonb_agg(jsonb_build_array(c.day, c.count) ORDER BY c.day)
		INTO total_asset_days, days
		FROM asset_daily_counts(k.client_id, lower(p_usage),
			upper(p_usage) - 1, tz, l.asset_kinds, l.asset_categories) c;
		IF coalesce(total_asset_days, 0) = 0 THEN
			CONTINUE;
		END IF;
		-- Runs of equal counts: "5 days × 100 assets, 25 days × 110 assets".
		SELECT string_agg(g.ndays || CASE WHEN g.ndays = 1 THEN ' day × ' ELSE ' days × ' END
				|| g.cnt || CASE WHEN g.cnt = 1 THEN ' asset' ELSE ' assets' END,
				', ' ORDER BY g.first_day)
		INTO breakdown
		FROM (SELECT min(x.day) AS first_day, count(*) AS ndays, x.cnt
		      FROM (SELECT (e.value ->> 0)::date AS day, (e.value ->> 1)::int AS cnt,
				(e.value ->> 0)::date - (row_number() OVER (
					PARTITION BY (e.value ->> 1)::int
					ORDER BY (e.value ->> 0)::date))::int AS grp
			    FROM jsonb_array_elements(days) e) x
		      GROUP BY x.cnt, x.grp) g;
		IF fdays <> upper(p_usage) - lower(p_usage) THEN
			breakdown := breakdown || ' (' || (upper(p_usage) - lower(p_usage))
				|| ' of ' || fdays || ' days)';
		END IF;
		n := n + 1;
		pos := n; kind := 'assets';
		description := l.description || ', ' || billing_range_text(p_usage);
		quantity := round(total_asset_days::numeric / fdays, 10);
		unit_price := l.unit_price;
		amount := round(total_asset_days * l.unit_price / fdays, 2);
		tax_rate_id := coalesce(l.tax_rate_id, def_tax);
		tax_rate := CASE WHEN l.tax_rate_id IS NULL THEN def_rate ELSE l.rate END;
		contract_line_id := l.id;
		RETURN NEXT;
	END LOOP;
	days := NULL;
	contract_line_id := NULL;
	tax_rate_id := def_tax; tax_rate := def_rate;

	-- Time not billed yet, from the contract's start to the end of usage.
	from_ts := k.starts_on::timestamp AT TIME ZONE tz;
	to_ts := upper(p_usage)::timestamp AT TIME ZONE tz;
	SELECT jsonb_agg(jsonb_build_object('id', e.id, 'ticket_id', e.ticket_id,
		'number', t.number, 'subject', t.subject, 'project', t.type = 'project',
		'user_rate', u.hourly_rate, 'raw', e.minutes, 'billed',
		greatest(CASE WHEN k.time_increment_minutes IS NULL THEN e.minutes
			ELSE ((e.minutes + k.time_increment_minutes - 1)
				/ k.time_increment_minutes) * k.time_increment_minutes END,
			coalesce(k.time_minimum_minutes, 0))))
	INTO tmp
	FROM time_entries e
	-- Each entry's ticket by key (a join would hash every ticket of the
	-- tenant for a client's hundred entries).
	CROSS JOIN LATERAL (SELECT tk.number, tk.subject, tk.type FROM tickets tk
		WHERE tk.tenant_id = e.tenant_id AND tk.id = e.ticket_id) t
	JOIN users u ON u.tenant_id = e.tenant_id AND u.id = e.user_id
	WHERE e.tenant_id = app_tenant() AND e.client_id = k.client_id
	  AND e.invoice_line_id IS NULL AND e.kind = 'billable'
	  AND e.status = 'committed'
	  AND e.started_at >= from_ts AND e.started_at < to_ts;

	-- Project tickets, outside any block, at the project rate.
	v_rate := coalesce(k.project_rate, k.hourly_rate);
	IF v_rate IS NOT NULL THEN
		FOR l IN SELECT b.ticket_id, b.number, b.subject,
				sum(b.raw)::int AS raw, sum(b.billed)::int AS billed,
				count(*) AS n_entries,
				jsonb_agg(jsonb_build_array(b.id, b.raw, b.billed) ORDER BY b.id) AS ents
			FROM jsonb_to_recordset(coalesce(tmp, '[]')) AS b (id bigint,
				ticket_id bigint, number bigint, subject text, project boolean,
				user_rate numeric, raw int, billed int) WHERE b.project
			GROUP BY b.ticket_id, b.number, b.subject ORDER BY b.number
		LOOP
			n := n + 1;
			pos := n; kind := 'project';
			description := 'Project #' || l.number || ' ' || l.subject;
			breakdown := billing_hours(l.billed) || ' h at project rate (raw '
				|| billing_hours(l.raw) || ' h, ' || l.n_entries
				|| CASE WHEN l.n_entries = 1 THEN ' entry)' ELSE ' entries)' END;
			quantity := round(l.billed::numeric / 60, 10);
			unit_price := v_rate;
			amount := round(l.billed * v_rate / 60, 2);
			raw_minutes := l.raw; rounded_minutes := l.billed;
			entries := l.ents;
			RETURN NEXT;
		END LOOP;
	END IF;

	IF k.block_minutes IS NOT NULL THEN
		SELECT coalesce(sum(b.raw), 0)::int, coalesce(sum(b.billed), 0)::int,
			jsonb_agg(jsonb_build_array(b.id, b.raw, b.billed) ORDER BY b.id)
		INTO raw_minutes, used, entries
		FROM jsonb_to_recordset(coalesce(tmp, '[]')) AS b (id bigint,
				ticket_id bigint, number bigint, subject text, project boolean,
				user_rate numeric, raw int, billed int) WHERE NOT b.project;
		avail := k.block_minutes + CASE WHEN k.block_rollover
			THEN coalesce(p_carry_in, 0) ELSE 0 END;
		over := greatest(0, used - avail);
		v_rate := coalesce(k.overage_rate, k.hourly_rate, 0);
		n := n + 1;
		pos := n; kind := 'overage';
		description := 'Hours beyond the block, ' || billing_range_text(p_usage);
		breakdown := billing_hours(used) || ' h used of ' || billing_hours(avail)
			|| ' h available' || CASE WHEN avail > k.block_minutes
				THEN ' (' || billing_hours(avail - k.block_minutes)
					|| ' h rolled over)' ELSE '' END
			|| ': ' || billing_hours(over) || ' h over (raw '
			|| billing_hours(raw_minutes) || ' h)';
		quantity := round(over::numeric / 60, 10);
		unit_price := v_rate;
		amount := round(over * v_rate / 60, 2);
		rounded_minutes := used;
		block_available := avail;
		block_used := used;
		block_carry := CASE WHEN k.block_rollover THEN
			least(greatest(0, k.block_minutes - used), coalesce(k.rollover_cap_minutes, 2147483647))
			ELSE 0 END;
		RETURN NEXT;
		block_available := NULL; block_used := NULL; block_carry := NULL;
	ELSIF k.type = 'pay_as_you_go' THEN
		FOR l IN SELECT b.ticket_id, b.number, b.subject,
				coalesce(b.user_rate, k.hourly_rate) AS rate,
				sum(b.raw)::int AS raw, sum(b.billed)::int AS billed,
				count(*) AS n_entries,
				jsonb_agg(jsonb_build_array(b.id, b.raw, b.billed) ORDER BY b.id) AS ents
			FROM jsonb_to_recordset(coalesce(tmp, '[]')) AS b (id bigint,
				ticket_id bigint, number bigint, subject text, project boolean,
				user_rate numeric, raw int, billed int) WHERE NOT b.project
			GROUP BY b.ticket_id, b.number, b.subject, coalesce(b.user_rate, k.hourly_rate)
			ORDER BY b.number, 4
		LOOP
			n := n + 1;
			pos := n; kind := 'time';
			description := '#' || l.number || ' ' || l.subject;
			breakdown := billing_hours(l.billed) || ' h (raw '
				|| billing_hours(l.raw) || ' h, ' || l.n_entries
				|| CASE WHEN l.n_entries = 1 THEN ' entry)' ELSE ' entries)' END;
			quantity := round(l.billed::numeric / 60, 10);
			unit_price := l.rate;
			amount := round(l.billed * l.rate / 60, 2);
			raw_minutes := l.raw; rounded_minutes := l.billed;
			entries := l.ents;
			RETURN NEXT;
		END LOOP;
	END IF;
END
$$;

-- Bills (or with p_dry only computes) every due period of every contract
-- of client p_client as of day p_as_of (NULL: today in the tenant's zone).
-- One invoice (a draft) per period with lines; a period without lines is
-- recorded as skipped. The period row is inserted first, under its unique
-- key: a period billed meanwhile (a second host, a rerun) is left alone,
-- and each time entry is linked only from NULL (and only as read), else
-- the whole client rolls back. Returns what it did, period by period,
-- with the difference from the contract's previous invoice.
CREATE FUNCTION billing_run_client(p_client bigint, p_as_of date, p_dry boolean)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
	tz text;
	cur text;
	v_as_of date;
	k contracts;
	p record;
	ln record;
	blk record;
	carry int;
	ls jsonb;
	prev_lines jsonb;
	changes jsonb;
	inv_id bigint;
	per_id bigint;
	v_line bigint;
	sub numeric;
	v_tax numeric;
	prev_total numeric;
	nlinked int;
	v_ids bigint[];
	v_mins int[];
	result jsonb := '[]';
BEGIN
	SELECT t.time_zone, coalesce(c.currency, t.currency) INTO tz, cur
	FROM tenants t JOIN clients c ON c.tenant_id = t.id AND c.id = p_client
	WHERE t.id = app_tenant();
	IF NOT FOUND THEN
		RAISE EXCEPTION 'no client %', p_client USING ERRCODE = 'no_data_found';
	END IF;
	v_as_of := coalesce(p_as_of, (now() AT TIME ZONE tz)::date);
	FOR k IN SELECT * FROM contracts c WHERE c.tenant_id = app_tenant()
		AND c.client_id = p_client AND c.state <> 'voided'
		ORDER BY c.starts_on, c.id
	LOOP
		SELECT b.block_carry_minutes INTO carry FROM billing_periods b
		WHERE b.tenant_id = app_tenant() AND b.contract_id = k.id
		  AND b.state <> 'pending' ORDER BY b.starts_on DESC LIMIT 1;
		carry := coalesce(carry, 0);
		SELECT it.total, (SELECT jsonb_agg(jsonb_build_object('kind', l.kind,
				'contract_line_id', l.contract_line_id, 'amount', l.amount))
			FROM invoice_lines l WHERE l.tenant_id = v.tenant_id AND l.invoice_id = v.id)
		INTO prev_total, prev_lines
		FROM invoices v JOIN invoice_totals it ON it.tenant_id = v.tenant_id
			AND it.invoice_id = v.id
		WHERE v.tenant_id = app_tenant() AND v.contract_id = k.id
		ORDER BY v.period_to DESC NULLS LAST, v.id DESC LIMIT 1;
		FOR p IN SELECT * FROM billing_due(k.id, v_as_of) LOOP
			SELECT jsonb_agg(to_jsonb(x) ORDER BY x.pos) INTO ls
			FROM billing_lines(k.id, p.covers, p.usage, carry) x;
			SELECT x.block_available, x.block_used, x.block_carry INTO blk
			FROM jsonb_to_recordset(coalesce(ls, '[]')) AS x (block_available int,
				block_used int, block_carry int)
			WHERE x.block_carry IS NOT NULL;
			SELECT coalesce(sum(r.net), 0), coalesce(sum(round(r.net * r.rate / 100, 2)), 0)
			INTO sub, v_tax
			FROM (SELECT sum(x.amount) AS net, x.tax_rate AS rate
			      FROM jsonb_to_recordset(coalesce(ls, '[]')) AS x (amount numeric,
				tax_rate numeric) GROUP BY x.tax_rate) r;
			-- What changed since the previous invoice, by kind of line.
			SELECT jsonb_agg(jsonb_build_object('line', coalesce(n.key, o.key),
					'before', coalesce(o.amt, 0), 'after', coalesce(n.amt, 0),
					'why', coalesce(n.why, 'not billed this period'))
				ORDER BY coalesce(n.key, o.key))
			INTO changes
			FROM (SELECT x.kind || coalesce(' #' || x.contract_line_id, '') AS key,
				sum(x.amount) AS amt,
				string_agg(nullif(x.breakdown, ''), '; ') AS why
			      FROM jsonb_to_recordset(coalesce(ls, '[]')) AS x (kind text,
				contract_line_id bigint, amount numeric, breakdown text)
			      GROUP BY 1) n
			FULL JOIN (SELECT x.kind || coalesce(' #' || x.contract_line_id, '') AS key,
				sum(x.amount) AS amt
			      FROM jsonb_to_recordset(coalesce(prev_lines, '[]')) AS x (kind text,
				contract_line_id bigint, amount numeric)
			      GROUP BY 1) o ON o.key = n.key
			WHERE n.amt IS DISTINCT FROM o.amt;
			inv_id := NULL;
			IF NOT p_dry THEN
				per_id := NULL;
				INSERT INTO billing_periods AS b (tenant_id, contract_id, starts_on,
					covers, usage, state, block_available_minutes,
					block_used_minutes, block_carry_minutes)
				VALUES (app_tenant(), k.id, p.starts_on, p.covers, p.usage,
					'skipped', blk.block_available, blk.block_used,
					coalesce(blk.block_carry, 0))
				ON CONFLICT (tenant_id, contract_id, starts_on) DO UPDATE
					SET state = 'skipped',
					    block_available_minutes = EXCLUDED.block_available_minutes,
					    block_used_minutes = EXCLUDED.block_used_minutes,
					    block_carry_minutes = EXCLUDED.block_carry_minutes
					WHERE b.state = 'pending'
				RETURNING id INTO per_id;
				IF per_id IS NULL THEN
					CONTINUE;  -- billed meanwhile
				END IF;
				IF ls IS NOT NULL THEN
					INSERT INTO invoices (tenant_id, client_id, contract_id,
						currency, period_from, period_to)
					VALUES (app_tenant(), p_client, k.id, cur,
						coalesce(lower(p.usage), lower(p.covers)),
						CASE WHEN isempty(p.covers) THEN upper(p.usage)
							ELSE upper(p.covers) END - 1)
					RETURNING id INTO inv_id;
					FOR ln IN SELECT * FROM jsonb_to_recordset(ls) AS x (pos int,
						kind text, description text, breakdown text,
						quantity numeric, unit_price numeric, amount numeric,
						tax_rate_id bigint, tax_rate numeric,
						contract_line_id bigint, raw_minutes int,
						rounded_minutes int, entries jsonb, days jsonb)
					LOOP
						INSERT INTO invoice_lines (tenant_id, invoice_id,
							position, kind, description, breakdown,
							quantity, unit_price, amount, tax_rate_id,
							tax_rate, contract_line_id, raw_minutes,
							rounded_minutes)
						VALUES (app_tenant(), inv_id, ln.pos, ln.kind,
							left(ln.description, 500), ln.breakdown,
							ln.quantity, ln.unit_price, ln.amount,
							ln.tax_rate_id, ln.tax_rate,
							ln.contract_line_id, ln.raw_minutes,
							ln.rounded_minutes)
						RETURNING id INTO v_line;
						IF ln.days IS NOT NULL THEN
							INSERT INTO invoice_line_days (tenant_id, line_id, day, count)
							SELECT app_tenant(), v_line, (d ->> 0)::date, (d ->> 1)::int
							FROM jsonb_array_elements(ln.days) d;
						END IF;
						IF ln.entries IS NOT NULL THEN
							INSERT INTO invoice_line_entries (tenant_id, line_id,
								entry_id, raw_minutes, billed_minutes)
							SELECT app_tenant(), v_line, (e ->> 0)::bigint,
								(e ->> 1)::int, (e ->> 2)::int
							FROM jsonb_array_elements(ln.entries) e;
							-- By key (an array, not a join the planner
							-- may turn into a scan of every entry).
							SELECT array_agg((e ->> 0)::bigint ORDER BY n),
								array_agg((e ->> 1)::int ORDER BY n)
							INTO v_ids, v_mins
							FROM jsonb_array_elements(ln.entries) WITH ORDINALITY AS x (e, n);
							UPDATE time_entries t SET invoice_line_id = v_line
							WHERE t.tenant_id = app_tenant()
							  AND t.id = ANY (v_ids)
							  AND t.minutes = v_mins[array_position(v_ids, t.id)]
							  AND t.invoice_line_id IS NULL;
							GET DIAGNOSTICS nlinked = ROW_COUNT;
							IF nlinked <> jsonb_array_length(ln.entries) THEN
								RAISE EXCEPTION 'time entries of "%" changed or were billed meanwhile',
									ln.description
									USING ERRCODE = 'serialization_failure';
							END IF;
						END IF;
					END LOOP;
					UPDATE billing_periods SET state = 'billed', invoice_id = inv_id
					WHERE tenant_id = app_tenant() AND id = per_id;
					INSERT INTO audit_log (tenant_id, actor, action, object_type,
						object_id, detail)
					VALUES (app_tenant(), 'system:billing-run', 'invoice.create',
						'invoice', inv_id, jsonb_build_object('contract_id', k.id,
						'period', p.starts_on, 'total', sub + v_tax));
				END IF;
			END IF;
			result := result || jsonb_build_object('contract_id', k.id,
				'contract', k.name, 'starts_on', p.starts_on,
				'covers', CASE WHEN isempty(p.covers) THEN NULL
					ELSE billing_range_text(p.covers) END,
				'usage', CASE WHEN p.usage IS NULL THEN NULL
					ELSE billing_range_text(p.usage) END,
				'invoice_id', inv_id, 'skipped', ls IS NULL,
				'lines', coalesce(ls, '[]'), 'subtotal', sub, 'tax', v_tax,
				'total', sub + v_tax, 'previous_total', prev_total,
				'changes', coalesce(changes, '[]'));
			carry := coalesce(blk.block_carry, 0);
			IF ls IS NOT NULL THEN
				prev_total := sub + v_tax;
				prev_lines := ls;
			END IF;
		END LOOP;
	END LOOP;
	RETURN result;
END
$$;

-- A run's result as text for people (the dry run prints it): each
-- period's lines with their breakdown, the totals, and what changed since
-- the contract's previous invoice.
CREATE FUNCTION billing_report(p_client_name text, p_result jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT string_agg(
		p_client_name || ': ' || (e ->> 'contract') || ', period from '
		|| (e ->> 'starts_on')
		|| coalesce(', covers ' || (e ->> 'covers'), '')
		|| coalesce(', usage ' || (e ->> 'usage'), '')
		|| CASE WHEN (e ->> 'skipped')::boolean THEN E'\n  nothing to bill' ELSE
		coalesce((SELECT string_agg(E'\n  ' || (l ->> 'description') || ': '
				|| trim_scale((l ->> 'quantity')::numeric) || ' × '
				|| (l ->> 'unit_price') || ' = '
				|| ((l ->> 'amount')::numeric(14, 2))::text
				|| coalesce(' [' || nullif(l ->> 'breakdown', '') || ']', ''),
				'' ORDER BY (l ->> 'pos')::int)
			FROM jsonb_array_elements(e -> 'lines') l), '')
		|| E'\n  subtotal ' || ((e ->> 'subtotal')::numeric(14, 2))::text
		|| ', tax ' || ((e ->> 'tax')::numeric(14, 2))::text
		|| ', total ' || ((e ->> 'total')::numeric(14, 2))::text
		|| CASE WHEN e ->> 'previous_total' IS NULL THEN ' (first invoice)'
			ELSE ' (previous ' || ((e ->> 'previous_total')::numeric(14, 2))::text
			|| ', change ' || to_char((e ->> 'total')::numeric
				- (e ->> 'previous_total')::numeric, 'FMS999999999990.00') || ')' END
		|| coalesce((SELECT string_agg(E'\n  changed ' || (c ->> 'line') || ': '
				|| ((c ->> 'before')::numeric(14, 2))::text || ' -> '
				|| ((c ->> 'after')::numeric(14, 2))::text
				|| ' (' || (c ->> 'why') || ')', '')
			FROM jsonb_array_elements(e -> 'changes') c), '') END,
		E'\n' ORDER BY (e ->> 'starts_on'))
	FROM jsonb_array_elements(p_result) e
$$;

-- What each contract of client p_client in force today would bill for
-- its current cycle so far (month-to-date): the same billing_lines(),
-- with the cycle up to today as usage and no fixed lines. Writes nothing.
CREATE FUNCTION billing_preview(p_client bigint)
RETURNS TABLE (contract_id bigint, contract text, usage text, pos int,
	description text, breakdown text, quantity text, unit_price text,
	amount text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
	k contracts;
	v_today date;
	c daterange;
	carry int;
BEGIN
	SELECT (now() AT TIME ZONE t.time_zone)::date INTO v_today
	FROM tenants t WHERE t.id = app_tenant();
	FOR k IN SELECT * FROM contracts x WHERE x.tenant_id = app_tenant()
		AND x.client_id = p_client AND x.state <> 'voided'
		AND x.starts_on <= v_today AND (x.ends_on IS NULL OR x.ends_on >= v_today)
		ORDER BY x.starts_on, x.id
	LOOP
		c := contract_cycle(k.starts_on, k.ends_on, k.billing_frequency,
			k.billing_day, v_today);
		SELECT b.block_carry_minutes INTO carry FROM billing_periods b
		WHERE b.tenant_id = app_tenant() AND b.contract_id = k.id
		  AND b.state <> 'pending' ORDER BY b.starts_on DESC LIMIT 1;
		RETURN QUERY SELECT k.id, k.name,
			billing_range_text(daterange(lower(c), v_today + 1)),
			l.pos, l.description, l.breakdown, trim_scale(l.quantity)::text,
			l.unit_price::text, l.amount::numeric(14, 2)::text
		FROM billing_lines(k.id, 'empty', daterange(lower(c), v_today + 1),
			coalesce(carry, 0)) l ORDER BY l.pos;
	END LOOP;
END
$$;

-- The clients of the bound tenant with a period due by p_as_of (NULL:
-- today in the tenant's zone), optionally just p_client.
CREATE FUNCTION billing_due_clients(p_as_of date, p_client bigint)
RETURNS SETOF bigint
LANGUAGE sql STABLE AS $$
	SELECT DISTINCT k.client_id FROM contracts k
	WHERE k.tenant_id = app_tenant() AND k.state <> 'voided'
	  AND (p_client IS NULL OR k.client_id = p_client)
	  AND EXISTS (SELECT 1 FROM billing_due(k.id, coalesce(p_as_of,
		(SELECT (now() AT TIME ZONE t.time_zone)::date FROM tenants t
		 WHERE t.id = app_tenant()))))
	ORDER BY 1
$$;

-- billing-run visits every tenant with its own binding; the list of
-- tenant ids is all it may see across tenants.
CREATE FUNCTION billing_tenants() RETURNS SETOF bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
	SELECT id FROM tenants ORDER BY id
$$;
REVOKE ALL ON FUNCTION billing_tenants() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION billing_tenants() TO tallydesk_app;

-- The next gapless number of a kind for the bound tenant.
CREATE FUNCTION billing_next_number(p_kind text) RETURNS bigint
LANGUAGE sql AS $$
	INSERT INTO billing_numbers AS b (tenant_id, kind, last)
	VALUES (app_tenant(), p_kind, 1)
	ON CONFLICT (tenant_id, kind) DO UPDATE SET last = b.last + 1
	RETURNING last
$$;

-- Issues draft p_invoice on day p_on: the tenant's next number with its
-- prefix, the due date from the client's payment terms. NULL when it is
-- not a draft with lines (nothing changed).
CREATE FUNCTION billing_issue(p_invoice bigint, p_on date, p_user bigint)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	v invoices;
	v_number text;
BEGIN
	SELECT * INTO v FROM invoices
	WHERE tenant_id = app_tenant() AND id = p_invoice FOR UPDATE;
	IF NOT FOUND OR v.status <> 'draft' OR NOT EXISTS (SELECT 1 FROM invoice_lines l
		WHERE l.tenant_id = app_tenant() AND l.invoice_id = p_invoice) THEN
		RETURN NULL;
	END IF;
	SELECT t.invoice_prefix || lpad(billing_next_number('invoice')::text, 4, '0')
	INTO v_number FROM tenants t WHERE t.id = app_tenant();
	UPDATE invoices i SET status = 'issued', number = v_number, issued_on = p_on,
		due_on = p_on + c.payment_terms_days, issued_by = p_user
	FROM clients c
	WHERE i.tenant_id = app_tenant() AND i.id = p_invoice
	  AND c.tenant_id = i.tenant_id AND c.id = i.client_id;
	RETURN v_number;
END
$$;

-- A credit note of p_amount (NULL: all that is not credited yet) against
-- issued invoice p_invoice; fully credited, the invoice is void. Returns
-- the credit note's id; NULL when the invoice is not issued or the amount
-- is not in (0, total - credited].
CREATE FUNCTION billing_credit(p_invoice bigint, p_amount numeric,
	p_reason text, p_on date, p_user bigint)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	v invoices;
	left_ numeric;
	amt numeric;
	v_id bigint;
BEGIN
	SELECT * INTO v FROM invoices
	WHERE tenant_id = app_tenant() AND id = p_invoice FOR UPDATE;
	IF NOT FOUND OR v.status NOT IN ('issued', 'sent') THEN
		RETURN NULL;
	END IF;
	SELECT t.total - t.credited INTO left_ FROM invoice_totals t
	WHERE t.tenant_id = app_tenant() AND t.invoice_id = p_invoice;
	amt := coalesce(p_amount, left_);
	IF amt <= 0 OR amt > left_ THEN
		RETURN NULL;
	END IF;
	INSERT INTO credit_notes (tenant_id, invoice_id, number, amount, reason,
		issued_on, created_by)
	VALUES (app_tenant(), p_invoice,
		'CN-' || lpad(billing_next_number('credit_note')::text, 4, '0'),
		amt, p_reason, p_on, p_user)
	RETURNING id INTO v_id;
	IF amt = left_ THEN
		UPDATE invoices SET status = 'void'
		WHERE tenant_id = app_tenant() AND id = p_invoice;
	END IF;
	RETURN v_id;
END
$$;

-- Deletes draft p_invoice: its time entries are released and its billing
-- period goes back to pending (the next run bills it again). False when
-- it is not a draft.
CREATE FUNCTION billing_delete_draft(p_invoice bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM 1 FROM invoices WHERE tenant_id = app_tenant() AND id = p_invoice
		AND status = 'draft' FOR UPDATE;
	IF NOT FOUND THEN
		RETURN false;
	END IF;
	PERFORM set_config('app.billing_release', 'on', true);
	UPDATE time_entries e SET invoice_line_id = NULL
	FROM invoice_lines l
	WHERE e.tenant_id = app_tenant() AND e.invoice_line_id = l.id
	  AND l.tenant_id = app_tenant() AND l.invoice_id = p_invoice;
	PERFORM set_config('app.billing_release', '', true);
	UPDATE billing_periods SET state = 'pending', invoice_id = NULL
	WHERE tenant_id = app_tenant() AND invoice_id = p_invoice;
	DELETE FROM invoices WHERE tenant_id = app_tenant() AND id = p_invoice;
	RETURN true;
END
$$;

-- Voiding a contract (it never existed): each issued invoice gets a credit
-- note for what is not credited yet, drafts are deleted with their period
-- rows, and every time entry they billed is released for rebilling.
CREATE FUNCTION billing_contract_voided() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	v record;
BEGIN
	IF NOT EXISTS (SELECT 1 FROM invoices i WHERE i.tenant_id = NEW.tenant_id
		AND i.contract_id = NEW.id) THEN
		RETURN NEW;  -- nothing billed: nothing to reverse
	END IF;
	FOR v IN SELECT i.id, i.status FROM invoices i
		WHERE i.tenant_id = NEW.tenant_id AND i.contract_id = NEW.id
		ORDER BY i.id
	LOOP
		IF v.status IN ('issued', 'sent') THEN
			PERFORM billing_credit(v.id, NULL, 'contract voided: '
				|| left(NEW.void_reason, 900), (now() AT TIME ZONE
				(SELECT time_zone FROM tenants WHERE id = NEW.tenant_id))::date,
				NEW.voided_by);
		END IF;
	END LOOP;
	PERFORM set_config('app.billing_release', 'on', true);
	UPDATE time_entries e SET invoice_line_id = NULL
	FROM invoice_lines l, invoices i
	WHERE e.tenant_id = NEW.tenant_id AND e.invoice_line_id = l.id
	  AND l.tenant_id = NEW.tenant_id AND i.tenant_id = NEW.tenant_id
	  AND l.invoice_id = i.id AND i.contract_id = NEW.id;
	PERFORM set_config('app.billing_release', '', true);
	DELETE FROM billing_periods b USING invoices i
	WHERE b.tenant_id = NEW.tenant_id AND b.contract_id = NEW.id
	  AND i.tenant_id = NEW.tenant_id AND i.id = b.invoice_id AND i.status = 'draft';
	DELETE FROM invoices i
	WHERE i.tenant_id = NEW.tenant_id AND i.contract_id = NEW.id
	  AND i.status = 'draft';
	INSERT INTO audit_log (tenant_id, actor, actor_user_id, action, object_type,
		object_id, detail)
	VALUES (NEW.tenant_id, 'system:billing', NEW.voided_by, 'contract.credit',
		'contract', NEW.id, '{}');
	RETURN NEW;
END
$$;
CREATE TRIGGER billing_contract_voided AFTER UPDATE OF state ON contracts
	FOR EACH ROW WHEN (NEW.state = 'voided' AND OLD.state <> 'voided')
	EXECUTE FUNCTION billing_contract_voided();

DO $$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['billing_numbers', 'invoices', 'billing_periods',
		'invoice_lines', 'invoice_line_days', 'invoice_line_entries',
		'credit_notes', 'payments']
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
GRANT SELECT ON invoice_totals TO tallydesk_app;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO tallydesk_app;
