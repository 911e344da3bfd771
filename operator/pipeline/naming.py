"""Every derived name and id, computed in one place.

Names the operator makes up must be valid for the API (DNS-1123 subdomain,
at most 253 characters; label values at most 63) whatever the user's names
are, and must be *deterministic*: a re-run after a crash has to arrive at
the same id, the same child names and the same Event names, or it would
mint a second id, a second default instance, a second Event. Long inputs are
therefore shortened by keeping a readable prefix and appending a short hash
of the full input, never by plain truncation (which would make distinct
long names collide).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from stigmer_operator.api.kinds import Kind

#: DNS-1123 subdomain (metadata.name of most kinds).
NAME_MAX = 253
#: Label values and DNS-1123 labels.
LABEL_MAX = 63
#: Hex digits of sha256(uid) in a resource id.
ID_HEX_DIGITS = 20
_HASH_LEN = 8

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def digest(text: str, length: int = _HASH_LEN) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def resource_id(kind: Kind, uid: str) -> str:
    """The stable id of a resource: ``agt-``/``ain-`` + 20 hex of sha256(uid).

    Derived from the Kubernetes uid rather than random, so a crash between
    Persist and SendResponse (id in the store, not yet in ``status.id``)
    cannot mint a second id on the re-run.
    """
    return kind.id_prefix + hashlib.sha256(uid.encode()).hexdigest()[:ID_HEX_DIGITS]


def is_dns_label(text: str) -> bool:
    return len(text) <= LABEL_MAX and _DNS_LABEL.match(text) is not None


def bounded(base: str, suffix: str = "", limit: int = NAME_MAX) -> str:
    """``base + suffix`` if it fits in ``limit``, else ``prefix-<hash(base)>`` + suffix.

    ``base`` is a valid Kubernetes name (lower-case alphanumerics, ``-``,
    ``.``); the result is too, and ends with an alphanumeric.
    """
    if len(base) + len(suffix) <= limit:
        return base + suffix
    keep = limit - len(suffix) - _HASH_LEN - 1
    prefix = base[:keep].rstrip("-.")
    return f"{prefix}-{digest(base)}{suffix}"


def label_value(text: str) -> str:
    """``text`` as a label value (at most 63 characters, alphanumeric ends)."""
    return bounded(text, "", LABEL_MAX)


def service_account_name(instance_name: str) -> str:
    """ServiceAccount (and Role, RoleBinding) of an AgentInstance: ``<instance>-agent``."""
    return bounded(instance_name, "-agent", NAME_MAX)


def default_instance_name(agent_name: str) -> str:
    """The default AgentInstance of an Agent: ``<agent>-default``."""
    return bounded(agent_name, "-default", NAME_MAX)


def event_name(object_name: str, *identity: object) -> str:
    """A deterministic Event name: ``<object>.<16 hex of the identity>``.

    The same identity (what is being reported) always gives the same name,
    so re-posting after a crash hits AlreadyExists instead of duplicating.
    """
    key = "/".join(map(str, identity))
    return bounded(object_name, "." + digest(key, 16), NAME_MAX)


def slugify(text: str, max_length: int = LABEL_MAX) -> str:
    """A DNS-1123 label from free text; ``""`` if nothing ASCII-alphanumeric survives.

    NFKD-normalise (so ``é`` becomes ``e``), drop what is not ASCII,
    lower-case, turn every run of other characters into one ``-``, trim.
    Longer than ``max_length``: a readable prefix plus a hash of the whole
    slug, so two long display names that share a prefix do not collide.
    """
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = _NON_ALNUM.sub("-", ascii_text.lower()).strip("-")
    if len(slug) <= max_length:
        return slug
    keep = max(max_length - _HASH_LEN - 1, 0)
    prefix = slug[:keep].rstrip("-")
    hashed = digest(slug, min(_HASH_LEN, max_length))
    return f"{prefix}-{hashed}" if prefix else hashed
