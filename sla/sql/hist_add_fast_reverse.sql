CREATE OR REPLACE FUNCTION sla_hist_add(a integer[], b integer[]) RETURNS integer[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN a IS NULL THEN COALESCE(b, array_fill(0, ARRAY[150]))
              WHEN b IS NULL THEN a
              ELSE ARRAY(SELECT x + y FROM unnest(a, b) AS t(x, y)) END
$$;
