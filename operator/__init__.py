"""stigmer-operator: Agent and AgentInstance custom resources, reconciled by kopf.

The folder is ``operator/`` but the import name is ``stigmer_operator``: the
standard library already owns ``operator`` and imports it at start-up.
"""

__version__ = "0.1.0"
