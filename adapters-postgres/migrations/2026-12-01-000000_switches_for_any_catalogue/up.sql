-- Switches for any algorithm catalogue (ALSY__SYNC__ALGORITHMS): one jsonb object per client,
-- algorithm name -> on. Chosen by measurement over one row per client and algorithm, which made the
-- desired-state read of 100k clients far slower (bench/RESULTS.md, "Storing the switches").
-- The three columns' values move into the object under their names, every client keeping all
-- three switches, on or off. A switch of an algorithm later dropped from the catalogue stays in
-- the object (a status write only overwrites the catalogue's keys), for when it returns.
ALTER TABLE algorithm_status
    ADD COLUMN switches jsonb NOT NULL DEFAULT '{}'::jsonb
        CONSTRAINT algorithm_status_switches_is_an_object CHECK (jsonb_typeof(switches) = 'object');

UPDATE algorithm_status SET switches = jsonb_build_object('VWAP', vwap, 'TWAP', twap, 'HFT', hft);

ALTER TABLE algorithm_status DROP COLUMN vwap, DROP COLUMN twap, DROP COLUMN hft;
