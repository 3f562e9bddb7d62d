-- Nexmark q1, currency conversion: every bid's price in euros.
-- view
CREATE MATERIALIZED VIEW q1 AS
SELECT auction, bidder, 0.908 * price AS price, date_time, extra FROM bid;
-- result
SELECT * FROM q1;
-- batch
SELECT auction, bidder, 0.908 * price AS price, date_time, extra FROM bid;
