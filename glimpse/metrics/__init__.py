"""Prometheus metrics of the service (prometheus-client), kept out of the domain.

instruments.py defines every metric; multiprocess.py keeps the per-run folder uvicorn's workers share;
stores.py and database.py measure the stores and the connection pool; api/metrics.py measures requests and serves
the metrics. What the service counts elsewhere (the task queue in the database, the image cache's hits in its
records) is read by collectors at each scrape, so the domain never imports Prometheus.
"""
