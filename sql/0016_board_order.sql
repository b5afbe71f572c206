-- 0016_board_order.sql: a board column is an open status in card order;
-- with this index each column's first cards are read, not sorted out of
-- every ticket of that status.

CREATE INDEX tickets_board ON tickets (tenant_id, status, board_rank, updated_at DESC, id DESC)
	WHERE status <> 'closed';
