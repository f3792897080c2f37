-- Switches for any algorithm catalogue (ALSY__SYNC__ALGORITHMS): one jsonb object per client,
-- algorithm name -> on, in the one row a status write already updates (README.md, "Coming from
-- syncService or PSY"; before/after figures in bench/RESULTS.md).
-- The three columns' values move into the object under their names, every client keeping all
-- three switches, on or off. A switch of an algorithm later dropped from the catalogue stays in
-- the object (a status write only overwrites the catalogue's keys), for when it returns.
ALTER TABLE algorithm_status
    ADD COLUMN switches jsonb NOT NULL DEFAULT '{}'::jsonb
        CONSTRAINT algorithm_status_switches_is_an_object CHECK (jsonb_typeof(switches) = 'object');

UPDATE algorithm_status SET switches = jsonb_build_object('VWAP', vwap, 'TWAP', twap, 'HFT', hft);

ALTER TABLE algorithm_status DROP COLUMN vwap, DROP COLUMN twap, DROP COLUMN hft;
