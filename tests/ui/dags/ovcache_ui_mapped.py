"""A small mapped DAG of the browser tier's own: each instance labelled with its host by map_index_template.

The example DAGs get the same labels; this one lets the browser test check that
Airflow's UI shows a rendered map index without depending on them.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, get_current_context, task

HOSTS = ["infer-east-1", "infer-west-2"]


@dag(dag_id="ovcache_ui_mapped", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False)
def ovcache_ui_mapped() -> None:
    @task(map_index_template="host {{ ovcache_host }}")
    def check(host: str) -> str:
        get_current_context()["ovcache_host"] = host  # type: ignore[typeddict-unknown-key]
        return host

    check.expand(host=HOSTS)


ovcache_ui_mapped()
