"""The vector tile endpoint: /tiles/<layer>/<z>/<x>/<y>.mvt (maps.tiles builds them)."""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.cache import get_conditional_response, patch_cache_control, patch_vary_headers
from django.views.decorators.http import require_safe

from .tiles import MSG_LAYER, TILE_LAYERS, TileParameterError, parse_tile_request, tile_answer_key, tile_build

TILE_CONTENT_TYPE = "application/vnd.mapbox-vector-tile"
# Built tiles stay this long in the cache; a data change makes new keys at once, so this only bounds memory.
TILE_CACHE_SECONDS = 3600


@require_safe
def tile(request: HttpRequest, layer: str, z: int, x: int, y: int) -> HttpResponse:
    """A Mapbox Vector Tile of roadworks, incidents or accidents, its one MVT layer named as the URL's layer.

    ?on=YYYY-MM-DD (default today), ?kind=, ?impact= (roadworks), ?category= (accidents), ?district=<id>.
    Rows the user may not see are not in it; a layer the user may not see at all is an empty tile, as if there
    were nothing, so the answer never tells what it holds. An empty tile is 200 with an empty body."""
    try:
        tile_request = parse_tile_request(layer, z, x, y, request.GET)
    except KeyError:
        message = str(MSG_LAYER).format(layer=layer, layers=", ".join(TILE_LAYERS))
        return JsonResponse({"layer": [message]}, status=404)
    except TileParameterError as exc:
        return JsonResponse(exc.errors, status=400)

    now = timezone.now()
    answer = tile_answer_key(tile_request, request.user, now=now)
    # Weak: equal keys mean the same features, not necessarily the same bytes (row order is the planner's).
    etag = f'W/"{answer.cache_key.split(":", 1)[1][:32]}"'
    response = HttpResponse(content_type=TILE_CONTENT_TYPE)
    response["ETag"] = etag
    if answer.visibility in ("public", "none"):
        # What every anonymous visitor gets: browsers and proxies may keep it a short while.
        patch_cache_control(response, public=True, max_age=settings.AUMAN_TILE_MAX_AGE)
    else:
        # Staff and applicants see more than the public: never in a shared cache, and always revalidated.
        patch_cache_control(response, private=True, no_cache=True)
    patch_vary_headers(response, ("Cookie", "Authorization"))
    # The ETag is known before the tile is built, so an unchanged tile costs only the fingerprint query.
    conditional = get_conditional_response(request, etag=etag, response=response)
    if conditional is not response:
        return conditional

    if answer.fingerprint == "empty":
        body = b""
    else:
        body = cache.get(answer.cache_key)
        if body is None:
            body = tile_build(tile_request, request.user, now=now, rows=answer.rows)
            cache.set(answer.cache_key, body, TILE_CACHE_SECONDS)
    response.content = body
    return response
