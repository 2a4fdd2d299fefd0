"""Guard: consent, policy (no exploitation of distress), the tamper-evident audit chain, dependency index.

Pure logic only (the database side is in :mod:`nexus.store.audit`, :mod:`nexus.store.access` and
:mod:`nexus.store.clients`, one layer up):

* :mod:`~nexus.guard.chain` — entry hashes, signed checkpoints, :func:`~nexus.guard.chain.verify_chain`;
* :mod:`~nexus.guard.policy` — roles, actions, the one ``POLICY`` table, :func:`~nexus.guard.policy.authorize`;
* :mod:`~nexus.guard.credentials` — argon2id passwords, API tokens, break-glass limits;
* :mod:`~nexus.guard.consent` — scopes, :func:`~nexus.guard.consent.plan_night`, per-command consent;
* :mod:`~nexus.guard.exploitation` — program, program-change and runtime checks against using distress;
* :mod:`~nexus.guard.runtime` — :class:`~nexus.guard.runtime.SessionGuard`, both checks per step;
* :mod:`~nexus.guard.dependency` — dependency index, natural nights, weaning plan.
"""
