"""kopf handlers, watch-event observers and resumes; importing this package registers them.

Start with :mod:`.agent` and :mod:`.agent_instance`: their docstrings are
each kind's whole lifecycle (:mod:`.observers` says why each kind's
every-event work and its resume are not kopf handlers). :mod:`.startup`
configures kopf and sweeps the mirror when the operator starts;
:mod:`.startup_listing` lists the operator's own objects once for the
resumes at start.
"""

from stigmer_operator.handlers import agent, agent_instance, startup, startup_listing

__all__ = ["agent", "agent_instance", "startup", "startup_listing"]
