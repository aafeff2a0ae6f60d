"""The WSGI application, with everything its first request would import already imported.

Django imports the URL conf, and with it every view module, the API and its schemas, on the
first request a process serves. Under gunicorn's ``preload_app`` the master runs this module
once and forks its workers from it: importing here means a worker started after a crash or a
kill serves its first request at full speed (that import is about a second of CPU on a small
machine, which the other requests would wait for).
"""

import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()
get_resolver().url_patterns  # noqa: B018 (imports the URL conf and every view behind it)
