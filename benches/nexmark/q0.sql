-- Nexmark q0, pass-through: every bid, as it arrives. Measures the cost of reading the stream
-- and writing each row to the view.
-- view
CREATE MATERIALIZED VIEW q0 AS
SELECT auction, bidder, price, date_time, extra FROM bid;
-- result
SELECT * FROM q0;
-- batch
SELECT auction, bidder, price, date_time, extra FROM bid;
