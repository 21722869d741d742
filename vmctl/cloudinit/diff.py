"""Field-level differences in cloud-init content, with secrets masked before anything is shown."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from vmctl.model import CloudInitSpec

SENSITIVE = "(sensitive)"
# Keys whose values are secrets wherever they appear in user-data (cloud-init's own names first).
_SECRET_KEYS = {
    "password",
    "passwd",
    "plain_text_passwd",
    "hashed_passwd",
    "chpasswd",
    "ssh_keys",
    "private_key",
    "ssh_private_key",
    "token",
    "secret",
    "api_key",
}
_SECRET_SUFFIXES = ("_private", "_password", "_passwd", "_secret", "_token", "_key_private")

Leaf = tuple[str, Any]


def is_secret(path: str, extra: tuple[str, ...]) -> bool:
    """A path is secret if any of its keys is a known secret name or one the user marked sensitive."""
    keys = [k for k in path.replace("]", "").replace("[", ".").split(".") if k and not k.isdigit()]
    for index, key in enumerate(keys):
        lowered = key.lower()
        if lowered in _SECRET_KEYS or lowered.endswith(_SECRET_SUFFIXES) or key in extra:
            return True
        if ".".join(keys[: index + 1]) in extra:
            return True
    return False


def mask(value: Any, path: str, extra: tuple[str, ...]) -> Any:
    """`value` with every secret inside it replaced by (sensitive)."""
    if is_secret(path, extra):
        return SENSITIVE
    if isinstance(value, dict):
        return {k: mask(v, f"{path}.{k}", extra) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v, f"{path}[{i}]", extra) for i, v in enumerate(value)]
    return value


def mask_text(text: str, secrets: tuple[str, ...]) -> str:
    """`text` with every sensitive variable's value in it replaced by (sensitive): quoted ones always,
    bare ones when long enough not to be mistaken for parts of ordinary words."""
    for secret in secrets:
        text = text.replace(repr(secret), SENSITIVE)
        if len(secret) >= 4:
            text = text.replace(secret, SENSITIVE)
    return text


def mask_secrets(value: Any, secrets: tuple[str, ...]) -> Any:
    """`value` with every string that holds a sensitive variable's value replaced by (sensitive)."""
    if not secrets:
        return value
    if isinstance(value, dict):
        return {k: mask_secrets(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_secrets(v, secrets) for v in value]
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        text = str(value)
        # A short value is masked where it is the whole value; within longer text only a value that
        # cannot be mistaken for part of an ordinary word is.
        hidden = any(secret == text or (len(secret) >= 4 and secret in text) for secret in secrets)
        return SENSITIVE if hidden else value
    return value


def stored_form(spec: CloudInitSpec) -> CloudInitSpec:
    """What vmctl keeps in domain metadata: secrets masked (keys known or marked sensitive, and
    sensitive variables' values wherever they are), scripts reduced to a digest.

    Secrets never leave the seed ISO; the seed's digest still tells that something changed.
    """
    extra, secrets = spec.sensitive, spec.secrets
    user_data: Any = spec.user_data
    if isinstance(user_data, str):
        digest = hashlib.sha256(user_data.encode()).hexdigest()[:12]
        user_data = f"({len(user_data.splitlines())} lines of text, sha256 {digest})"
    else:
        user_data = mask_secrets(mask(user_data, "cloud_init.user_data", extra), secrets)
    return replace(
        spec,
        user_data=user_data,
        meta_data=mask_secrets(mask(dict(spec.meta_data), "cloud_init.meta_data", extra), secrets),
        network_config=mask_secrets(mask(spec.network_config, "cloud_init.network_config", extra), secrets),
        secrets=(),
    )


def _leaves(value: Any, path: str) -> Iterator[Leaf]:
    """Mappings are compared key by key; lists and scalars are compared whole."""
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}")
    else:
        yield path, value


def _as_doc(spec: CloudInitSpec | None) -> dict[str, Any]:
    if spec is None:
        return {}
    doc: dict[str, Any] = {}
    if spec.user_data is not None:
        doc["user_data"] = spec.user_data
    if spec.meta_data:
        doc["meta_data"] = dict(spec.meta_data)
    if spec.network_config is not None:
        doc["network_config"] = dict(spec.network_config)
    return doc


def cloud_init_diff(stored: CloudInitSpec | None, desired: CloudInitSpec | None) -> list[tuple[str, Any, Any, bool]]:
    """(path, before, after, sensitive) for every leaf that differs between the stored (masked) content
    and the desired content, compared in the same masked form."""
    old = dict(_leaves(_as_doc(stored), "cloud_init"))
    new = dict(_leaves(_as_doc(stored_form(desired) if desired else None), "cloud_init"))
    return [
        (path, old.get(path), new.get(path), SENSITIVE in (old.get(path), new.get(path)))
        for path in sorted(old.keys() | new.keys())
        if old.get(path) != new.get(path)
    ]
