-- Histogram and set helpers of the rollups (see sla/metrics.py for the bucket layout; keep in step).
CREATE FUNCTION sla_latency_bucket(v double precision) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT CASE WHEN v < 1 THEN 0
              ELSE LEAST(149, 1 + floor(ln(v) / ln(1.1::double precision))::integer) END
$$;

CREATE FUNCTION sla_hist_accum(state integer[], v double precision) RETURNS integer[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE i integer;
BEGIN
  IF state IS NULL THEN state := array_fill(0, ARRAY[150]); END IF;
  IF v IS NULL THEN RETURN state; END IF;
  i := sla_latency_bucket(v) + 1;
  state[i] := state[i] + 1;
  RETURN state;
END $$;

CREATE FUNCTION sla_hist_add(a integer[], b integer[]) RETURNS integer[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN a IS NULL THEN COALESCE(b, array_fill(0, ARRAY[150]))
              WHEN b IS NULL THEN a
              ELSE ARRAY(SELECT x + y FROM unnest(a, b) AS t(x, y)) END
$$;

-- sla_hist(value): histogram of raw values; sla_hist_merge(hist): element-wise sum of histograms.
CREATE AGGREGATE sla_hist(double precision) (
  SFUNC = sla_hist_accum, STYPE = integer[], COMBINEFUNC = sla_hist_add, PARALLEL = SAFE,
  INITCOND = '{0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0}'
);
CREATE AGGREGATE sla_hist_merge(integer[]) (
  SFUNC = sla_hist_add, STYPE = integer[], COMBINEFUNC = sla_hist_add, PARALLEL = SAFE,
  INITCOND = '{0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0}'
);

-- Sorted distinct union of text arrays (mergeable "set of active orchestrators").
CREATE FUNCTION sla_text_union_add(a text[], b text[]) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT COALESCE(ARRAY(SELECT DISTINCT x FROM unnest(COALESCE(a, ARRAY[]::text[]) || COALESCE(b, ARRAY[]::text[])) AS t(x)
                        WHERE x IS NOT NULL ORDER BY x), ARRAY[]::text[])
$$;
CREATE AGGREGATE sla_text_union(text[]) (
  SFUNC = sla_text_union_add, STYPE = text[], COMBINEFUNC = sla_text_union_add, PARALLEL = SAFE, INITCOND = '{}'
);
