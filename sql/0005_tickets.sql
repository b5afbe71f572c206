-- 0005_tickets.sql: tickets, their conversation and attachments, saved
-- views, and alert intake (settings, maintenance windows, occurrences).

-- The last ticket number handed out per tenant (T-1001, T-1002, ...).
CREATE TABLE ticket_numbers (
	tenant_id bigint PRIMARY KEY REFERENCES tenants (id),
	last bigint NOT NULL DEFAULT 1000
);

-- A tenant may rename the four statuses (not add any).
CREATE TABLE ticket_status_labels (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	status text NOT NULL CHECK (status IN ('new', 'in_progress', 'waiting', 'closed')),
	label text NOT NULL CHECK (length(label) BETWEEN 1 AND 40),
	PRIMARY KEY (tenant_id, status)
);

CREATE TABLE tickets (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	id bigint GENERATED ALWAYS AS IDENTITY,
	number bigint NOT NULL,
	subject text NOT NULL CHECK (length(subject) BETWEEN 1 AND 300),
	description text NOT NULL DEFAULT '' CHECK (length(description) <= 100000),
	client_id bigint NOT NULL,
	contact_id bigint,
	site_id bigint,
	asset_id bigint,
	source text NOT NULL DEFAULT 'manual'
		CHECK (source IN ('email', 'portal', 'alert', 'phone', 'manual', 'api')),
	status text NOT NULL DEFAULT 'new'
		CHECK (status IN ('new', 'in_progress', 'waiting', 'closed')),
	priority smallint NOT NULL DEFAULT 3 CHECK (priority BETWEEN 1 AND 4),
	type text NOT NULL DEFAULT 'incident' CHECK (type IN ('incident', 'project')),
	assignee_id bigint,
	queue text NOT NULL DEFAULT '' CHECK (length(queue) <= 60),
	tags text[] NOT NULL DEFAULT '{}',
	due_at timestamptz,
	created_by bigint,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	first_response_at timestamptz,
	closed_at timestamptz,
	closed_without_time boolean NOT NULL DEFAULT false,
	merged_into bigint,
	touched_by_human boolean NOT NULL DEFAULT false,
	alert_key text CHECK (alert_key IS NULL OR length(alert_key) BETWEEN 1 AND 200),
	alert_occurrences int NOT NULL DEFAULT 0,
	board_rank double precision NOT NULL DEFAULT 0, -- order within a kanban column (not money)
	version int NOT NULL DEFAULT 1,
	search tsvector GENERATED ALWAYS AS (
		to_tsvector('simple', subject || ' ' || description)) STORED,
	PRIMARY KEY (tenant_id, id),
	UNIQUE (tenant_id, number),
	CHECK ((status = 'closed') = (closed_at IS NOT NULL)),
	FOREIGN KEY (tenant_id, client_id) REFERENCES clients (tenant_id, id),
	FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id) ON DELETE SET NULL (contact_id),
	FOREIGN KEY (tenant_id, site_id) REFERENCES sites (tenant_id, id) ON DELETE SET NULL (site_id),
	FOREIGN KEY (tenant_id, asset_id) REFERENCES assets (tenant_id, id) ON DELETE SET NULL (asset_id),
	FOREIGN KEY (tenant_id, assignee_id) REFERENCES users (tenant_id, id),
	FOREIGN KEY (tenant_id, merged_into) REFERENCES tickets (tenant_id, id)
);
-- The queue: open tickets by recency, per status, per assignee, per client.
CREATE INDEX tickets_queue ON tickets (tenant_id, updated_at DESC, id DESC);
CREATE INDEX tickets_status ON tickets (tenant_id, status, updated_at DESC, id DESC);
CREATE INDEX tickets_assignee ON tickets (tenant_id, assignee_id, status, updated_at DESC, id DESC);
CREATE INDEX tickets_client ON tickets (tenant_id, client_id, status, updated_at DESC, id DESC);
CREATE INDEX tickets_search ON tickets USING gin (search);
CREATE INDEX tickets_tags ON tickets USING gin (tags);
-- One open ticket per alert key: repeats add occurrences to it.
CREATE UNIQUE INDEX tickets_open_alert ON tickets (tenant_id, alert_key)
	WHERE alert_key IS NOT NULL AND status <> 'closed';

