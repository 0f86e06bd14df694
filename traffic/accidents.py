"""Accident classification as the API and the quick-entry page speak it: codes, labels and their rules.

The codes are those of the German police (EUSKA) and the Destatis Unfallatlas; the models hold them as
IntegerChoices. Who was involved is one list of road users here and six booleans on the model, because the
Unfallatlas has six flags (IstRad, IstPKW, IstFuss, IstKrad, IstGkfz, IstSonstige).
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _

from .models import Accident, AccidentCategory, AccidentKind, AccidentType, LightCondition, RoadCondition


class RoadUser(models.TextChoices):
    BICYCLE = "bicycle", _("Bicycle")
    CAR = "car", _("Car")
    PEDESTRIAN = "pedestrian", _("Pedestrian")
    MOTORCYCLE = "motorcycle", _("Motorcycle")
    GOODS_VEHICLE = "goods_vehicle", _("Goods vehicle")
    OTHER = "other", _("Other road user")


# API name -> the choices its codes come from. "kind" and "type" are Unfallart and Unfalltyp.
CODE_LISTS: dict[str, type[models.IntegerChoices]] = {
    "category": AccidentCategory,
    "kind": AccidentKind,
    "type": AccidentType,
    "light_condition": LightCondition,
    "road_condition": RoadCondition,
}
REQUIRED_CODES = ("category", "kind", "type")
CASUALTY_FIELDS = ("killed", "seriously_injured", "slightly_injured")

# The category is the most severe consequence (Destatis; VwV on accident recording): killed means died within
# 30 days, seriously injured means kept in hospital for at least 24 hours, everyone else hurt is slightly
# injured. Categories 4 to 6 are accidents with property damage only, so no one is hurt in them.
MSG_NEEDS_KILLED = _("Category 1 means at least one person was killed: give the number killed.")
MSG_NEEDS_SERIOUSLY_INJURED = _(
    "Category 2 means at least one person was seriously injured: give the number seriously injured."
)
MSG_NEEDS_SLIGHTLY_INJURED = _(
    "Category 3 means at least one person was slightly injured: give the number slightly injured."
)
MSG_KILLED_MEANS_CATEGORY_1 = _(
    "If someone was killed, the accident is category 1: the category is the most severe consequence."
)
MSG_SERIOUSLY_INJURED_MEANS_CATEGORY_2 = _(
    "If someone was seriously injured (and no one killed), the accident is category 2: "
    "the category is the most severe consequence."
)
MSG_NO_CASUALTIES_WITH_PROPERTY_DAMAGE = _(
    "Categories 4 to 6 are accidents with property damage only: no one may be injured or killed."
)
MSG_CODE_REQUIRED = _("This code is required for an accident.")


def casualty_errors(category: int, counts: dict[str, int | None]) -> dict[str, list[Any]]:
    """Messages per casualty field where the counts contradict the category; missing counts count as 0."""
    killed, serious, slight = (counts.get(name) or 0 for name in CASUALTY_FIELDS)
    errors: dict[str, list[Any]] = {}

    def add(name: str, message: Any) -> None:
        errors.setdefault(name, []).append(message)

    if category == AccidentCategory.KILLED:
        if killed < 1:
            add("killed", MSG_NEEDS_KILLED)
    elif category == AccidentCategory.SERIOUSLY_INJURED:
        if killed:
            add("killed", MSG_KILLED_MEANS_CATEGORY_1)
        if serious < 1:
            add("seriously_injured", MSG_NEEDS_SERIOUSLY_INJURED)
    elif category == AccidentCategory.SLIGHTLY_INJURED:
        if killed:
            add("killed", MSG_KILLED_MEANS_CATEGORY_1)
        if serious:
            add("seriously_injured", MSG_SERIOUSLY_INJURED_MEANS_CATEGORY_2)
        if slight < 1:
            add("slightly_injured", MSG_NEEDS_SLIGHTLY_INJURED)
    else:
        for name, value in zip(CASUALTY_FIELDS, (killed, serious, slight), strict=True):
            if value:
                add(name, MSG_NO_CASUALTIES_WITH_PROPERTY_DAMAGE)
    return errors


def accident_errors(data: dict[str, Any]) -> dict[str, list[Any]]:
    """The classification's own rules, for callers that do not come through the API serializer."""
    errors: dict[str, list[Any]] = {name: [MSG_CODE_REQUIRED] for name in REQUIRED_CODES if data.get(name) is None}
    if not errors:
        errors.update(casualty_errors(data["category"], data))
    return errors


def accident_field_values(data: dict[str, Any]) -> dict[str, Any]:
    """API accident block -> Accident model field values. Counts the police leave out are 0, not unknown."""
    involved = set(data.get("involves") or ())
    values: dict[str, Any] = {name: data.get(name) for name in CODE_LISTS}
    values.update({name: data.get(name) or 0 for name in CASUALTY_FIELDS})
    values.update({f"involves_{user.value}": user.value in involved for user in RoadUser})
    return values


def _label(choices: type[models.IntegerChoices], code: int | None) -> str | None:
    return None if code is None else str(choices(code).label)


def accident_representation(accident: Accident) -> dict[str, Any]:
    """Accident -> the API's accident block: codes, and labels in the active language beside them."""
    involves = [user.value for user in RoadUser if getattr(accident, f"involves_{user.value}")]
    result: dict[str, Any] = {}
    for name, choices in CODE_LISTS.items():
        code = getattr(accident, name)
        result[name] = code
        result[f"{name}_label"] = _label(choices, code)
    result["involves"] = involves
    result["involves_labels"] = [str(RoadUser(code).label) for code in involves]
    result.update({name: getattr(accident, name) for name in CASUALTY_FIELDS})
    return result


def accident_codes() -> dict[str, list[dict[str, Any]]]:
    """Every code list with its labels in the active language: for forms and API clients."""
    lists: dict[str, list[dict[str, Any]]] = {
        name: [{"code": choice.value, "label": str(choice.label)} for choice in choices]
        for name, choices in CODE_LISTS.items()
    }
    lists["involves"] = [{"code": user.value, "label": str(user.label)} for user in RoadUser]
    return lists
