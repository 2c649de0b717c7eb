"""Barbican 23's API as a WSGI application for gunicorn, without Keystone.

`scripts/barbican.sh serve` points gunicorn at `barbican_app:application`
with KEYWARDEN_BARBICAN_DIR naming the directory that holds
`.barbican/barbican.conf` and `barbican-api-paste.ini` (both written by
that script; HOME is that directory too, for the plugins' own configs).

`request_id_attr` is our paste filter for an upstream bug: since Barbican
22 the unauthenticated-context middleware reads `req.request_id`, which
nothing sets, so every /v1 call answers 500 (AttributeError). oslo's
request_id middleware puts the id in the WSGI environ; this filter copies
it to the webob request attribute the context middleware reads.

`default_project` (only in the pipeline when `serve` is given
KEYWARDEN_BARBICAN_DEFAULT_PROJECT) sets `X-Project-Id` on requests that
carry none, as keywarden's configured default identity does for clients
such as `openstack --os-auth-type none`, which send no project header.
"""
import os

from barbican.common import config
from paste import deploy


def request_id_attr_factory(global_config, **local_conf):
    def filter_(app):
        def wrapped(environ, start_response):
            attrs = environ.setdefault("webob.adhoc_attrs", {})
            attrs.setdefault("request_id", environ.get("openstack.request_id"))
            return app(environ, start_response)

        return wrapped

    return filter_


def default_project_factory(global_config, project, **local_conf):
    def filter_(app):
        def wrapped(environ, start_response):
            environ.setdefault("HTTP_X_PROJECT_ID", project)
            return app(environ, start_response)

        return wrapped

    return filter_


def load(directory):
    """The paste app of `directory`, its barbican.conf parsed first."""
    conf = os.path.join(directory, ".barbican", "barbican.conf")
    config.parse_args(config.CONF, args=["--config-file", conf])
    return deploy.loadapp("config:" + os.path.join(directory, "barbican-api-paste.ini"))


if os.environ.get("KEYWARDEN_BARBICAN_DIR"):
    application = load(os.environ["KEYWARDEN_BARBICAN_DIR"])