CREATE TABLE ticket_comments (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	id bigint GENERATED ALWAYS AS IDENTITY,
	ticket_id bigint NOT NULL,
	author_user_id bigint,
	author_contact_id bigint,
	author_label text NOT NULL DEFAULT '', -- e.g. the alert source
	public boolean NOT NULL,
	body text NOT NULL CHECK (length(body) BETWEEN 1 AND 200000),
	created_at timestamptz NOT NULL DEFAULT now(),
	edited_at timestamptz,
	search tsvector GENERATED ALWAYS AS (to_tsvector('simple', body)) STORED,
	PRIMARY KEY (tenant_id, id),
	FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id),
	FOREIGN KEY (tenant_id, author_user_id) REFERENCES users (tenant_id, id),
	FOREIGN KEY (tenant_id, author_contact_id) REFERENCES contacts (tenant_id, id) ON DELETE SET NULL (author_contact_id)
);
CREATE INDEX ticket_comments_ticket ON ticket_comments (tenant_id, ticket_id, created_at, id);
CREATE INDEX ticket_comments_search ON ticket_comments USING gin (search);

-- Every edit of a comment keeps the text it replaced.
CREATE TABLE ticket_comment_edits (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	id bigint GENERATED ALWAYS AS IDENTITY,
	comment_id bigint NOT NULL,
	old_body text NOT NULL,
	edited_by bigint,
	edited_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (tenant_id, id),
	FOREIGN KEY (tenant_id, comment_id) REFERENCES ticket_comments (tenant_id, id)
);

-- File contents, stored once per tenant and SHA-256.
CREATE TABLE blobs (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	sha256 bytea NOT NULL CHECK (octet_length(sha256) = 32),
	size bigint NOT NULL,
	data bytea NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (tenant_id, sha256)
);

CREATE TABLE ticket_attachments (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	id bigint GENERATED ALWAYS AS IDENTITY,
	ticket_id bigint NOT NULL,
	comment_id bigint,
	sha256 bytea NOT NULL,
	filename text NOT NULL CHECK (length(filename) BETWEEN 1 AND 255),
	content_type text NOT NULL,
	size bigint NOT NULL,
	uploaded_by bigint,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (tenant_id, id),
	FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id),
	FOREIGN KEY (tenant_id, comment_id) REFERENCES ticket_comments (tenant_id, id),
	FOREIGN KEY (tenant_id, sha256) REFERENCES blobs (tenant_id, sha256)
);
CREATE INDEX ticket_attachments_ticket ON ticket_attachments (tenant_id, ticket_id, id);

-- A user's saved queue filters (the query string of /tickets).
CREATE TABLE saved_views (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	id bigint GENERATED ALWAYS AS IDENTITY,
	user_id bigint NOT NULL,
	name text NOT NULL CHECK (length(name) BETWEEN 1 AND 60),
	query text NOT NULL CHECK (length(query) <= 2000),
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (tenant_id, id),
	UNIQUE (tenant_id, user_id, name),
	FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

-- Alert intake: severity to priority, and whether a resolved alert closes
-- an untouched ticket.
CREATE TABLE alert_settings (
	tenant_id bigint PRIMARY KEY REFERENCES tenants (id),
	critical_priority smallint NOT NULL DEFAULT 1 CHECK (critical_priority BETWEEN 1 AND 4),
	error_priority smallint NOT NULL DEFAULT 2 CHECK (error_priority BETWEEN 1 AND 4),
	warning_priority smallint NOT NULL DEFAULT 3 CHECK (warning_priority BETWEEN 1 AND 4),
	info_priority smallint NOT NULL DEFAULT 4 CHECK (info_priority BETWEEN 1 AND 4),
	close_on_resolve boolean NOT NULL DEFAULT true
);

CREATE TABLE maintenance_windows (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	id bigint GENERATED ALWAYS AS IDENTITY,
	client_id bigint NOT NULL,
	asset_id bigint,
	during tstzrange NOT NULL CHECK (NOT isempty(during)),
	reason text NOT NULL DEFAULT '',
	created_by bigint,
	PRIMARY KEY (tenant_id, id),
	FOREIGN KEY (tenant_id, client_id) REFERENCES clients (tenant_id, id) ON DELETE CASCADE,
	FOREIGN KEY (tenant_id, asset_id) REFERENCES assets (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX maintenance_windows_client ON maintenance_windows USING gist (tenant_id, client_id, during);

CREATE TABLE alert_occurrences (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	id bigint GENERATED ALWAYS AS IDENTITY,
	ticket_id bigint,           -- NULL when suppressed by a maintenance window
	dedupe_key text NOT NULL,
	severity text NOT NULL CHECK (severity IN ('critical', 'error', 'warning', 'info')),
	state text NOT NULL CHECK (state IN ('firing', 'resolved')),
	message text NOT NULL DEFAULT '',
	suppressed boolean NOT NULL DEFAULT false,
	received_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (tenant_id, id),
	FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id)
);
CREATE INDEX alert_occurrences_ticket ON alert_occurrences (tenant_id, ticket_id, id);

DO $$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['ticket_numbers', 'ticket_status_labels', 'tickets',
		'ticket_comments', 'ticket_comment_edits', 'blobs',
		'ticket_attachments', 'saved_views', 'alert_settings',
		'maintenance_windows', 'alert_occurrences']
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
