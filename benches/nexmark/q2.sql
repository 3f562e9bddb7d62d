-- Nexmark q2, selection: the bids on every 123rd auction.
-- view
CREATE MATERIALIZED VIEW q2 AS
SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0;
-- result
SELECT * FROM q2;
-- batch
SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0;
