-- Back to the three columns. Switches of algorithms other than VWAP, TWAP and HFT are lost.
ALTER TABLE algorithm_status
    ADD COLUMN vwap boolean NOT NULL DEFAULT false,
    ADD COLUMN twap boolean NOT NULL DEFAULT false,
    ADD COLUMN hft boolean NOT NULL DEFAULT false;

UPDATE algorithm_status SET
    vwap = coalesce((switches ->> 'VWAP')::boolean, false),
    twap = coalesce((switches ->> 'TWAP')::boolean, false),
    hft = coalesce((switches ->> 'HFT')::boolean, false);

ALTER TABLE algorithm_status DROP COLUMN switches;
