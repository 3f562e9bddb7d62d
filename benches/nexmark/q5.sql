-- Nexmark q5, hot items: the auctions with the most bids in each 10-second window, every
-- 2 seconds. The view keeps each auction's bid count per window, incrementally; the result
-- query picks each window's leaders from it (a join of two aggregates, which views do not
-- maintain yet).
-- view
CREATE MATERIALIZED VIEW q5_bids AS
SELECT auction, count(*) AS num, window_start, window_end
FROM HOP(bid, date_time, INTERVAL '2' SECOND, INTERVAL '10' SECOND)
GROUP BY auction, window_start, window_end;
-- result
SELECT b.auction, b.num
FROM q5_bids AS b
JOIN (SELECT window_start, max(num) AS maxn FROM q5_bids GROUP BY window_start) AS m
  ON b.window_start = m.window_start AND b.num >= m.maxn;
-- batch
WITH hopped AS (
    SELECT auction, date_bin(INTERVAL '2 seconds', date_time) - shift AS window_start
    FROM bid CROSS JOIN (VALUES (INTERVAL '0 seconds'), (INTERVAL '2 seconds'),
        (INTERVAL '4 seconds'), (INTERVAL '6 seconds'), (INTERVAL '8 seconds')) AS shifts(shift)
), counts AS (
    SELECT auction, window_start, count(*) AS num FROM hopped GROUP BY auction, window_start
)
SELECT c.auction, c.num
FROM counts AS c
JOIN (SELECT window_start, max(num) AS maxn FROM counts GROUP BY window_start) AS m
  ON c.window_start = m.window_start AND c.num >= m.maxn;
