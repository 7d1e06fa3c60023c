# A minimal Django site on LiteFS: the database is the file in LiteFS's mount
# (LITEFS_MOUNT, default /litefs), as the guide's Django users configure it.
import os
from urllib.parse import quote

SECRET_KEY = 'litefs-proxy-guide-test-only'
DEBUG = False
ALLOWED_HOSTS = ['*']
INSTALLED_APPS = ['notes']
MIDDLEWARE = []  # a JSON API for the test: no sessions, no CSRF
ROOT_URLCONF = 'notes_site.urls'
WSGI_APPLICATION = 'notes_site.wsgi.application'
USE_TZ = True
DEFAULT_AUTO_FIELD = 'django.db.models.BigAutoField'

MOUNT = os.environ.get('LITEFS_MOUNT', '/litefs')
DATABASES = {
    'default': {
        'ENGINE': 'django.db.backends.sqlite3',
        # Django opens SQLite with uri=True: mode=rw never creates the file, so a
        # node whose LiteFS is down cannot start a new, empty database under the
        # plain directory left at the mount point.
        'NAME': 'file:' + quote(os.path.join(MOUNT, 'db.sqlite3')) + '?mode=rw',
        'OPTIONS': {'timeout': 5},
        # Persistent connections: a process that closes its last connection and
        # opens a new one re-initializes SQLite's WAL index (-shm), which on a
        # LiteFS replica races LiteFS's rewrite of it and can end the process with
        # SIGBUS. Stop the app before LiteFS stops (LiteFS's exec does).
        'CONN_MAX_AGE': None,
        'CONN_HEALTH_CHECKS': True,
    }
}
