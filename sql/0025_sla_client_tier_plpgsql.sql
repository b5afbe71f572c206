-- 0025: sla_client_tier() in PL/pgSQL. Every new ticket asks for it (the
-- SLA insert trigger); as a SQL function with a CTE it could not be
-- inlined, so each insert parsed and planned its body again (about half
-- of the 0.7 ms the trigger took). PL/pgSQL keeps its plans for the
-- session. Same answer as 0009's: the tier of the client's contract in
-- force that day (in the tenant's time zone; voided ones never were),
-- else the tenant's fallback tier (also for a contract without a tier);
-- without a bound tenant (the owner inserting), the client's tenant.
CREATE OR REPLACE FUNCTION sla_client_tier(p_client bigint, p_at timestamptz)
RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE
	v_tenant bigint;
	v_day date;
	v_tier bigint;
BEGIN
	SELECT t.id, (p_at AT TIME ZONE t.time_zone)::date INTO v_tenant, v_day
	FROM tenants t
	WHERE t.id = coalesce(app_tenant(),
		(SELECT c.tenant_id FROM clients c WHERE c.id = p_client));
	IF v_tenant IS NULL THEN
		RETURN NULL;
	END IF;
	SELECT k.sla_tier_id INTO v_tier FROM contracts k
	WHERE k.tenant_id = v_tenant AND k.client_id = p_client
		AND k.state <> 'voided' AND k.starts_on <= v_day
		AND (k.ends_on IS NULL OR k.ends_on >= v_day)
	ORDER BY k.starts_on DESC LIMIT 1;
	IF v_tier IS NOT NULL THEN
		RETURN v_tier;
	END IF;
	SELECT s.id INTO v_tier FROM sla_tiers s
	WHERE s.tenant_id = v_tenant AND s.is_fallback;
	RETURN v_tier;
END
$$;
