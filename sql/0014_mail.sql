-- 0014_mail.sql: the email gateway — per-tenant mail settings, every
-- message in and out (raw copy, for audit, threading and dedupe), sending
-- domains with their DKIM keys, and the outbox grown into a send queue.

-- lower() for addresses, marked LEAKPROOF: under row-level security an
-- index condition is only used below the policy when it is leakproof, and
-- lower() is not marked so (every look-up by address scanned the tenant's
-- rows). It is the built-in function itself; it reports nothing about its
-- input in an error. Creating it needs a superuser (migrations run as one).
CREATE FUNCTION mail_lower(text) RETURNS text
LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF AS 'lower';

-- How a tenant's inbound mail is handled.
CREATE TABLE mail_settings (
	tenant_id bigint PRIMARY KEY REFERENCES tenants (id),
	-- Our own addresses (support@...): mail from them never opens a ticket.
	support_address text NOT NULL DEFAULT ''
		CHECK (support_address = '' OR support_address ~ '^[^@\s]+@[^@\s]+$'),
	-- Unknown sender at a known client: create the contact, or leave the
	-- ticket without one.
	create_contacts boolean NOT NULL DEFAULT true,
	-- A reply to a closed ticket: reopen it, or open a new linked ticket.
	closed_reply text NOT NULL DEFAULT 'reopen'
		CHECK (closed_reply IN ('reopen', 'new_ticket')),
	-- Messages per sender per hour that may open or update tickets.
	rate_limit int NOT NULL DEFAULT 30 CHECK (rate_limit BETWEEN 1 AND 100000),
	-- The authserv-id of our own MTA (its Authentication-Results are
	-- trusted; anyone else's are the sender's word); '' to check nothing.
	trusted_authserv_id text NOT NULL DEFAULT '' CHECK (length(trusted_authserv_id) <= 255),
	-- Send an acknowledgement for a new ticket opened by email.
	acknowledge boolean NOT NULL DEFAULT true,
	-- The "Unassigned (email)" client unknown senders' tickets go to;
	-- created on first use.
	triage_client_id bigint,
	FOREIGN KEY (tenant_id, triage_client_id) REFERENCES clients (tenant_id, id)
		ON DELETE SET NULL (triage_client_id)
);

-- Every message received or sent. The raw bytes are kept as they came:
-- the ticket shows the trimmed reply, this keeps the whole of it.
CREATE TABLE mail_messages (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	id bigint GENERATED ALWAYS AS IDENTITY,
	direction text NOT NULL CHECK (direction IN ('in', 'out')),
	message_id text CHECK (length(message_id) <= 1000), -- '<...>'
	raw_sha256 bytea NOT NULL CHECK (octet_length(raw_sha256) = 32),
	from_addr text CHECK (length(from_addr) <= 1000),  -- '' for <>
	from_name text,
	subject text,
	kind text NOT NULL DEFAULT 'normal' CHECK (kind IN ('normal',
		'auto-reply', 'bounce', 'bounce-delay', 'feedback-report')),
	outcome text NOT NULL CHECK (outcome IN ('ticket', 'reply',
		'ignored-auto', 'ignored-bulk', 'ignored-own', 'rate-limited',
		'rejected', 'sent')),
	detail text NOT NULL DEFAULT '',
	ticket_id bigint,
	comment_id bigint,
	in_reply_to text[] NOT NULL DEFAULT '{}',
	refs text[] NOT NULL DEFAULT '{}',
	attachments text[] NOT NULL DEFAULT '{}', -- decoded file names
	body_text text NOT NULL DEFAULT '',
	broken boolean NOT NULL DEFAULT false,
	-- "dkim=pass spf=pass dmarc=pass" from the trusted MTA's header, and
	-- whether one of them failed (then the ticket carries a note).
	auth_verdict text NOT NULL DEFAULT '',
	auth_failed boolean NOT NULL DEFAULT false,
	raw bytea NOT NULL,
	received_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (tenant_id, id),
	FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id),
	FOREIGN KEY (tenant_id, comment_id) REFERENCES ticket_comments (tenant_id, id)
);
-- One copy per Message-ID (a redelivery is a no-op); without one, per bytes.
CREATE UNIQUE INDEX mail_messages_msgid ON mail_messages (tenant_id, direction, message_id)
	WHERE message_id IS NOT NULL;
