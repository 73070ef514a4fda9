"""sfapi-client, imported without Authlib's deprecation notice.

sfapi-client signs its token requests through Authlib's httpx integration, which Authlib 1.x
announces, on import, it will move. The notice is for sfapi-client's authors; printed at the
top of every ``bl832`` command, it is noise a beamline user can do nothing about. Only that
one message is silenced, and only while sfapi-client is imported.
"""

import warnings

with warnings.catch_warnings():
    # Authlib puts its own "always show" filter first when imported; ours must come after it.
    import authlib.deprecate  # noqa: F401

    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
    from sfapi_client import Client
    from sfapi_client.compute import Compute, Machine
    from sfapi_client.jobs import TERMINAL_STATES, JobSqueue, JobState

__all__ = ["TERMINAL_STATES", "Client", "Compute", "JobSqueue", "JobState", "Machine"]
