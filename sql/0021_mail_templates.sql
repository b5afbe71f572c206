-- 0021_mail_templates.sql: a tenant's own wording of the notification
-- mails. The defaults live in views/mail/ (<name>_subject, _text, _html);
-- a row here replaces all three parts of one notification for its tenant.
-- Only templates that compile are stored (the app checks on save).
CREATE TABLE mail_templates (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	id bigint GENERATED ALWAYS AS IDENTITY,
	name text NOT NULL CHECK (name IN ('ack', 'reply', 'client_reply',
		'assigned', 'sla_warning', 'sla_breach')),
	subject text NOT NULL CHECK (length(subject) BETWEEN 1 AND 1000),
	body_text text NOT NULL CHECK (length(body_text) BETWEEN 1 AND 50000),
	body_html text NOT NULL CHECK (length(body_html) BETWEEN 1 AND 100000),
	updated_at timestamptz NOT NULL DEFAULT now(),
	updated_by bigint,
	PRIMARY KEY (tenant_id, id),
	UNIQUE (tenant_id, name),
	FOREIGN KEY (tenant_id, updated_by) REFERENCES users (tenant_id, id)
		ON DELETE SET NULL (updated_by)
);

-- A notice is queued with the name of its template and the data to fill
-- it with; the code that queued it renders it in the same transaction
-- (subject, text and HTML from the tenant's override or the default) and
-- clears template_data. The text it was queued with is what is sent if
-- rendering ever fails.
ALTER TABLE outbox
	ADD COLUMN template text,
	ADD COLUMN template_data jsonb;
CREATE INDEX outbox_to_render ON outbox (tenant_id, id)
	WHERE template_data IS NOT NULL;

DO $$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['mail_templates']
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
