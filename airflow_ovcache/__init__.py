"""airflow-ovcache: OpenVINO model caches as a managed artifact, with an Airflow provider.

Importing this package is cheap on purpose: it imports neither Airflow nor
OpenVINO. The host agent lives in :mod:`airflow_ovcache.core` and the
``ovcache`` command in :mod:`airflow_ovcache.cli`.
"""

__version__ = "0.1.0"
