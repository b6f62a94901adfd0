-- ISP portal audit: a row can stand for several requests. Refused requests of a network that is
-- blocked for bad keys (429) are counted, one row per client network and minute (at = the minute's
-- start), instead of one row each: a flood cannot grow the table faster than the networks it uses.
-- Every other row stands for one request.
ALTER TABLE {db}.isp_audit ADD COLUMN requests UInt32 DEFAULT 1;
