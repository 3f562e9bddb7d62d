-- The bid stream of `nexmark.event.num` Nexmark events (46 in 50 are bids), generated as fast
-- as the log takes them. The benchmark puts its --events count in place of ${EVENTS}.
CREATE SOURCE bid (
    auction BIGINT,
    bidder BIGINT,
    price BIGINT,
    channel VARCHAR,
    url VARCHAR,
    date_time TIMESTAMP,
    extra VARCHAR,
    WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND
) WITH (
    connector = 'nexmark',
    nexmark.table.type = 'bid',
    nexmark.event.num = '${EVENTS}'
);
