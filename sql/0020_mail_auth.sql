-- 0020_mail_auth.sql: inbound mail verified by us (DKIM, SPF, DMARC) and
-- per-client sending domains checked live in DNS.

-- Verify DKIM, SPF and DMARC ourselves when no trusted MTA has said it
-- (its Authentication-Results still win where configured).
ALTER TABLE mail_settings
	ADD COLUMN verify_sender boolean NOT NULL DEFAULT true;

-- A sending domain's From address (support@client.example) and the last
-- live DNS check, record by record: 'ok' (found and matching), 'missing',
-- 'wrong' (found with another value) or 'error' (the look-up failed).
-- verified_at is set while the DKIM record checks out: only then is the
-- domain sent from.
ALTER TABLE mail_domains
	ADD COLUMN from_address text NOT NULL DEFAULT ''
		CHECK (from_address = '' OR from_address ~ '^[^@\s<>",;]+@[^@\s<>",;]+$'),
	ADD COLUMN checked_at timestamptz,
	ADD COLUMN spf_status text CHECK (spf_status IN ('ok', 'missing', 'wrong', 'error')),
	ADD COLUMN dkim_status text CHECK (dkim_status IN ('ok', 'missing', 'wrong', 'error')),
	ADD COLUMN dmarc_status text CHECK (dmarc_status IN ('ok', 'missing', 'wrong', 'error')),
	ADD COLUMN check_found jsonb NOT NULL DEFAULT '{}';

-- One sending domain per client (the tenant's own have client_id NULL).
CREATE UNIQUE INDEX mail_domains_client ON mail_domains (tenant_id, client_id)
	WHERE client_id IS NOT NULL;

-- The address mail about a ticket leaves from: its client's verified
-- domain's, else the tenant's support address (NULL when neither).
CREATE FUNCTION mail_sender(p_ticket bigint) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT coalesce(
		(SELECT d.from_address FROM tickets t JOIN mail_domains d
		  ON d.tenant_id = t.tenant_id AND d.client_id = t.client_id
		 WHERE t.tenant_id = app_tenant() AND t.id = p_ticket
		  AND d.verified_at IS NOT NULL AND d.from_address <> ''),
		(SELECT nullif(s.support_address, '') FROM mail_settings s
		 WHERE s.tenant_id = app_tenant()))
$$;
GRANT EXECUTE ON FUNCTION mail_sender(bigint) TO tallydesk_app;
