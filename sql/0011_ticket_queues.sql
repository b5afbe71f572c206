-- 0011_ticket_queues.sql: the team queues a tenant routes tickets into
-- (Service desk, Projects, Network…). A ticket names its queue in
-- tickets.queue ('' = none); renaming a queue renames it on its tickets.

CREATE TABLE ticket_queues (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	id bigint GENERATED ALWAYS AS IDENTITY,
	name text NOT NULL CHECK (length(name) BETWEEN 1 AND 60 AND name = btrim(name)),
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (tenant_id, id),
	UNIQUE (tenant_id, name)
);

-- The queue filter of the ticket list.
CREATE INDEX tickets_by_queue ON tickets (tenant_id, queue, status, updated_at DESC, id DESC)
	WHERE queue <> '';

ALTER TABLE ticket_queues ENABLE ROW LEVEL SECURITY;
ALTER TABLE ticket_queues FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON ticket_queues
	USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
GRANT SELECT, INSERT, UPDATE, DELETE ON ticket_queues TO tallydesk_app;
