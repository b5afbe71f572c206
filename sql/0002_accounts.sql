-- 0002_accounts.sql: the security model. Sessions, invites, password
-- resets, API keys, login throttling, the outbox, a richer audit log, and
-- row-level security on every tenant table with the app connecting as a
-- role that owns nothing.

-- The role the application connects as. Created here when missing so a
-- fresh install works; in production the DBA may create it (with a
-- password) beforehand. It owns nothing and bypasses nothing.
DO $$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tallydesk_app') THEN
		CREATE ROLE tallydesk_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE
			NOBYPASSRLS;
	END IF;
END
$$;

-- The tenant a transaction works for ('' or unset: none).
CREATE FUNCTION app_tenant() RETURNS bigint
LANGUAGE sql STABLE AS $$
	SELECT nullif(current_setting('app.tenant_id', true), '')::bigint
$$;

ALTER TABLE tenants
	ADD COLUMN logo bytea CHECK (octet_length(logo) <= 524288),
	ADD COLUMN logo_type text CHECK (logo_type IN ('image/png', 'image/jpeg', 'image/svg+xml', 'image/webp')),
	ADD COLUMN brand_colour text NOT NULL DEFAULT '#3451c6'
		CHECK (brand_colour ~ '^#[0-9a-fA-F]{6}$'),
	ADD COLUMN support_email text NOT NULL DEFAULT ''
		CHECK (support_email = '' OR support_email ~ '^[^@\s]+@[^@\s]+$'),
	ADD COLUMN support_phone text NOT NULL DEFAULT '',
	ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();

