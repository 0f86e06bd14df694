from django.conf import settings
from django.http import HttpRequest


def city(request: HttpRequest) -> dict:
    return {"AUMAN_CITY_NAME": settings.AUMAN_CITY_NAME}
