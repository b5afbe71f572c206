-- 0001_foundation.sql: tenants, users and the append-only audit log.
-- Every tenant table has tenant_id leading its primary, unique and foreign
-- keys, so one database hosts many MSPs and can be sharded by tenant later.

CREATE TABLE tenants (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	slug text NOT NULL UNIQUE
		CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
	name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
	currency char(3) NOT NULL DEFAULT 'GBP' CHECK (currency ~ '^[A-Z]{3}$'),
	time_zone text NOT NULL DEFAULT 'Europe/London',
	locale text NOT NULL DEFAULT 'en-GB',
	invoice_prefix text NOT NULL DEFAULT 'INV-',
	created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	id bigint GENERATED ALWAYS AS IDENTITY,
	email text NOT NULL CHECK (email ~ '^[^@\s]+@[^@\s]+$'),
	name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
	role text NOT NULL CHECK (role IN ('admin', 'manager', 'technician')),
	password_hash text,
	active boolean NOT NULL DEFAULT true,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX users_email_key ON users (tenant_id, lower(email));

CREATE TABLE audit_log (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	id bigint GENERATED ALWAYS AS IDENTITY,
	at timestamptz NOT NULL DEFAULT now(),
	actor_user_id bigint,
	actor text NOT NULL,           -- 'user:12', 'apikey:3', 'system:billing-run'
	action text NOT NULL,          -- 'tenant.create', 'ticket.status', ...
	object_type text,
	object_id bigint,
	detail jsonb NOT NULL DEFAULT '{}',
	PRIMARY KEY (tenant_id, id),
	FOREIGN KEY (tenant_id, actor_user_id) REFERENCES users (tenant_id, id)
);
CREATE INDEX audit_log_object ON audit_log (tenant_id, object_type, object_id);

-- The audit log is append-only for everyone, whatever their grants.
CREATE FUNCTION audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'audit_log is append-only'
		USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_append_only
	BEFORE UPDATE OR DELETE ON audit_log
	FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate
	BEFORE TRUNCATE ON audit_log
	FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
