-- Judging scan results.
--
-- How many parts of a blob its scan left unread that a loader would read:
-- past a scanner limit or encrypted. A scan that stopped early says nothing
-- of what it did not read, so scan policies judge these apart from the
-- findings. Existing results are counted from their stored reports, whose
-- limit messages name the limit ("limits.<key>").
ALTER TABLE scan_results ADD COLUMN unread_parts INTEGER NOT NULL DEFAULT 0;
UPDATE scan_results
   SET unread_parts = (
       SELECT count(*) FROM json_each(report, '$.unreadable')
        WHERE json_extract(value, '$.reason') LIKE '%limits.%'
           OR json_extract(value, '$.reason') LIKE '%encrypted%')
 WHERE report LIKE '%"unreadable":[{%';

-- What a blob's scan had found when an administrator released it from
-- quarantine: a rescan that finds nothing new does not quarantine it again.
CREATE TABLE quarantine_releases (
    digest        TEXT PRIMARY KEY,
    max_severity  TEXT,
    findings      INTEGER NOT NULL,
    unread_parts  INTEGER NOT NULL,
    released_at   INTEGER NOT NULL
);
