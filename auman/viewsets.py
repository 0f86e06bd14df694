"""The one shape of a versioned GeoJSON resource: list, create, retrieve, update; no delete."""

from __future__ import annotations

from django.core.exceptions import ObjectDoesNotExist
from django.http import Http404
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response

from .api import etag_for_version, expected_version


class VersionedFeatureViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """Subclasses provide create_service(user, data) and update_service(user, pk, data, expected_version).

    Reads send an ETag (the version); writes need it back (If-Match or 'version') and answer 412 when stale.
    """

    http_method_names = ["get", "post", "put", "patch", "head", "options"]

    def create_service(self, *, user, data):  # pragma: no cover - abstract
        raise NotImplementedError

    def update_service(self, *, user, pk, data, expected_version):  # pragma: no cover - abstract
        raise NotImplementedError

    def retrieve(self, request, *args, **kwargs):
        response = super().retrieve(request, *args, **kwargs)
        response["ETag"] = etag_for_version(response.data["properties"]["version"])
        return response

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        instance = self.create_service(user=request.user, data=serializer.validated_data)
        output = self.get_serializer(self.get_queryset().get(pk=instance.pk))
        # str(): the url is DRF's Hyperlink (a str subclass), which strict WSGI servers (wsgiref) refuse as a header.
        location = str(output.data["properties"].get("url", ""))
        headers = {"ETag": etag_for_version(instance.version), "Location": location}
        return Response(output.data, status=status.HTTP_201_CREATED, headers=headers)

    def update(self, request, *args, **kwargs):
        partial = kwargs.pop("partial", False)
        instance = self.get_object()
        serializer = self.get_serializer(instance, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        properties = request.data.get("properties") if isinstance(request.data, dict) else None
        version = expected_version(request, properties if isinstance(properties, dict) else {})
        try:
            updated = self.update_service(
                user=request.user, pk=instance.pk, data=serializer.validated_data, expected_version=version
            )
        except ObjectDoesNotExist as exc:
            raise Http404 from exc
        output = self.get_serializer(self.get_queryset().get(pk=updated.pk))
        return Response(output.data, headers={"ETag": etag_for_version(updated.version)})

    def partial_update(self, request, *args, **kwargs):
        kwargs["partial"] = True
        return self.update(request, *args, **kwargs)
