"""Support for the example DAGs in ``dags/``: the fleet they run on, and the report they write.

Not part of the provider's API (that is ``hooks``, ``operators``, ``sensors``, ``assets``)
nor of the serving library (``serving``, ``samples``): these run inside the example
DAGs' tasks and in the UI plugin.

- :mod:`.inventory`: the fleet inventory file (hosts, their connections and settings);
- :mod:`.queues`: the hosts of the DAGs that route each host to its own worker queue;
- :mod:`.edge`: hosts served by an Airflow edge worker (not reached, the queued bound, the worker's command);
- :mod:`.runs`: what the example DAGs' tasks share (which hosts and releases a run is for,
  each host's outcome, the run's summary);
- :mod:`.report`: the nightly fleet report (hosts x models, HTML and JSON);
- :mod:`.report_store`: where reports are kept and how the UI finds them.

Importing any of them is cheap (no OpenVINO or network at import); all but :mod:`.runs`, which
reads asset events, work without Airflow.
"""