CREATE TABLE tax_rates (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	id bigint GENERATED ALWAYS AS IDENTITY,
	name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
	rate numeric(7, 4) NOT NULL CHECK (rate >= 0 AND rate < 100),
	is_default boolean NOT NULL DEFAULT false,
	archived boolean NOT NULL DEFAULT false,
	PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX tax_rates_name_key ON tax_rates (tenant_id, lower(name));
CREATE UNIQUE INDEX tax_rates_default_key ON tax_rates (tenant_id) WHERE is_default;

ALTER TABLE users
	ADD COLUMN totp_secret bytea,
	ADD COLUMN totp_enabled boolean NOT NULL DEFAULT false,
	ADD COLUMN totp_last_step bigint NOT NULL DEFAULT 0,
	ADD COLUMN password_changed_at timestamptz NOT NULL DEFAULT now(),
	ADD COLUMN deactivated_at timestamptz,
	ADD COLUMN last_login_at timestamptz;

CREATE TABLE sessions (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	id bigint GENERATED ALWAYS AS IDENTITY,
	user_id bigint NOT NULL,
	token_hash bytea NOT NULL UNIQUE,
	csrf_token text NOT NULL,
	mfa_pending boolean NOT NULL DEFAULT false,
	created_at timestamptz NOT NULL DEFAULT now(),
	last_seen_at timestamptz NOT NULL DEFAULT now(),
	expires_at timestamptz NOT NULL,
	ip text NOT NULL DEFAULT '',
	user_agent text NOT NULL DEFAULT '',
	PRIMARY KEY (tenant_id, id),
	FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX sessions_user ON sessions (tenant_id, user_id);

CREATE TABLE invites (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	id bigint GENERATED ALWAYS AS IDENTITY,
	email text NOT NULL CHECK (email ~ '^[^@\s]+@[^@\s]+$'),
	role text NOT NULL CHECK (role IN ('admin', 'manager', 'technician')),
	token_hash bytea NOT NULL UNIQUE,
	link text NOT NULL,          -- shown to admins until mail sending exists
	created_by bigint,
	created_at timestamptz NOT NULL DEFAULT now(),
	expires_at timestamptz NOT NULL,
	used_at timestamptz,
	revoked_at timestamptz,
	PRIMARY KEY (tenant_id, id),
	FOREIGN KEY (tenant_id, created_by) REFERENCES users (tenant_id, id)
);

CREATE TABLE password_resets (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	id bigint GENERATED ALWAYS AS IDENTITY,
	user_id bigint NOT NULL,
	token_hash bytea NOT NULL UNIQUE,
	link text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	expires_at timestamptz NOT NULL,
	used_at timestamptz,
	PRIMARY KEY (tenant_id, id),
	FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE api_keys (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	id bigint GENERATED ALWAYS AS IDENTITY,
	name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
	role text NOT NULL CHECK (role IN ('admin', 'manager', 'technician')),
	prefix text NOT NULL,        -- the first characters, to recognise a key
	key_hash bytea NOT NULL UNIQUE,
	created_by bigint,
	created_at timestamptz NOT NULL DEFAULT now(),
	last_used_at timestamptz,
	revoked_at timestamptz,
	PRIMARY KEY (tenant_id, id),
	FOREIGN KEY (tenant_id, created_by) REFERENCES users (tenant_id, id)
);

-- Mail waiting to be sent, written in the same transaction as its cause.
CREATE TABLE outbox (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	id bigint GENERATED ALWAYS AS IDENTITY,
	kind text NOT NULL,
	to_addr text NOT NULL,
	subject text NOT NULL,
	body_text text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	sent_at timestamptz,
	attempts int NOT NULL DEFAULT 0,
	last_error text,
	PRIMARY KEY (tenant_id, id)
);
CREATE INDEX outbox_unsent ON outbox (created_at) WHERE sent_at IS NULL;

-- Failed logins, per account and per address. Not tenant data: an address
-- that attacks several tenants is throttled everywhere. No row-level
-- security; the app may only read and add rows, and delete old ones.
CREATE TABLE auth_failures (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	at timestamptz NOT NULL DEFAULT now(),
	scope text NOT NULL CHECK (scope IN ('account', 'ip')),
	key text NOT NULL
);
CREATE INDEX auth_failures_key ON auth_failures (scope, key, at);

ALTER TABLE audit_log
	ADD COLUMN actor_kind text NOT NULL DEFAULT 'system'
		CHECK (actor_kind IN ('user', 'apikey', 'system', 'portal')),
	ADD COLUMN actor_apikey_id bigint,
	ADD COLUMN before jsonb,
	ADD COLUMN after jsonb,
	ADD COLUMN request_id text NOT NULL DEFAULT '',
	ADD COLUMN ip text NOT NULL DEFAULT '';
CREATE INDEX audit_log_recent ON audit_log (tenant_id, at DESC, id DESC);
CREATE INDEX audit_log_action ON audit_log (tenant_id, action, id DESC);

-- Row-level security, forced, on every tenant table.
DO $$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['users', 'audit_log', 'tax_rates', 'sessions',
		'invites', 'password_resets', 'api_keys', 'outbox']
	LOOP
		EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
		EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
		EXECUTE format('CREATE POLICY tenant_isolation ON %I'
			' USING (tenant_id = app_tenant())'
			' WITH CHECK (tenant_id = app_tenant())', t);
	END LOOP;
END
$$;

-- A tenant sees itself; a login form may look one up by its slug.
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_self ON tenants
	USING (id = app_tenant())
	WITH CHECK (id = app_tenant());
CREATE POLICY tenant_by_slug ON tenants FOR SELECT
	USING (slug = nullif(current_setting('app.tenant_slug', true), ''));

GRANT USAGE ON SCHEMA public TO tallydesk_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON tenants, users, tax_rates, sessions,
	invites, password_resets, api_keys, outbox TO tallydesk_app;
GRANT SELECT, INSERT ON audit_log TO tallydesk_app;
GRANT SELECT, INSERT, DELETE ON auth_failures TO tallydesk_app;
GRANT SELECT ON schema_migrations TO tallydesk_app;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO tallydesk_app;
