DROP AGGREGATE IF EXISTS sla_text_union(text[]);
DROP FUNCTION IF EXISTS sla_text_union_add(text[], text[]);
DROP AGGREGATE IF EXISTS sla_hist_merge(integer[]);
DROP AGGREGATE IF EXISTS sla_hist(double precision);
DROP FUNCTION IF EXISTS sla_hist_add(integer[], integer[]);
DROP FUNCTION IF EXISTS sla_hist_accum(integer[], double precision);
DROP FUNCTION IF EXISTS sla_latency_bucket(double precision);
