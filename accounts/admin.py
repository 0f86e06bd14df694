from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils.translation import gettext_lazy as _

from .models import Organisation, User


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "email"]
    list_filter = ["kind"]
    search_fields = ["name"]


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ["username", "organisation", "role", "is_active", "is_superuser"]
    list_filter = ["role", "organisation", "is_active"]
    fieldsets = (*DjangoUserAdmin.fieldsets, (_("AUMAn"), {"fields": ("organisation", "role")}))
