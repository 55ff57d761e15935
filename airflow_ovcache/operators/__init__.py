"""operators of the airflow-ovcache provider."""
