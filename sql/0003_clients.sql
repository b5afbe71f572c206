-- 0003_clients.sql: clients, their domains and links, contacts, sites,
-- assets with a dated history (what the billing engine counts per day),
-- tenant-defined asset kinds, RMM enrollment tokens and CSV import batches.

CREATE TABLE clients (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	id bigint GENERATED ALWAYS AS IDENTITY,
	name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
	contact_email text NOT NULL DEFAULT '',
	phone text NOT NULL DEFAULT '',
	address text NOT NULL DEFAULT '',
	notes text NOT NULL DEFAULT '',
	tags text[] NOT NULL DEFAULT '{}',
	billing_contact_id bigint,
	payment_terms_days int NOT NULL DEFAULT 30 CHECK (payment_terms_days BETWEEN 0 AND 365),
	tax_number text NOT NULL DEFAULT '',
	currency char(3) CHECK (currency ~ '^[A-Z]{3}$'),  -- NULL: the tenant's
	archived_at timestamptz,
	merged_into bigint,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	search tsvector GENERATED ALWAYS AS (
		to_tsvector('simple', name || ' ' || contact_email || ' ' || notes)) STORED,
	PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX clients_name_key ON clients (tenant_id, lower(name))
	WHERE archived_at IS NULL AND merged_into IS NULL;
CREATE INDEX clients_list ON clients (tenant_id, lower(name), id);
CREATE INDEX clients_search ON clients USING gin (search);
CREATE INDEX clients_tags ON clients USING gin (tags);

-- Each domain belongs to one client in a tenant: it routes inbound mail.
CREATE TABLE client_domains (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	id bigint GENERATED ALWAYS AS IDENTITY,
	client_id bigint NOT NULL,
	domain text NOT NULL CHECK (domain ~ '^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$'),
	is_primary boolean NOT NULL DEFAULT false,
	PRIMARY KEY (tenant_id, id),
	UNIQUE (tenant_id, domain),
	FOREIGN KEY (tenant_id, client_id) REFERENCES clients (tenant_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX client_domains_primary ON client_domains (tenant_id, client_id) WHERE is_primary;

-- "Related" clients: a symmetric link stored once, lower id first.
CREATE TABLE client_links (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	client_a bigint NOT NULL,
	client_b bigint NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (tenant_id, client_a, client_b),
	CHECK (client_a < client_b),
	FOREIGN KEY (tenant_id, client_a) REFERENCES clients (tenant_id, id) ON DELETE CASCADE,
	FOREIGN KEY (tenant_id, client_b) REFERENCES clients (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE contacts (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	id bigint GENERATED ALWAYS AS IDENTITY,
	client_id bigint NOT NULL,
	name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
	email text NOT NULL DEFAULT '' CHECK (email = '' OR email ~ '^[^@\s]+@[^@\s]+$'),
	phone text NOT NULL DEFAULT '',
	job_title text NOT NULL DEFAULT '',
	is_billing boolean NOT NULL DEFAULT false,
	is_portal boolean NOT NULL DEFAULT false,
	is_technical boolean NOT NULL DEFAULT false,
	is_vip boolean NOT NULL DEFAULT false,
	portal_granted_at timestamptz,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (tenant_id, id),
	FOREIGN KEY (tenant_id, client_id) REFERENCES clients (tenant_id, id)
);
CREATE UNIQUE INDEX contacts_email_key ON contacts (tenant_id, client_id, lower(email))
	WHERE email <> '';
CREATE INDEX contacts_client ON contacts (tenant_id, client_id, lower(name));
ALTER TABLE clients ADD FOREIGN KEY (tenant_id, billing_contact_id)
	REFERENCES contacts (tenant_id, id) ON DELETE SET NULL (billing_contact_id);

CREATE TABLE sites (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	id bigint GENERATED ALWAYS AS IDENTITY,
	client_id bigint NOT NULL,
	name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
	address text NOT NULL DEFAULT '',
	PRIMARY KEY (tenant_id, id),
	FOREIGN KEY (tenant_id, client_id) REFERENCES clients (tenant_id, id)
);
CREATE UNIQUE INDEX sites_name_key ON sites (tenant_id, client_id, lower(name));

-- Kinds beyond the built-in ones (workstation, server, network, m365_user,
-- domain, other), per tenant.
CREATE TABLE asset_kinds (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	key text NOT NULL CHECK (key ~ '^[a-z0-9_]{1,40}$'),
	name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
	PRIMARY KEY (tenant_id, key)
);

CREATE TABLE assets (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	id bigint GENERATED ALWAYS AS IDENTITY,
	client_id bigint NOT NULL,
	site_id bigint,
	name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
	kind text NOT NULL CHECK (kind ~ '^[a-z0-9_]{1,40}$'),
	category text NOT NULL DEFAULT '' CHECK (length(category) <= 100),
	serial text NOT NULL DEFAULT '',
	os text NOT NULL DEFAULT '',
	notes text NOT NULL DEFAULT '',
	billable boolean NOT NULL DEFAULT true,
	archived_at timestamptz,
	external_id text CHECK (external_id IS NULL OR length(external_id) BETWEEN 1 AND 200),
	last_seen_at timestamptz,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (tenant_id, id),
	FOREIGN KEY (tenant_id, client_id) REFERENCES clients (tenant_id, id),
	FOREIGN KEY (tenant_id, site_id) REFERENCES sites (tenant_id, id) ON DELETE SET NULL (site_id)
);
-- An RMM's id for an asset is unique within the client it enrolled for.
CREATE UNIQUE INDEX assets_external_key ON assets (tenant_id, client_id, external_id)
	WHERE external_id IS NOT NULL;
CREATE INDEX assets_client ON assets (tenant_id, client_id, kind) WHERE archived_at IS NULL;

-- What billing counts: for each asset, from when to when it had which
-- client, kind and category, and whether it counted (billable and not
-- archived). Kept by a trigger; ranges never overlap per asset.
CREATE EXTENSION IF NOT EXISTS btree_gist;
CREATE TABLE asset_history (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	id bigint GENERATED ALWAYS AS IDENTITY,
	asset_id bigint NOT NULL,
	client_id bigint NOT NULL,
	kind text NOT NULL,
	category text NOT NULL,
	counts boolean NOT NULL,
	valid tstzrange NOT NULL,
	PRIMARY KEY (tenant_id, id),
	EXCLUDE USING gist (tenant_id WITH =, asset_id WITH =, valid WITH &&)
);
CREATE INDEX asset_history_client ON asset_history USING gist (tenant_id, client_id, valid);

CREATE FUNCTION asset_history_track() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	now_ts timestamptz := clock_timestamp();
BEGIN
	IF TG_OP = 'UPDATE' THEN
		IF NEW.client_id = OLD.client_id AND NEW.kind = OLD.kind
		   AND NEW.category = OLD.category AND NEW.billable = OLD.billable
		   AND (NEW.archived_at IS NULL) = (OLD.archived_at IS NULL) THEN
			RETURN NEW;
		END IF;
		UPDATE asset_history SET valid = tstzrange(lower(valid), now_ts)
		 WHERE tenant_id = NEW.tenant_id AND asset_id = NEW.id
		   AND upper_inf(valid);
		-- A change within the same instant replaces the open row.
		DELETE FROM asset_history WHERE tenant_id = NEW.tenant_id
		   AND asset_id = NEW.id AND isempty(valid);
	END IF;
	INSERT INTO asset_history (tenant_id, asset_id, client_id, kind, category,
		counts, valid)
	VALUES (NEW.tenant_id, NEW.id, NEW.client_id, NEW.kind, NEW.category,
		NEW.billable AND NEW.archived_at IS NULL, tstzrange(now_ts, NULL));
	RETURN NEW;
END
$$;
CREATE TRIGGER asset_history_track AFTER INSERT OR UPDATE ON assets
	FOR EACH ROW EXECUTE FUNCTION asset_history_track();

-- Billable assets per day in [from_day, to_day], counted as they stood at
-- the end of each day in time zone tz, filtered by kinds and categories
-- (NULL or empty array: any). The billing engine prorates from this.
CREATE FUNCTION asset_daily_counts(p_client bigint, from_day date, to_day date,
	tz text, kinds text[], categories text[])
RETURNS TABLE (day date, count bigint)
LANGUAGE sql STABLE AS $$
	SELECT d::date, count(h.id)
	FROM generate_series(from_day, to_day, interval '1 day') AS d
	LEFT JOIN asset_history h
	  ON h.tenant_id = app_tenant() AND h.client_id = p_client AND h.counts
	 AND h.valid @> (((d::date + 1)::timestamp AT TIME ZONE tz) - interval '1 microsecond')
	 AND (kinds IS NULL OR cardinality(kinds) = 0 OR h.kind = ANY (kinds))
	 AND (categories IS NULL OR cardinality(categories) = 0 OR h.category = ANY (categories))
	GROUP BY d ORDER BY d
$$;

-- An RMM agent's key to one client's assets.
CREATE TABLE enrollment_tokens (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	id bigint GENERATED ALWAYS AS IDENTITY,
	client_id bigint NOT NULL,
	name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
	prefix text NOT NULL,
	token_hash bytea NOT NULL UNIQUE,
	created_by bigint,
	created_at timestamptz NOT NULL DEFAULT now(),
	last_used_at timestamptz,
	revoked_at timestamptz,
	PRIMARY KEY (tenant_id, id),
	FOREIGN KEY (tenant_id, client_id) REFERENCES clients (tenant_id, id) ON DELETE CASCADE
);

-- A CSV upload between its preview and its commit.
CREATE TABLE import_batches (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	id bigint GENERATED ALWAYS AS IDENTITY,
	kind text NOT NULL CHECK (kind IN ('clients', 'contacts', 'assets')),
	filename text NOT NULL DEFAULT '',
	body text NOT NULL,
	rows int NOT NULL,
	created_by bigint,
	created_at timestamptz NOT NULL DEFAULT now(),
	committed_at timestamptz,
	PRIMARY KEY (tenant_id, id)
);

DO $$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['clients', 'client_domains', 'client_links',
		'contacts', 'sites', 'asset_kinds', 'assets', 'asset_history',
		'enrollment_tokens', 'import_batches']
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
