"""hooks of the airflow-ovcache provider."""
