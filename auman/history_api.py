"""The history endpoints' answer shape, for the OpenAPI schema (the views answer auman.history.Entry.as_json())."""

from rest_framework import serializers


class ChangeSerializer(serializers.Serializer):
    field = serializers.CharField()
    old = serializers.JSONField(allow_null=True, help_text="Geometries are not repeated: null")
    new = serializers.JSONField(allow_null=True)


class HistoryEntrySerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    action = serializers.ChoiceField(choices=["insert", "update", "delete"])
    object = serializers.CharField(
        help_text="roadwork, roadworktransition, conflict, incident, incidenttransition or accident"
    )
    object_id = serializers.CharField()
    user = serializers.CharField(allow_null=True, help_text="Who made the change in a request")
    task = serializers.CharField(allow_null=True, help_text="The background task that made the change")
    changes = ChangeSerializer(many=True)
