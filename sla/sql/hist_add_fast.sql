-- Faster element-wise histogram sum (state function of sla_hist_merge, and combine function of both
-- histogram aggregates). Same results as the first version: a NULL side is ignored (both NULL gives zeros).
-- Rollup histograms are sparse (a handful of non-zero cells out of 150), so an all-zero side is returned
-- by one C-level array comparison, and otherwise only the non-zero cells of b are added into a.
CREATE OR REPLACE FUNCTION sla_hist_add(a integer[], b integer[]) RETURNS integer[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  v integer;
  i integer := 0;
BEGIN
  IF b IS NULL THEN RETURN COALESCE(a, array_fill(0, ARRAY[150])); END IF;
  IF a IS NULL OR a = '{0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0}'::integer[] THEN RETURN b; END IF;
  IF b = '{0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0}'::integer[] THEN RETURN a; END IF;
  FOREACH v IN ARRAY b LOOP
    i := i + 1;
    IF v <> 0 THEN a[i] := a[i] + v; END IF;
  END LOOP;
  RETURN a;
END $$;
