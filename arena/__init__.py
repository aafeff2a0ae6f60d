"""Arena: the Django project package and the core domain (models, prompts, assets, battles, votes)."""

from workers.celery import app as celery_app

__all__ = ["celery_app"]
