-- Nexmark q7, highest bid: the bids at each 10-second window's highest price. The view keeps
-- each window's highest price, incrementally; the result query finds the bids at that price
-- in the source (views do not join a stream with an aggregate of itself yet).
-- view
CREATE MATERIALIZED VIEW q7_max AS
SELECT window_start, window_end, max(price) AS maxprice
FROM TUMBLE(bid, date_time, INTERVAL '10' SECOND)
GROUP BY window_start, window_end;
-- result
SELECT b.auction, b.price, b.bidder, b.date_time, b.extra
FROM bid AS b
JOIN q7_max AS m
  ON b.price = m.maxprice AND b.date_time >= m.window_start AND b.date_time < m.window_end;
-- batch
SELECT b.auction, b.price, b.bidder, b.date_time, b.extra
FROM bid AS b
JOIN (SELECT date_bin(INTERVAL '10 seconds', date_time) AS window_start, max(price) AS maxprice
      FROM bid GROUP BY 1) AS m
  ON b.price = m.maxprice AND date_bin(INTERVAL '10 seconds', b.date_time) = m.window_start;
