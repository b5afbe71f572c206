-- 0017_portal.sql: the client portal — contacts sign in with a mailed
-- single-use link, get a session of their own (not a staff session), and
-- see their client's tickets. Branding: the tenant's logo, colour and
-- support email/phone (0002) plus a welcome text here; host names map a
-- tenant's own portal address (support.msp.example) to the tenant.

-- A "client admin" sees every ticket of the client, not only their own.
ALTER TABLE contacts
	ADD COLUMN portal_admin boolean NOT NULL DEFAULT false,
	ADD COLUMN portal_last_login_at timestamptz;

-- One row per tenant that has changed the defaults.
CREATE TABLE portal_settings (
	tenant_id bigint PRIMARY KEY REFERENCES tenants (id),
	welcome_text text NOT NULL DEFAULT '' CHECK (length(welcome_text) <= 2000),
	updated_at timestamptz NOT NULL DEFAULT now()
);

-- Host names that serve a tenant's portal at '/'. A host belongs to one
-- tenant across the whole install.
CREATE TABLE tenant_hosts (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	id bigint GENERATED ALWAYS AS IDENTITY,
	host text NOT NULL UNIQUE
		CHECK (host ~ '^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$'
			AND length(host) <= 253),
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (tenant_id, id)
);

-- A mailed login link: only the SHA-256 of its token is kept; it works
-- once, for 15 minutes, for the contact it was made for.
CREATE TABLE portal_links (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	id bigint GENERATED ALWAYS AS IDENTITY,
	contact_id bigint NOT NULL,
	token_hash bytea NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
	requested_by bigint, -- a staff user who sent it on the contact's behalf
	created_at timestamptz NOT NULL DEFAULT now(),
	expires_at timestamptz NOT NULL,
	used_at timestamptz,
	PRIMARY KEY (tenant_id, id),
	FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id) ON DELETE CASCADE,
	FOREIGN KEY (tenant_id, requested_by) REFERENCES users (tenant_id, id) ON DELETE SET NULL (requested_by)
);
CREATE INDEX portal_links_contact ON portal_links (tenant_id, contact_id);

-- A signed-in contact. The cookie is "<tenant>.<token>" like a staff
-- session's, so the tenant is known before the look-up (row-level
-- security needs it); only the token's SHA-256 is stored.
CREATE TABLE portal_sessions (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	id bigint GENERATED ALWAYS AS IDENTITY,
	contact_id bigint NOT NULL,
	token_hash bytea NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
	csrf_token text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	last_seen_at timestamptz NOT NULL DEFAULT now(),
	expires_at timestamptz NOT NULL,
	ip text NOT NULL DEFAULT '',
	user_agent text NOT NULL DEFAULT '',
	PRIMARY KEY (tenant_id, id),
	FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX portal_sessions_contact ON portal_sessions (tenant_id, contact_id);

-- The slug of the tenant a Host header names: the one look across
-- tenants the portal needs before it knows the tenant (NULL: not a
-- portal host). The request then binds to the tenant by its slug.
CREATE FUNCTION portal_host_slug(p_host text) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
	SELECT t.slug FROM tenant_hosts h JOIN tenants t ON t.id = h.tenant_id
	WHERE h.host = lower(p_host)
$$;
REVOKE ALL ON FUNCTION portal_host_slug(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION portal_host_slug(text) TO tallydesk_app;

DO $$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['portal_settings', 'tenant_hosts', 'portal_links',
		'portal_sessions']
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
