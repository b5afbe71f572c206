-- 0026_billing_speed.sql: billing-run's write of a client, leaner (issue
-- 8's benchmark). Replaces 0018's billing_write_client, same signature,
-- same result, same rules: per period one statement instead of two (the
-- invoice's id is drawn before the period row, so the row is inserted
-- billed, not inserted then updated), and the time entries linked
-- without the B-tree's bottom-up deletion pass (see the statement).
-- time_entries_unbilled covers what the engine reads. The batch itself
-- runs in two worker processes (app/billing.c, --jobs).

-- The engine reads each contract's unbilled time through this index
-- (0015's, same key and predicate): with the columns it needs included,
-- from the index alone (an index-only scan, where the visibility map
-- allows) instead of one heap page per entry. The dry run of the bench:
-- 19.2 s -> 16.2 s in one process. The time module's queries of unbilled
-- entries use it as before.
DROP INDEX time_entries_unbilled;
CREATE INDEX time_entries_unbilled ON time_entries (tenant_id, client_id, started_at)
	INCLUDE (id, ticket_id, user_id, minutes)
	WHERE invoice_line_id IS NULL AND kind = 'billable' AND status = 'committed';

-- The invoice id drawn before the invoice row: the app may draw from
-- the identity's sequence.
DO $$
BEGIN
	EXECUTE format('GRANT USAGE ON SEQUENCE %s TO tallydesk_app',
		pg_get_serial_sequence('invoices', 'id'));
END
$$;

-- Writes (unless p_dry) what billing_stage staged for client p_client: per
-- period, one statement: the period row under its unique key (a period
-- billed meanwhile, by a rerun or a second host, is left alone), the
-- draft invoice with its lines, their per-day counts and time entries
-- (each linked only from NULL and only as read, else the client rolls
-- back). Returns what it did, period by period; a dry run's also with
-- the lines and what changed since the contract's previous invoice (for
-- its report).
CREATE OR REPLACE FUNCTION billing_write_client(p_client bigint, p_dry boolean)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
	p record;
	inv_id bigint;
	nper int;
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
			-- One statement: the period row under its unique key (a
			-- period billed meanwhile is left alone, and then nothing
			-- else happens), its invoice (its id drawn first, so that
			-- the period row names it from the start), the lines, their
			-- sources, the audit row, and the entries linked (only from
			-- NULL and only as read, else the client rolls back).
			inv_id := CASE WHEN p.nlines > 0
				THEN nextval(pg_get_serial_sequence('invoices', 'id')) END;
			WITH per AS (
				INSERT INTO billing_periods AS b (tenant_id, contract_id,
					starts_on, covers, usage, state, invoice_id,
					block_available_minutes, block_used_minutes,
					block_carry_minutes)
				VALUES (app_tenant(), p.contract_id, p.starts_on, p.covers,
					p.usage, CASE WHEN inv_id IS NULL THEN 'skipped'
						ELSE 'billed' END, inv_id,
					p.block_available, p.block_used,
					coalesce(p.block_carry, 0))
				ON CONFLICT (tenant_id, contract_id, starts_on) DO UPDATE
					SET state = EXCLUDED.state,
					    invoice_id = EXCLUDED.invoice_id,
					    block_available_minutes = EXCLUDED.block_available_minutes,
					    block_used_minutes = EXCLUDED.block_used_minutes,
					    block_carry_minutes = EXCLUDED.block_carry_minutes
					WHERE b.state = 'pending'
				RETURNING b.id
			), inv AS (
				INSERT INTO invoices (id, tenant_id, client_id, contract_id,
					currency, period_from, period_to)
				OVERRIDING SYSTEM VALUE
				SELECT inv_id, app_tenant(), p_client, p.contract_id,
					p.currency, coalesce(lower(p.usage), lower(p.covers)),
					CASE WHEN isempty(p.covers) THEN upper(p.usage)
						ELSE upper(p.covers) END - 1
				FROM per WHERE inv_id IS NOT NULL
				RETURNING id
			), ins AS (
				INSERT INTO invoice_lines (tenant_id, invoice_id, position,
					kind, description, breakdown, quantity, unit_price,
					amount, tax_rate_id, tax_rate, contract_line_id,
					raw_minutes, rounded_minutes)
				SELECT app_tenant(), inv.id, l.pos, l.kind, l.description,
					l.breakdown, l.quantity, l.unit_price, l.amount,
					l.tax_rate_id, l.tax_rate, l.contract_line_id,
					l.raw_minutes, l.rounded_minutes
				FROM inv JOIN billing_stage_lines l ON l.period = p.id
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
			), au AS (
				INSERT INTO audit_log (tenant_id, actor, action, object_type,
					object_id, detail)
				SELECT app_tenant(), 'system:billing-run', 'invoice.create',
					'invoice', inv.id, jsonb_build_object('contract_id',
					p.contract_id, 'period', p.starts_on,
					'total', p.subtotal + p.tax)
				FROM inv
			), upd AS (
				-- (tenant_id named too: an UPDATE that names a column of
				-- every index of time_entries makes PostgreSQL skip the
				-- "bottom-up" pass it would otherwise run on each full
				-- leaf page of those five indexes, reading heap pages to
				-- find old versions to drop: 15 % of a run's CPU. The
				-- value is the same, so nothing else changes; vacuum drops
				-- the old versions' index entries instead.)
				UPDATE time_entries t SET invoice_line_id = x.line_id,
					tenant_id = t.tenant_id
				FROM (SELECT m.line_id, u.id, u.raw FROM m
				      CROSS JOIN LATERAL unnest(m.entry_ids, m.entry_raw) u (id, raw)) x
				WHERE t.tenant_id = app_tenant() AND t.id = x.id
				  AND t.minutes = x.raw AND t.invoice_line_id IS NULL
				RETURNING 1
			)
			SELECT (SELECT count(*) FROM per), (SELECT count(*) FROM upd)
			INTO nper, nlinked;
			IF nper = 0 THEN
				CONTINUE;  -- billed meanwhile
			END IF;
			IF inv_id IS NOT NULL AND nlinked <> p.nentries THEN
				RAISE EXCEPTION 'time entries of contract % changed or were billed meanwhile',
					p.contract_id USING ERRCODE = 'serialization_failure';
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
