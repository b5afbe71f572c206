-- 0024: fresh statistics for mail_messages during a big first import.
-- A new installation starts with the table empty and never analyzed;
-- with no statistics the planner takes the tenant's sender index for the
-- Message-ID look-up and reads every message of the tenant for each new
-- one, until autovacuum analyzes the table a minute or more later.
-- mail-ingest --batch calls this once it has grown the table by a
-- thousand messages. The app does not own the table, hence SECURITY
-- DEFINER; it analyzes that one table and nothing else.
CREATE FUNCTION mail_refresh_stats() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
	ANALYZE mail_messages;
END
$$;
REVOKE ALL ON FUNCTION mail_refresh_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mail_refresh_stats() TO tallydesk_app;
