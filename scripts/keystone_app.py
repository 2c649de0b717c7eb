"""Keystone's WSGI application for scripts/keystone.sh under gunicorn.

Keystone parses the process's command line with oslo.config when it
builds its application, and gunicorn's own arguments are not Keystone's:
the command line is emptied first. The config file comes from
OS_KEYSTONE_CONFIG_FILES, which scripts/keystone.sh sets.
"""
import sys

sys.argv = sys.argv[:1]

from keystone.wsgi.api import application  # noqa: E402,F401
