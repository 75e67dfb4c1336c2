"""Django views shipped with djust_dist."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from djust_dist import metrics


def metrics_view(request: HttpRequest) -> HttpResponse:
    """Serve the Prometheus metrics in the text exposition format.

    Shows this worker's counts, or every worker's when ``PROMETHEUS_MULTIPROC_DIR``
    is set. Responds 404 when prometheus_client is not installed.
    """
    rendered = metrics.render_latest()
    if rendered is None:
        return HttpResponse(
            "prometheus_client is not installed: install djust_dist[metrics]\n",
            status=404,
            content_type="text/plain",
        )

    body, content_type = rendered
    return HttpResponse(body, content_type=content_type)
