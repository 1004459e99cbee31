-- Version 9 moves PostgreSQL's delivery counters to COMMIT (several nodes wrote the same counter
-- row and waited on each other's transactions). SQLite has one writer at a time, so its triggers
-- stay as they are; this file keeps both backends at the same schema version.
SELECT 1;
