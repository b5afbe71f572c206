-- 0023: mail_sender() in PL/pgSQL. As a SQL function with sub-selects it
-- could not be inlined, so every statement calling it parsed and planned
-- its body again (~0.4 ms each, once per acknowledgement and reply);
-- PL/pgSQL keeps its plans for the session. Same answer: the ticket's
-- client's verified sending address, else the tenant's support address.
CREATE OR REPLACE FUNCTION mail_sender(p_ticket bigint) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
	addr text;
BEGIN
	SELECT d.from_address INTO addr FROM tickets t JOIN mail_domains d
		ON d.tenant_id = t.tenant_id AND d.client_id = t.client_id
	WHERE t.tenant_id = app_tenant() AND t.id = p_ticket
		AND d.verified_at IS NOT NULL AND d.from_address <> '';
	IF addr IS NOT NULL THEN
		RETURN addr;
	END IF;
	SELECT nullif(s.support_address, '') INTO addr FROM mail_settings s
	WHERE s.tenant_id = app_tenant();
	RETURN addr;
END
$$;
