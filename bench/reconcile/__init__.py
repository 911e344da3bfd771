"""End to end: how fast the operator turns Agents into Ready Agents, on a real control plane.

Starts its own control plane (etcd, kube-apiserver, kube-controller-manager
from ``testing/stigmer_testing/controlplane.py``, CRDs applied) and the operator as
a real process (``stigmer-operator run``), then measures, in one run:

1. **burst** -- N Agents created through the API as fast as ``--clients``
   threads can; time until every Agent is Ready (``Ready=True`` with
   ``status.observedGeneration == metadata.generation``) and so is its
   default AgentInstance; Agents/s; p50/p95/p99 create->Ready latency.
   Latency is client-side: from the moment the create request is sent to
   the first watch event (a watch per kind runs in a thread) showing both
   the Agent and its default instance Ready.
2. **baseline** -- the API-bound limit on this machine: the API writes the
   operator made per Agent during the burst (counted by the apiserver's own
   ``apiserver_request_total``, so kopf's annotation patches are included;
   the operator's ``stigmer_kubernetes_writes_total`` splits off the
   pipeline's share), replayed directly, without the operator, with the
   same client concurrency, into a namespace the operator does not watch.
   Operator throughput is printed as a fraction of that limit.
3. **steady** -- ``--steady-rate`` Agents/s for ``--steady-seconds``
   (open loop: a create is sent on schedule even when earlier ones are
   still pending); p50/p95/p99 create->Ready.
4. **scale** -- Agents created until the operator holds ``--scale-n``
   Agents (+ as many default instances); operator RSS (``VmRSS`` from
   ``/proc/<pid>/status``) idle and at scale.
5. **restart** -- the operator is stopped, ``--restart-delete`` Agents are
   deleted (the garbage collector removes their instances), the operator is
   started on the same store; time until it has re-mirrored every object
   (its ``stigmer_reconcile_total{operation="resume"}`` counts reach the
   live Agents and instances and stay still for ``--quiet`` seconds: the
   time reported is that of the last change) and swept the deleted ones;
   ``stigmer-operator store verify`` must then pass.

Usage::

    python bench/reconcile_bench.py                       # the targets' sizes
    python bench/reconcile_bench.py --quick               # ~1 min: n=100, steady 5 s, scale 500
    python bench/reconcile_bench.py --json out.json --png latency.png
    python bench/reconcile_bench.py --phases burst,baseline --n 300 \\
        --operator-arg=--max-workers=16                   # an experiment
    python bench/reconcile_bench.py --py-spy prof/        # py-spy record of the operator

A table, not a timed test: a shared 2-core machine is too noisy for a hard
gate. Targets are printed as PASS/FAIL; ``--strict`` turns a FAIL into exit 1.

Modules: :mod:`.client` (the lean API client, the Ready watches, creating
Agents), :mod:`.baseline` (the operator's writes replayed without it),
:mod:`.procstats` (the operator process: memory, CPU, metrics, py-spy),
:mod:`.phases` (the five phases), :mod:`.report` (the tables and targets)
and :mod:`.cli` (flags and the run); ``bench/reconcile_bench.py`` is the
entry script.
"""
