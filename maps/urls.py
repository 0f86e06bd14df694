from django.urls import path
from django.views.generic import TemplateView

app_name = "maps"
urlpatterns = [path("", TemplateView.as_view(template_name="maps/index.html"), name="index")]
