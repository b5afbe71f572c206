-- 0019_invoice_extras.sql: stored bytes and mail attachments (an issued
-- invoice's PDF goes out with its mail), the tenant's invoice details
-- (address, tax and company numbers, how to pay), editing the lines of a
-- draft (issued lines never change), and credit notes split by tax rate.

-- Bytes kept in the database, for whatever needs to keep a file: an
-- issued invoice's PDF, a mail's attachments.
CREATE TABLE stored_files (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	id bigint GENERATED ALWAYS AS IDENTITY,
	content_type text NOT NULL
		CHECK (content_type ~ '^[a-z]+/[a-z0-9.+-]+$'),
	bytes bytea NOT NULL CHECK (octet_length(bytes) <= 20971520),
	sha256 bytea GENERATED ALWAYS AS (sha256(bytes)) STORED,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (tenant_id, id)
);

-- The PDF as issued: drawn once when the invoice is issued (or first
-- sent), then the same file every time.
ALTER TABLE invoices ADD COLUMN pdf_file_id bigint,
	ADD FOREIGN KEY (tenant_id, pdf_file_id) REFERENCES stored_files (tenant_id, id);

-- A mail's attachments, in order, each a stored file under a name.
CREATE TABLE outbox_attachments (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	id bigint GENERATED ALWAYS AS IDENTITY,
	outbox_id bigint NOT NULL,
	position int NOT NULL CHECK (position > 0),
	filename text NOT NULL
		CHECK (filename ~ '^[A-Za-z0-9][A-Za-z0-9._ -]{0,119}$'),
	file_id bigint NOT NULL,
	PRIMARY KEY (tenant_id, id),
	UNIQUE (tenant_id, outbox_id, position),
	FOREIGN KEY (tenant_id, outbox_id) REFERENCES outbox (tenant_id, id)
		ON DELETE CASCADE,
	FOREIGN KEY (tenant_id, file_id) REFERENCES stored_files (tenant_id, id)
);

-- What the tenant's invoices say about the tenant (the name, logo,
-- colour, support email and phone are the workspace's own).
CREATE TABLE invoice_settings (
	tenant_id bigint PRIMARY KEY REFERENCES tenants (id),
	business_address text NOT NULL DEFAULT ''
		CHECK (length(business_address) <= 500),
	tax_number text NOT NULL DEFAULT '' CHECK (length(tax_number) <= 50),
	company_number text NOT NULL DEFAULT ''
		CHECK (length(company_number) <= 50),
	payment_details text NOT NULL DEFAULT ''
		CHECK (length(payment_details) <= 1000),
	footer text NOT NULL DEFAULT '' CHECK (length(footer) <= 500),
	updated_at timestamptz NOT NULL DEFAULT now()
);

-- A line someone changed by hand on the draft (the page says so).
ALTER TABLE invoice_lines ADD COLUMN edited boolean NOT NULL DEFAULT false;

-- Lines change only while their invoice is a draft. Inserts are the
-- engine's and the draft page's (both check the status); deleting a
-- draft removes its lines by cascade, after the invoice row is gone.
CREATE FUNCTION invoice_lines_frozen() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	st text;
BEGIN
	SELECT status INTO st FROM invoices
	WHERE tenant_id = OLD.tenant_id AND id = OLD.invoice_id;
	IF FOUND AND st <> 'draft' THEN
		RAISE EXCEPTION 'invoice % is issued: its lines never change',
			OLD.invoice_id USING ERRCODE = 'check_violation';
	END IF;
	RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$$;
CREATE TRIGGER invoice_lines_frozen BEFORE UPDATE OR DELETE ON invoice_lines
	FOR EACH ROW EXECUTE FUNCTION invoice_lines_frozen();

-- Removes line p_line of draft p_invoice: the time entries it billed are
-- released (the next run bills them again, once). Returns its
-- description; NULL when there is no such line or the invoice is not a
-- draft.
CREATE FUNCTION billing_delete_line(p_invoice bigint, p_line bigint)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	v_desc text;
BEGIN
	PERFORM 1 FROM invoices WHERE tenant_id = app_tenant() AND id = p_invoice
		AND status = 'draft' FOR UPDATE;
	IF NOT FOUND THEN
		RETURN NULL;
	END IF;
	PERFORM set_config('app.billing_release', 'on', true);
	UPDATE time_entries e SET invoice_line_id = NULL
	FROM invoice_line_entries x JOIN invoice_lines l
		ON l.tenant_id = x.tenant_id AND l.id = x.line_id
	WHERE x.tenant_id = app_tenant() AND x.line_id = p_line
	  AND l.invoice_id = p_invoice
	  AND e.tenant_id = x.tenant_id AND e.id = x.entry_id
	  AND e.invoice_line_id = p_line;
	PERFORM set_config('app.billing_release', '', true);
	DELETE FROM invoice_lines WHERE tenant_id = app_tenant()
		AND invoice_id = p_invoice AND id = p_line
	RETURNING description INTO v_desc;
	RETURN v_desc;
END
$$;

-- A credit note per tax rate: the net and the tax it gives back at that
-- rate (amount on credit_notes = the sum of net + tax of its lines).
CREATE TABLE credit_note_lines (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	id bigint GENERATED ALWAYS AS IDENTITY,
	credit_note_id bigint NOT NULL,
	tax_rate numeric(7, 4) NOT NULL,
	net numeric(14, 2) NOT NULL,
	tax numeric(14, 2) NOT NULL,
	description text NOT NULL DEFAULT '' CHECK (length(description) <= 2000),
	PRIMARY KEY (tenant_id, id),
	UNIQUE (tenant_id, credit_note_id, tax_rate),
	FOREIGN KEY (tenant_id, credit_note_id) REFERENCES credit_notes (tenant_id, id)
		ON DELETE CASCADE
);

-- What is left to credit on p_invoice per tax rate: the invoice's net and
-- tax at that rate (tax on the rate's sum, as invoice_totals) less what
-- credit notes gave back at it.
CREATE FUNCTION billing_credit_left(p_invoice bigint)
RETURNS TABLE (rate numeric, net numeric, tax numeric)
LANGUAGE sql STABLE AS $$
	SELECT r.rate, r.net - coalesce(c.net, 0), r.tax - coalesce(c.tax, 0)
	FROM (SELECT l.tax_rate AS rate, sum(l.amount) AS net,
		round(sum(l.amount) * l.tax_rate / 100, 2) AS tax
	      FROM invoice_lines l
	      WHERE l.tenant_id = app_tenant() AND l.invoice_id = p_invoice
	      GROUP BY l.tax_rate) r
	LEFT JOIN (SELECT cl.tax_rate AS rate, sum(cl.net) AS net, sum(cl.tax) AS tax
	      FROM credit_note_lines cl JOIN credit_notes n
	        ON n.tenant_id = cl.tenant_id AND n.id = cl.credit_note_id
	      WHERE n.tenant_id = app_tenant() AND n.invoice_id = p_invoice
	      GROUP BY cl.tax_rate) c ON c.rate = r.rate
	ORDER BY r.rate DESC
$$;

-- A gross amount (tax included) spread over the rates in proportion to
-- what is left at each, to the penny: the last rate takes the remainder;
-- within a rate, net = gross / (1 + rate), tax = gross - net; a rate
-- credited to the end gives back exactly its net and tax left. A jsonb
-- array of {rate, net, tax}.
CREATE FUNCTION billing_credit_spread(p_invoice bigint, p_amount numeric)
RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
	v record;
	all_left numeric;
	done_ numeric := 0;
	g numeric;
	n numeric;
	k int := 0;
	cnt int;
	parts jsonb := '[]';
BEGIN
	SELECT sum(l.net + l.tax), count(*) INTO all_left, cnt
	FROM billing_credit_left(p_invoice) l WHERE l.net + l.tax <> 0;
	IF all_left IS NULL OR all_left <= 0 THEN
		RETURN parts;
	END IF;
	FOR v IN SELECT * FROM billing_credit_left(p_invoice) l
		WHERE l.net + l.tax <> 0 ORDER BY l.rate DESC
	LOOP
		k := k + 1;
		IF k = cnt THEN
			g := p_amount - done_;
		ELSE
			g := round(p_amount * (v.net + v.tax) / all_left, 2);
		END IF;
		done_ := done_ + g;
		IF g = v.net + v.tax THEN
			parts := parts || jsonb_build_object('rate', v.rate, 'net', v.net,
				'tax', v.tax);
		ELSIF g <> 0 THEN
			n := round(g * 100 / (100 + v.rate), 2);
			parts := parts || jsonb_build_object('rate', v.rate, 'net', n,
				'tax', g - n);
		END IF;
	END LOOP;
	RETURN parts;
END
$$;

-- Writes a credit note of p_parts ({rate, net, tax, description}) against
-- issued p_invoice. Each part is all that is left at its rate, or within
-- 0 .. what is left of net and of tax. Fully credited, the invoice is
-- void. The credit note's id; NULL when the invoice is not issued, a rate
-- is not on it, a part is out of range or the note would be empty.
CREATE FUNCTION billing_credit_write(p_invoice bigint, p_parts jsonb,
	p_reason text, p_on date, p_user bigint)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	v invoices;
	p record;
	lft record;
	amt numeric := 0;
	left_all numeric;
	v_id bigint;
BEGIN
	SELECT * INTO v FROM invoices
	WHERE tenant_id = app_tenant() AND id = p_invoice FOR UPDATE;
	IF NOT FOUND OR v.status NOT IN ('issued', 'sent') THEN
		RETURN NULL;
	END IF;
	FOR p IN SELECT (e ->> 'rate')::numeric AS rate, (e ->> 'net')::numeric AS net,
			(e ->> 'tax')::numeric AS tax
		FROM jsonb_array_elements(p_parts) e
	LOOP
		SELECT * INTO lft FROM billing_credit_left(p_invoice) l
		WHERE l.rate = p.rate;
		IF NOT FOUND OR p.net IS NULL OR p.tax IS NULL THEN
			RETURN NULL;
		END IF;
		IF NOT ((p.net = lft.net AND p.tax = lft.tax)
			OR (p.net BETWEEN 0 AND lft.net AND p.tax BETWEEN 0 AND lft.tax)) THEN
			RETURN NULL;
		END IF;
		amt := amt + p.net + p.tax;
	END LOOP;
	SELECT t.total - t.credited INTO left_all FROM invoice_totals t
	WHERE t.tenant_id = app_tenant() AND t.invoice_id = p_invoice;
	IF amt <= 0 OR amt > left_all THEN
		RETURN NULL;
	END IF;
	INSERT INTO credit_notes (tenant_id, invoice_id, number, amount, reason,
		issued_on, created_by)
	VALUES (app_tenant(), p_invoice,
		'CN-' || lpad(billing_next_number('credit_note')::text, 4, '0'),
		amt, p_reason, p_on, p_user)
	RETURNING id INTO v_id;
	INSERT INTO credit_note_lines (tenant_id, credit_note_id, tax_rate, net, tax,
		description)
	SELECT app_tenant(), v_id, (e ->> 'rate')::numeric, (e ->> 'net')::numeric,
		(e ->> 'tax')::numeric, coalesce(e ->> 'description', '')
	FROM jsonb_array_elements(p_parts) e
	WHERE (e ->> 'net')::numeric <> 0 OR (e ->> 'tax')::numeric <> 0;
	IF amt = left_all THEN
		UPDATE invoices SET status = 'void'
		WHERE tenant_id = app_tenant() AND id = p_invoice;
	END IF;
	RETURN v_id;
END
$$;

-- Net per rate ({rate, net, description}) to credit: the tax at each rate
-- is the net's tax rounded, or all the tax left when the net is all that
-- is left (so the notes add up to the invoice to the penny).
CREATE FUNCTION billing_credit_nets(p_invoice bigint, p_nets jsonb,
	p_reason text, p_on date, p_user bigint)
RETURNS bigint
LANGUAGE sql AS $$
	SELECT billing_credit_write(p_invoice, coalesce((
		SELECT jsonb_agg(jsonb_build_object('rate', x.rate, 'net', x.net,
			'tax', CASE WHEN x.net = l.net THEN l.tax
				ELSE least(round(x.net * x.rate / 100, 2), l.tax) END,
			'description', x.description))
		FROM (SELECT (e ->> 'rate')::numeric AS rate, (e ->> 'net')::numeric AS net,
			coalesce(e ->> 'description', '') AS description
		      FROM jsonb_array_elements(p_nets) e) x
		LEFT JOIN billing_credit_left(p_invoice) l ON l.rate = x.rate),
		'[]'), p_reason, p_on, p_user)
$$;

-- 0015's billing_credit (used by voiding a contract, and for a gross
-- amount) now writes its split by rate: NULL amount credits all that is
-- left at each rate; an amount is spread over the rates.
CREATE OR REPLACE FUNCTION billing_credit(p_invoice bigint, p_amount numeric,
	p_reason text, p_on date, p_user bigint)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	parts jsonb;
BEGIN
	PERFORM 1 FROM invoices WHERE tenant_id = app_tenant() AND id = p_invoice
		FOR UPDATE;
	IF p_amount IS NULL THEN
		SELECT coalesce(jsonb_agg(jsonb_build_object('rate', l.rate, 'net', l.net,
			'tax', l.tax)), '[]') INTO parts
		FROM billing_credit_left(p_invoice) l WHERE l.net <> 0 OR l.tax <> 0;
	ELSE
		parts := billing_credit_spread(p_invoice, p_amount);
	END IF;
	RETURN billing_credit_write(p_invoice, parts, p_reason, p_on, p_user);
END
$$;

-- Credit notes written before this migration: their amounts spread over
-- the rates the same way, oldest first.
DO $$
DECLARE
	n record;
BEGIN
	FOR n IN SELECT c.tenant_id, c.id, c.invoice_id, c.amount FROM credit_notes c
		ORDER BY c.tenant_id, c.id
	LOOP
		PERFORM set_config('app.tenant_id', n.tenant_id::text, true);
		INSERT INTO credit_note_lines (tenant_id, credit_note_id, tax_rate, net, tax)
		SELECT n.tenant_id, n.id, (e ->> 'rate')::numeric, (e ->> 'net')::numeric,
			(e ->> 'tax')::numeric
		FROM jsonb_array_elements(billing_credit_spread(n.invoice_id, n.amount)) e;
	END LOOP;
	PERFORM set_config('app.tenant_id', '', true);
END
$$;

DO $$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['stored_files', 'outbox_attachments',
		'invoice_settings', 'credit_note_lines']
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
