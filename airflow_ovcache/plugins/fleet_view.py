"""The Airflow plugin that puts the nightly fleet reports into Airflow's UI.

What it adds, the way ``apache-airflow-providers-edge3`` adds its own views:

- a FastAPI app the API server mounts at ``/ovcache`` (:mod:`.app`): the latest
  grid (hosts x models), every past report, and each DAG run's report;
- a "OpenVINO cache" entry in the UI's Browse menu that shows that app inside
  the UI (an external view with a ``url_route``);
- the "Fleet report" button on a nightly run's report task comes from
  :mod:`.links`, set by the DAG itself.

Airflow loads plugins in every component (scheduler, workers, DAG processor),
so importing this module costs nothing: the app, and FastAPI with it, is built
the first time the API server asks for ``fastapi_apps``.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk.plugins_manager import AirflowPlugin

from .links import URL_PREFIX, base_path

PLUGIN_NAME = "ovcache"


class _AppsOnFirstUse:
    """A class attribute whose value (the list of FastAPI apps) is built when first read.

    Airflow reads ``fastapi_apps`` from the plugin class (provider plugins) or an
    instance (entry-point plugins); a descriptor answers both, and only the API
    server (and ``airflow plugins``) ever reads it.
    """

    def __init__(self) -> None:
        self._apps: list[dict[str, Any]] | None = None

    def __get__(self, obj: object, owner: type | None = None) -> list[dict[str, Any]]:
        if self._apps is None:
            from .app import create_app

            self._apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "OpenVINO cache fleet reports"}]
        return self._apps


class OvcacheFleetPlugin(AirflowPlugin):
    """Fleet reports of the OpenVINO cache nightly DAGs, in Airflow's UI."""

    name = PLUGIN_NAME
    fastapi_apps = _AppsOnFirstUse()
    external_views = [
        {
            "name": "OpenVINO cache",
            "href": f"{base_path()}{URL_PREFIX}/",
            "destination": "nav",
            "category": "browse",
            "url_route": "ovcache",
        }
    ]
