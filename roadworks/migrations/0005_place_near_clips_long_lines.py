"""auman_place_near cuts a long line (a tram line, a corridor: kilometres of road) to the box around the work before
buffering it, so only the few metres concerned are buffered: the city-wide sweep of C4 and C7 spent most of its time
buffering whole lines once per work."""

from django.db import migrations

CLIPPED_SQL = """
-- A conflict's place with a layer or detour: the part of `work` within `distance` of `other`, widened by 2 m so it
-- is an area; where rounding leaves nothing, the shortest line between them, widened. A line `other` is first cut to
-- the box around `work`.
CREATE OR REPLACE FUNCTION auman_place_near(work geometry, other geometry, distance double precision)
RETURNS geometry LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ST_Multi(ST_Buffer(CASE WHEN ST_IsEmpty(near) THEN ST_ShortestLine(work, other) ELSE near END,
                              2, 'quad_segs=4'))
      FROM (SELECT ST_Intersection(work, ST_Buffer(
                       CASE WHEN ST_Dimension(other) = 1
                            THEN ST_ClipByBox2D(other, ST_Expand(ST_Envelope(work), distance + 2)::box2d)
                            ELSE other END,
                       distance + 1, 'quad_segs=8')) AS near) s
$$;
"""

WHOLE_SQL = """
CREATE OR REPLACE FUNCTION auman_place_near(work geometry, other geometry, distance double precision)
RETURNS geometry LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ST_Multi(ST_Buffer(CASE WHEN ST_IsEmpty(near) THEN ST_ShortestLine(work, other) ELSE near END,
                              2, 'quad_segs=4'))
      FROM (SELECT ST_Intersection(work, ST_Buffer(other, distance + 1, 'quad_segs=8')) AS near) s
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("roadworks", "0004_rule_layers_and_notifications")]

    operations = [migrations.RunSQL(CLIPPED_SQL, WHOLE_SQL)]
