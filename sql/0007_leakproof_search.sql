-- 0007_leakproof_search.sql: let the full-text and tag indexes work under
-- row-level security. PostgreSQL only uses an index condition below a
-- policy's condition when its operator is leakproof; ts_match_vq (tsvector
-- @@ tsquery) and arraycontains (anyarray @> anyarray) are not marked so,
-- so every search and tag filter by the app role scanned whole tables
-- (a rare word in 1,000,000 tickets: 2 s instead of under a millisecond).
-- Neither function reports anything about its input in an error. Marking
-- them needs a superuser; without one this says so and changes nothing.
DO $$
BEGIN
	ALTER FUNCTION ts_match_vq(tsvector, tsquery) LEAKPROOF;
	ALTER FUNCTION arraycontains(anyarray, anyarray) LEAKPROOF;
EXCEPTION WHEN insufficient_privilege THEN
	RAISE NOTICE 'not a superuser: run as one: ALTER FUNCTION ts_match_vq(tsvector, tsquery) LEAKPROOF; ALTER FUNCTION arraycontains(anyarray, anyarray) LEAKPROOF; (search and tag filters scan whole tables until then)';
END
$$;
