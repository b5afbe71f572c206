-- 0010_time.sql: time tracking. Running timers (one per technician,
-- enforced here), time entries (billable, internal, pre-paid) with their
-- approval state, per-technician rates, and the tenant's time settings.

-- Time settings of a tenant: approval is off by default; a timer running
-- longer than timer_alert_hours shows on the missing-time page.
ALTER TABLE tenants
	ADD COLUMN time_approval boolean NOT NULL DEFAULT false,
	ADD COLUMN timer_alert_hours int NOT NULL DEFAULT 10
		CHECK (timer_alert_hours BETWEEN 1 AND 168);

-- Rates override the contract's for this technician's time (NULL: the
-- contract's rate); cost_rate is for profitability. time_zone NULL: the
-- tenant's.
ALTER TABLE users
	ADD COLUMN hourly_rate numeric(14, 2) CHECK (hourly_rate >= 0),
	ADD COLUMN cost_rate numeric(14, 2) CHECK (cost_rate >= 0),
	ADD COLUMN time_zone text CHECK (time_zone IS NULL OR length(time_zone) BETWEEN 1 AND 64),
	-- Beta: opening a ticket assigned to you starts (or resumes) a timer,
	-- leaving the page pauses it.
	ADD COLUMN passive_timer boolean NOT NULL DEFAULT false;

-- The time zone a user reads and types times in: theirs, else the
-- tenant's.
CREATE FUNCTION app_user_zone(uid bigint) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT coalesce(
		(SELECT time_zone FROM users WHERE tenant_id = app_tenant() AND id = uid),
		(SELECT time_zone FROM tenants WHERE id = app_tenant()),
		'UTC')
$$;

-- The running timer of a technician. The unique key on (tenant_id,
-- user_id) is what makes two browser tabs unable to start two timers:
-- starting is an INSERT that conflicts, stopping a DELETE ... RETURNING,
-- so a timer is stopped (and its time committed) at most once.
CREATE TABLE timers (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	id bigint GENERATED ALWAYS AS IDENTITY,
	user_id bigint NOT NULL,
	ticket_id bigint NOT NULL,
	started_at timestamptz NOT NULL DEFAULT now(), -- the running stretch began
	began_at timestamptz NOT NULL DEFAULT now(),   -- the timer began
	banked_seconds int NOT NULL DEFAULT 0 CHECK (banked_seconds >= 0),
	paused_at timestamptz,       -- paused (passive timers): banked_seconds is all
	passive boolean NOT NULL DEFAULT false,
	PRIMARY KEY (tenant_id, id),
	UNIQUE (tenant_id, user_id),
	FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE,
	FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id)
);
CREATE INDEX timers_ticket ON timers (tenant_id, ticket_id);

CREATE TABLE time_entries (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	id bigint GENERATED ALWAYS AS IDENTITY,
	ticket_id bigint NOT NULL,
	client_id bigint NOT NULL,
	user_id bigint NOT NULL,
	started_at timestamptz NOT NULL,
	minutes int NOT NULL CHECK (minutes > 0 AND minutes <= 527040),
	kind text NOT NULL CHECK (kind IN ('billable', 'internal', 'prepaid')),
	status text NOT NULL DEFAULT 'committed'
		CHECK (status IN ('pending', 'committed', 'rejected')),
	description text NOT NULL DEFAULT '' CHECK (length(description) <= 10000),
	service text NOT NULL DEFAULT '' CHECK (length(service) <= 60),
	source text NOT NULL DEFAULT 'manual' CHECK (source IN ('timer', 'manual', 'bulk', 'api')),
	timer_id bigint,             -- the timer it was stopped from
	review_note text NOT NULL DEFAULT '' CHECK (length(review_note) <= 2000),
	reviewed_by bigint,
	reviewed_at timestamptz,
	sealed_at timestamptz,       -- the ticket closed: edits need a reopen and a reason
	invoice_line_id bigint,      -- set by billing: the entry is locked
	created_by bigint,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (tenant_id, id),
	-- A stopped timer becomes at most one entry.
	UNIQUE (tenant_id, timer_id),
	FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id),
	FOREIGN KEY (tenant_id, client_id) REFERENCES clients (tenant_id, id),
	FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id),
	FOREIGN KEY (tenant_id, reviewed_by) REFERENCES users (tenant_id, id),
	FOREIGN KEY (tenant_id, created_by) REFERENCES users (tenant_id, id)
);
CREATE INDEX time_entries_ticket ON time_entries (tenant_id, ticket_id, started_at);
CREATE INDEX time_entries_user ON time_entries (tenant_id, user_id, started_at);
CREATE INDEX time_entries_client ON time_entries (tenant_id, client_id, started_at);
CREATE INDEX time_entries_pending ON time_entries (tenant_id, started_at)
	WHERE status = 'pending';

-- An entry on an issued invoice is locked outright: only billing may
-- link it (invoice_line_id from NULL) and nothing may change or delete it
-- afterwards; a credit note is the way back.
CREATE FUNCTION time_entries_invoiced_lock() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'DELETE' THEN
		IF OLD.invoice_line_id IS NOT NULL THEN
			RAISE EXCEPTION 'time entry % is on an invoice', OLD.id
				USING ERRCODE = 'check_violation';
		END IF;
		RETURN OLD;
	END IF;
	IF OLD.invoice_line_id IS NOT NULL AND
	   (NEW.ticket_id, NEW.client_id, NEW.user_id, NEW.started_at,
	    NEW.minutes, NEW.kind, NEW.status, NEW.description, NEW.service,
	    NEW.invoice_line_id)
	   IS DISTINCT FROM
	   (OLD.ticket_id, OLD.client_id, OLD.user_id, OLD.started_at,
	    OLD.minutes, OLD.kind, OLD.status, OLD.description, OLD.service,
	    OLD.invoice_line_id) THEN
		RAISE EXCEPTION 'time entry % is on an invoice', OLD.id
			USING ERRCODE = 'check_violation';
	END IF;
	RETURN NEW;
END
$$;
CREATE TRIGGER time_entries_invoiced_lock
	BEFORE UPDATE OR DELETE ON time_entries
	FOR EACH ROW EXECUTE FUNCTION time_entries_invoiced_lock();

DO $$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['timers', 'time_entries']
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
