-- 0006_tag_counts_per_statement.sql: keep client_tag_counts with one
-- grouped update per statement instead of one per client row, so an
-- import of 100,000 tagged clients does not queue on a few counter rows.

DROP TRIGGER client_tag_counts_track ON clients;
DROP FUNCTION client_tag_counts_track();

CREATE FUNCTION client_tag_counts_apply() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'INSERT' THEN
		INSERT INTO client_tag_counts (tenant_id, tag, n)
		SELECT tenant_id, t, count(*) FROM new_rows, unnest(tags) AS t
		 WHERE archived_at IS NULL AND merged_into IS NULL
		 GROUP BY tenant_id, t
		ON CONFLICT (tenant_id, tag)
		DO UPDATE SET n = client_tag_counts.n + EXCLUDED.n;
	ELSIF TG_OP = 'DELETE' THEN
		UPDATE client_tag_counts c SET n = c.n - d.n
		  FROM (SELECT tenant_id, t, count(*) AS n FROM old_rows, unnest(tags) AS t
			 WHERE archived_at IS NULL AND merged_into IS NULL
			 GROUP BY tenant_id, t) d
		 WHERE c.tenant_id = d.tenant_id AND c.tag = d.t;
	ELSE
		WITH delta AS (
			SELECT tenant_id, t, sum(k) AS n FROM (
				SELECT tenant_id, unnest(tags) AS t, -1 AS k FROM old_rows
				 WHERE archived_at IS NULL AND merged_into IS NULL
				UNION ALL
				SELECT tenant_id, unnest(tags), 1 FROM new_rows
				 WHERE archived_at IS NULL AND merged_into IS NULL) x
			 GROUP BY tenant_id, t HAVING sum(k) <> 0)
		INSERT INTO client_tag_counts (tenant_id, tag, n)
		SELECT tenant_id, t, greatest(n, 0) FROM delta WHERE n > 0
		ON CONFLICT (tenant_id, tag)
		DO UPDATE SET n = client_tag_counts.n + EXCLUDED.n;
		UPDATE client_tag_counts c SET n = c.n + d.n
		  FROM (SELECT tenant_id, t, sum(k) AS n FROM (
				SELECT tenant_id, unnest(tags) AS t, -1 AS k FROM old_rows
				 WHERE archived_at IS NULL AND merged_into IS NULL
				UNION ALL
				SELECT tenant_id, unnest(tags), 1 FROM new_rows
				 WHERE archived_at IS NULL AND merged_into IS NULL) x
			 GROUP BY tenant_id, t HAVING sum(k) < 0) d
		 WHERE c.tenant_id = d.tenant_id AND c.tag = d.t;
	END IF;
	RETURN NULL;
END
$$;

CREATE TRIGGER client_tag_counts_insert AFTER INSERT ON clients
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION client_tag_counts_apply();
CREATE TRIGGER client_tag_counts_update AFTER UPDATE ON clients
	REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION client_tag_counts_apply();
CREATE TRIGGER client_tag_counts_delete AFTER DELETE ON clients
	REFERENCING OLD TABLE AS old_rows
	FOR EACH STATEMENT EXECUTE FUNCTION client_tag_counts_apply();