CREATE UNIQUE INDEX mail_messages_raw ON mail_messages (tenant_id, raw_sha256)
	WHERE message_id IS NULL AND direction = 'in';
-- Threading looks up the ids a reply names.
CREATE INDEX mail_messages_thread ON mail_messages (tenant_id, message_id)
	WHERE ticket_id IS NOT NULL;
CREATE INDEX mail_messages_sender ON mail_messages (tenant_id, mail_lower(from_addr), received_at)
	WHERE direction = 'in';
CREATE INDEX mail_messages_ticket ON mail_messages (tenant_id, ticket_id, id);

-- IMAP mailboxes mail-poll drains (imap://host/INBOX or imaps://...).
-- What it took is deleted once committed; a crash in between fetches it
-- again and the Message-ID dedupe drops the copy.
CREATE TABLE mail_mailboxes (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	id bigint GENERATED ALWAYS AS IDENTITY,
	url text NOT NULL CHECK (url ~ '^imaps?://[^/]+/.+$'),
	username text NOT NULL CHECK (length(username) BETWEEN 1 AND 320),
	password text NOT NULL DEFAULT '',
	enabled boolean NOT NULL DEFAULT true,
	last_polled_at timestamptz,
	last_error text,
	PRIMARY KEY (tenant_id, id)
);

-- The tenants with mailboxes to poll: the one cross-tenant look of mail-poll.
CREATE FUNCTION mail_poll_tenants() RETURNS SETOF bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
	SELECT DISTINCT tenant_id FROM mail_mailboxes WHERE enabled
$$;
REVOKE ALL ON FUNCTION mail_poll_tenants() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mail_poll_tenants() TO tallydesk_app;

-- Domains mail leaves from, each with its DKIM key (PEM, private).
CREATE TABLE mail_domains (
	tenant_id bigint NOT NULL REFERENCES tenants (id),
	id bigint GENERATED ALWAYS AS IDENTITY,
	domain text NOT NULL CHECK (domain ~ '^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$'),
	client_id bigint, -- NULL: the tenant's own domain
	selector text NOT NULL DEFAULT 'td1' CHECK (selector ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
	dkim_private_pem text NOT NULL,
	dkim_public_b64 text NOT NULL,
	verified_at timestamptz,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (tenant_id, id),
	UNIQUE (tenant_id, domain),
	FOREIGN KEY (tenant_id, client_id) REFERENCES clients (tenant_id, id) ON DELETE CASCADE
);

-- The outbox as a send queue: status before and after the SMTP
-- transaction, one Message-ID for every attempt, backoff.
ALTER TABLE outbox
	ADD COLUMN status text NOT NULL DEFAULT 'queued'
		CHECK (status IN ('queued', 'sending', 'sent', 'failed')),
	ADD COLUMN message_id text,
	ADD COLUMN from_addr text,
	ADD COLUMN ticket_id bigint,
	ADD COLUMN in_reply_to text,
	ADD COLUMN refs text,
	ADD COLUMN auto_submitted text,
	ADD COLUMN body_html text,
	ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now(),
	ADD COLUMN sending_since timestamptz;
UPDATE outbox SET status = 'sent' WHERE sent_at IS NOT NULL;
CREATE INDEX outbox_due ON outbox (tenant_id, next_attempt_at)
	WHERE status IN ('queued', 'sending');
-- Threading and loop detection look up the ids of the mail we sent.
CREATE INDEX outbox_message_id ON outbox (tenant_id, message_id)
	WHERE message_id IS NOT NULL;
-- Inbound mail finds its sender's contact by address alone.
CREATE INDEX contacts_email_any ON contacts (tenant_id, mail_lower(email))
	WHERE email <> '';

-- The tenants with mail due: the one cross-tenant look of outbox-send.
CREATE FUNCTION mail_outbox_tenants() RETURNS SETOF bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
	SELECT DISTINCT tenant_id FROM outbox
	WHERE status IN ('queued', 'sending') AND next_attempt_at <= now()
$$;
REVOKE ALL ON FUNCTION mail_outbox_tenants() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mail_outbox_tenants() TO tallydesk_app;

DO $$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['mail_settings', 'mail_messages', 'mail_domains',
		'mail_mailboxes']
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
