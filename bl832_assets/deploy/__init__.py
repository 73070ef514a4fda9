"""The production deployment on one machine: a code server per code location (``locations``),
the webserver, the daemon, a Celery worker and the metrics exporter as separate processes on
PostgreSQL and RabbitMQ (``bl832 deploy start|stop|status``, ``make deploy-local``), and the
pieces the deployment's instance and workers load by name (``launcher``, ``celery_app``). The
templates live in the repository's ``deploy/`` folder; docs/deployment.md describes the
layout."""
