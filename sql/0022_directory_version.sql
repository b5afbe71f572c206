-- 0022: keep what every ticket page shows instead of reading it each time.
--
-- The people, queues, saved views, status names and client names of a
-- tenant change a few times a day and are shown on every queue and ticket
-- page. Each change bumps the tenant's directory version in the same
-- transaction; the session lookup returns it, so a worker keeps the lists
-- between requests and reads them again only when the version moved.

CREATE TABLE tenant_versions (
	tenant_id bigint PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
	directory bigint NOT NULL DEFAULT 0
);
ALTER TABLE tenant_versions ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_versions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_versions
	USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
GRANT SELECT, INSERT, UPDATE ON tenant_versions TO tallydesk_app;

CREATE FUNCTION directory_bump() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	tid bigint := CASE TG_OP WHEN 'DELETE' THEN OLD.tenant_id
		ELSE NEW.tenant_id END;
BEGIN
	INSERT INTO tenant_versions AS v (tenant_id, directory) VALUES (tid, 1)
	ON CONFLICT (tenant_id) DO UPDATE SET directory = v.directory + 1;
	RETURN NULL;
END
$$;

-- users: only what the lists show (name, active); a sign-in is no change.
-- A rename of a person also reaches the names kept for ticket lists.
CREATE TRIGGER directory_bump AFTER INSERT OR DELETE OR UPDATE OF name, active
	ON users FOR EACH ROW EXECUTE FUNCTION directory_bump();
CREATE TRIGGER directory_bump AFTER INSERT OR DELETE OR UPDATE
	ON ticket_queues FOR EACH ROW EXECUTE FUNCTION directory_bump();
CREATE TRIGGER directory_bump AFTER INSERT OR DELETE OR UPDATE
	ON saved_views FOR EACH ROW EXECUTE FUNCTION directory_bump();
CREATE TRIGGER directory_bump AFTER INSERT OR DELETE OR UPDATE
	ON ticket_status_labels FOR EACH ROW EXECUTE FUNCTION directory_bump();

-- The portal's host lookup runs for every request on a host that is not
-- the main one. As a SQL function with its own search_path it could not be
-- inlined and was planned afresh on every call (~50 µs); PL/pgSQL keeps
-- its plan for the session (~10 µs).
CREATE OR REPLACE FUNCTION portal_host_slug(p_host text) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public AS $$
BEGIN
	RETURN (SELECT t.slug FROM tenant_hosts h JOIN tenants t
		ON t.id = h.tenant_id WHERE h.host = lower(p_host));
END
$$;

-- clients: a rename changes the names lists of tickets show (names.c).
CREATE TRIGGER directory_bump AFTER UPDATE OF name ON clients FOR EACH ROW
	WHEN (OLD.name IS DISTINCT FROM NEW.name)
	EXECUTE FUNCTION directory_bump();
