"""kopf handlers; importing this package registers them.

Start with :mod:`.agent`: its docstring is the whole Agent lifecycle.
"""

from stigmer_operator.handlers import agent, agent_instance, lifecycle

__all__ = ["agent", "agent_instance", "lifecycle"]
