"""triggers of the airflow-ovcache provider."""
