"""{% gis_export_links "roadworks" "conflicts" %}: download links for GIS users, for staff pages to include."""

from __future__ import annotations

from urllib.parse import urlencode

from django import template
from django.urls import reverse

from roadworks.permissions import can_create_roadwork

from ..export import FORMATS
from ..layers import FILTER_PARAMETERS, LAYERS

register = template.Library()

FORMAT_LABELS = {"gpkg": "GeoPackage", "shp.zip": "Shapefile (ZIP)", "geojson": "GeoJSON", "csv": "CSV"}


@register.inclusion_tag("gisio/_export_links.html", takes_context=True)
def gis_export_links(context, *layer_names: str) -> dict:
    request = context.get("request")
    user = getattr(request, "user", None)
    user = user if user is not None and user.is_authenticated else None
    # The page's own filters carry over where the export knows them (bbox, status, kind, ...); others are dropped.
    query = {}
    if request is not None:
        query = {name: request.GET[name] for name in FILTER_PARAMETERS if request.GET.get(name)}
    suffix = f"?{urlencode(query)}" if query else ""
    layers = []
    for name in layer_names:
        layer = LAYERS.get(name)
        if layer is None or not layer.may_see(user):
            continue
        links = [
            {
                "label": FORMAT_LABELS[fmt],
                "url": reverse("gisio-api:export", kwargs={"layer": name, "fmt": fmt}) + suffix,
            }
            for fmt in FORMATS
        ]
        layers.append({"name": name, "title": layer.title, "links": links})
    return {
        "layers": layers,
        "ogcapi_url": reverse("gisio-ogc:ogc-landing"),
        "import_url": reverse("gisio:import") if user is not None and can_create_roadwork(user) else None,
    }
