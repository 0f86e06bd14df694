"""The staff page for the bulk import of roadworks: upload a file, check it (dry run) or import it, read the report."""

from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from accounts.models import Organisation
from roadworks import permissions as roadwork_permissions

from .services import MAX_IMPORT_BYTES, MSG_FILE_TOO_LARGE, ImportFileError, roadworks_import


class ImportForm(forms.Form):
    file = forms.FileField(label=_("File (GeoJSON or GeoPackage)"))
    organisation = forms.ModelChoiceField(
        queryset=Organisation.objects.order_by("name"), label=_("Organisation"), required=False
    )
    dry_run = forms.BooleanField(label=_("Check only, import nothing"), required=False, initial=True)

    def __init__(self, *args, choose_organisation: bool, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not choose_organisation:
            del self.fields["organisation"]

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_IMPORT_BYTES:
            raise forms.ValidationError(str(MSG_FILE_TOO_LARGE).format(limit=MAX_IMPORT_BYTES))
        return upload


@login_required
def import_page(request: HttpRequest) -> HttpResponse:
    if not roadwork_permissions.can_create_roadwork(request.user):
        raise PermissionDenied
    choose = roadwork_permissions.can_choose_organisation(request.user)
    report = None
    status = 200
    if request.method == "POST":
        form = ImportForm(request.POST, request.FILES, choose_organisation=choose)
        if form.is_valid():
            try:
                report = roadworks_import(
                    user=request.user,
                    data=form.cleaned_data["file"].read(),
                    organisation=form.cleaned_data.get("organisation"),
                    dry_run=form.cleaned_data["dry_run"],
                )
            except ImportFileError as exc:
                form.add_error("file", str(exc))
            except PermissionDenied as exc:
                form.add_error(None, str(exc))
        if not form.is_valid() or (report is not None and not report.ok):
            status = 400
    else:
        form = ImportForm(choose_organisation=choose)
    return render(request, "gisio/import.html", {"form": form, "report": report}, status=status)
