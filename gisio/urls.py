from django.urls import path, re_path

from . import api, ogcapi, views

app_name = "gisio"

api_urlpatterns = [
    re_path(
        r"^export/(?P<layer>[a-z_]+)\.(?P<fmt>gpkg|shp\.zip|geojson|csv)$", api.ExportView.as_view(), name="export"
    ),
    path("roadworks/import/", api.RoadworkImportView.as_view(), name="roadworks-import"),
    path("roadworks/import/<uuid:pk>/", api.RoadworkImportJobView.as_view(), name="roadworks-import-job"),
]

ogcapi_urlpatterns = [
    path("", ogcapi.LandingPage.as_view(), name="ogc-landing"),
    path("conformance", ogcapi.Conformance.as_view(), name="ogc-conformance"),
    path("api", ogcapi.OpenAPIDocument.as_view(), name="ogc-api"),
    path("collections", ogcapi.Collections.as_view(), name="ogc-collections"),
    path("collections/<str:collection_id>", ogcapi.Collection.as_view(), name="ogc-collection"),
    path("collections/<str:collection_id>/items", ogcapi.Items.as_view(), name="ogc-items"),
    path("collections/<str:collection_id>/items/<str:feature_id>", ogcapi.Item.as_view(), name="ogc-item"),
]

page_urlpatterns = [
    path("import/", views.import_page, name="import"),
    path("import/<uuid:pk>/", views.import_job_page, name="import-job"),
]
