-- 0012_bench_items.sql: the 50 rows the foundation benchmark page
-- (/bench/list) reads, so it measures a list read from a table by an
-- index like every real list page, not an expression PostgreSQL plans
-- afresh on each request. Not tenant data: no RLS, read-only to the app.

CREATE TABLE bench_items (
	id int PRIMARY KEY,
	name text NOT NULL,
	client text NOT NULL,
	status text NOT NULL,
	priority text NOT NULL,
	assignee text NOT NULL,
	updated text NOT NULL,
	amount numeric(14,2) NOT NULL
);

INSERT INTO bench_items
SELECT i, 'Printer on floor ' || i || ' jams on duplex jobs',
	(ARRAY['Acme Ltd', 'Globex', 'Initech', 'Umbrella plc'])[1 + i % 4],
	(ARRAY['new', 'in-progress', 'waiting', 'closed'])[1 + i % 4],
	'p' || (1 + i % 4),
	(ARRAY['Tess Technician', 'Tom Technician', 'Unassigned'])[1 + i % 3],
	'2026-11-' || (10 + i % 20) || ' 09:' || (10 + i % 50),
	i * 12 + 0.50
FROM generate_series(1, 50) AS i;

GRANT SELECT ON bench_items TO tallydesk_app;
