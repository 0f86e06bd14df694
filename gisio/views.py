"""The staff page for the bulk import of roadworks: upload a file, check it (dry run) or import it, read the report.

A large file becomes a background job: the upload redirects to the job's page, which reloads itself until the job
has finished and then shows the same report."""

from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext_lazy as _

from accounts.models import Organisation
from roadworks import permissions as roadwork_permissions

from .models import ImportJob, ImportJobStatus
from .selectors import import_jobs_recent
from .services import MAX_IMPORT_BYTES, MSG_FILE_TOO_LARGE, ImportFileError, roadworks_import_start

# Seconds between the job page's reloads while the job is queued or running.
JOB_PAGE_REFRESH_SECONDS = 3


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
            upload = form.cleaned_data["file"]
            try:
                result = roadworks_import_start(
                    user=request.user,
                    data=upload.read(),
                    file_name=upload.name or "",
                    organisation=form.cleaned_data.get("organisation"),
                    dry_run=form.cleaned_data["dry_run"],
                )
                if isinstance(result, ImportJob):
                    return redirect("gisio:import-job", pk=result.pk)
                report = result
            except ImportFileError as exc:
                form.add_error("file", str(exc))
            except PermissionDenied as exc:
                form.add_error(None, str(exc))
            except ValidationError as exc:  # no organisation chosen, and the user has none of their own
                for name, messages in exc.message_dict.items():
                    form.add_error(name if name in form.fields else None, messages)
        if not form.is_valid() or (report is not None and not report.ok):
            status = 400
    else:
        form = ImportForm(choose_organisation=choose)
    context = {"form": form, "report": report, "jobs": import_jobs_recent(user=request.user)}
    return render(request, "gisio/import.html", context, status=status)


@login_required
def import_job_page(request: HttpRequest, pk) -> HttpResponse:
    # Someone else's job does not exist for this user: 404, not 403, so ids reveal nothing.
    job = get_object_or_404(ImportJob.objects.defer("data"), pk=pk, user=request.user)
    report = job.report if job.status == ImportJobStatus.DONE else None
    context = {"job": job, "report": report, "refresh_seconds": JOB_PAGE_REFRESH_SECONDS}
    return render(request, "gisio/import_job.html", context)
