# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: Kubernetes connection options and API client setup.

The options, their aliases, their ``K8S_AUTH_*`` environment variables and the
order in which configuration sources are tried are those of ``kubernetes.core``
(``module_utils/args_common.py`` and ``module_utils/k8s/client.py``), so a play
that talks to a cluster with ``kubernetes.core`` talks to the same cluster, as
the same user, with this collection.

Two steps, so the precedence rules can be tested without a cluster or files:

* :func:`resolve_auth` merges task parameters with the environment (pure);
* :func:`create_api_client` loads kubeconfig / in-cluster configuration into a
  fresh ``kubernetes.client.Configuration`` and applies the explicit values.

:class:`KubedebugError` is the only exception raised here.
"""

from __future__ import annotations

import os
import re
import traceback
import warnings
from collections.abc import Collection, Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.kubedebug.ephemeral.plugins.module_utils._errors import KubedebugError

try:
    import kubernetes  # type: ignore[import-untyped,unused-ignore]
    import kubernetes.client  # type: ignore[import-untyped,unused-ignore]
    import kubernetes.config  # type: ignore[import-untyped,unused-ignore]
    import urllib3
    from kubernetes.config import kube_config as _kube_config  # type: ignore[import-untyped,unused-ignore]
    from kubernetes.config.config_exception import ConfigException  # type: ignore[import-untyped,unused-ignore]
except ImportError:
    HAS_KUBERNETES = False
    KUBERNETES_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    HAS_KUBERNETES = True
    KUBERNETES_IMPORT_ERROR = None

# The oldest client this collection is tested with (the requirement every plugin
# documents). Older ones lack the ephemeralcontainers subresource calls.
KUBERNETES_MIN_VERSION = (24, 2, 0)


def _version_tuple(version: str) -> tuple[int, ...]:
    """``24.2.0`` -> (24, 2, 0); a pre-release suffix (``37.0.2a1``) counts as its release."""
    match = re.match(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?", version.strip())
    return tuple(int(part or 0) for part in match.groups()) if match else ()


def kubernetes_problem(version: str | None = None) -> str | None:
    """Why the installed ``kubernetes`` client cannot be used (missing, or older than 24.2.0), or None.

    The one place every front end asks; ``version`` is for tests.
    """
    if version is None:
        if not HAS_KUBERNETES:
            return "the kubernetes Python client is required on the host that runs this (pip install 'kubernetes>=24.2.0')"
        version = getattr(kubernetes, "__version__", "")
    wanted = ".".join(map(str, KUBERNETES_MIN_VERSION))
    have = _version_tuple(version or "")
    if not have or have < KUBERNETES_MIN_VERSION:
        return f"the kubernetes Python client {version or '(unknown version)'} is too old: {wanted} or newer is required (pip install 'kubernetes>={wanted}')"
    return None


AUTH_PROXY_HEADERS_SPEC: dict[str, dict[str, Any]] = {
    "proxy_basic_auth": {"type": "str", "no_log": True},
    "basic_auth": {"type": "str", "no_log": True},
    "user_agent": {"type": "str"},
}

# Same names, types and aliases as kubernetes.core's AUTH_ARG_SPEC. No defaults:
# None means "not given", which lets the environment and then kubeconfig decide.
# kubeconfig is not no_log because that would also mask its path in every error
# message; auth_from_module() masks the secrets inside a dict kubeconfig instead,
# as kubernetes.core >= 6 does. client_key is a path, not key material; the
# explicit no_log=False tells validate-modules that this was considered.
AUTH_ARG_SPEC: dict[str, dict[str, Any]] = {
    "kubeconfig": {"type": "raw"},
    "context": {"type": "str"},
    "host": {"type": "str"},
    "api_key": {"type": "str", "no_log": True},
    "username": {"type": "str"},
    "password": {"type": "str", "no_log": True},
    "validate_certs": {"type": "bool", "aliases": ["verify_ssl"]},
    "ca_cert": {"type": "path", "aliases": ["ssl_ca_cert"]},
    "client_cert": {"type": "path", "aliases": ["cert_file"]},
    "client_key": {"type": "path", "aliases": ["key_file"], "no_log": False},
    "proxy": {"type": "str"},
    "no_proxy": {"type": "str"},
    "proxy_headers": {"type": "dict", "options": AUTH_PROXY_HEADERS_SPEC},
    "persist_config": {"type": "bool"},
    "impersonate_user": {"type": "str"},
    "impersonate_groups": {"type": "list", "elements": "str"},
    # This collection's own (kubernetes.core has no such options); they shape the
    # EphemeralClient, not the Configuration (see client_options).
    "request_timeout": {"type": "float"},
    "request_retries": {"type": "int"},
}

# Defaults when neither the task nor the environment sets them; the same values as
# _client.REQUEST_TIMEOUT and _client.REQUEST_RETRIES (this layer does not import _client).
DEFAULT_REQUEST_TIMEOUT = 30.0
DEFAULT_REQUEST_RETRIES = 8

# Option name -> attribute of kubernetes.client.Configuration. Where the two
# differ, kubernetes.core also reads K8S_AUTH_<attribute> (K8S_AUTH_VERIFY_SSL,
# K8S_AUTH_SSL_CA_CERT, ...); those are the names its documentation lists.
_CLIENT_NAMES: dict[str, str] = {
    "validate_certs": "verify_ssl",
    "ca_cert": "ssl_ca_cert",
    "client_cert": "cert_file",
    "client_key": "key_file",
}

# kubernetes.core reads these two from their own env var only (no alias) and
# turns them into request headers, not Configuration attributes.
_IMPERSONATION_HEADERS: dict[str, str] = {
    "impersonate_user": "Impersonate-User",
    "impersonate_groups": "Impersonate-Group",
}

# kubernetes.core's env parsing: anything but these means true, so a typo in
# K8S_AUTH_VERIFY_SSL keeps verification on rather than turning it off.
_ENV_FALSE = ("0", "false", "no")

# Secret-bearing keys of a kubeconfig, for masking a dict kubeconfig in module
# output: kubernetes.core's list, plus the OIDC id-token.
_KUBECONFIG_SECRET_KEYS = frozenset(
    {
        "token",
        "password",
        "secret",
        "client-key-data",
        "client-certificate-data",
        "certificate-authority-data",
        "api_key",
        "access-token",
        "refresh-token",
        "id-token",
    }
)


def env_var_names(option: str) -> list[str]:
    """The environment variables read for ``option``, highest precedence first."""
    if option == "proxy_headers":
        return ["K8S_AUTH_PROXY_HEADERS_" + key.upper() for key in AUTH_PROXY_HEADERS_SPEC]
    names = ["K8S_AUTH_" + option.upper()]
    if option in _CLIENT_NAMES:
        names.append("K8S_AUTH_" + _CLIENT_NAMES[option].upper())
    return names


def _env_lookup(environ: Mapping[str, str], option: str) -> str | None:
    # kubernetes.core chains the two variables with `or`, so an empty primary
    # falls through to the alias; an empty value on its own counts as unset
    # (kubernetes.core would send an empty host or a true boolean).
    for name in env_var_names(option):
        value = environ.get(name)
        if value:
            return value
    return None


def _param_bool(option: str, value: Any) -> bool:
    # AnsibleModule has already converted bools; callers passing raw dicts
    # (tests, other plugins) get strict parsing rather than a silent guess.
    if isinstance(value, bool):
        return value
    try:
        return bool(boolean(value, strict=True))
    except TypeError as err:
        raise KubedebugError(f"Option {option} must be a boolean, got {value!r}.") from err


def _split_groups(value: str) -> list[str]:
    # kubernetes.core keeps the items as written; surrounding blanks would be
    # trimmed by the API server from the header value anyway, so strip them here.
    return [item.strip() for item in value.split(",") if item.strip()]


def _resolve_proxy_headers(value: Any, environ: Mapping[str, str]) -> dict[str, str] | None:
    if value is not None:
        if not isinstance(value, Mapping):
            raise KubedebugError(f"Option proxy_headers must be a dict, got {type(value).__name__}.")
        unknown = sorted(set(value) - set(AUTH_PROXY_HEADERS_SPEC))
        if unknown:
            raise KubedebugError(f"Option proxy_headers has unsupported keys {', '.join(unknown)}; supported: {', '.join(AUTH_PROXY_HEADERS_SPEC)}.")
        headers = {key: str(item) for key, item in value.items() if item is not None}
    else:
        headers = {}
        for key in AUTH_PROXY_HEADERS_SPEC:
            env_value = environ.get("K8S_AUTH_PROXY_HEADERS_" + key.upper())
            if env_value:
                headers[key] = env_value
    return headers or None


def _number(option: str, value: Any, source: str) -> float | int:
    """A request_timeout (seconds, > 0) or request_retries (a count, >= 0) from a task or the environment."""
    integer = AUTH_ARG_SPEC[option]["type"] == "int"
    try:
        if isinstance(value, bool):
            raise ValueError
        number: float | int = int(value) if integer else float(value)
        if integer and isinstance(value, float) and value != number:
            raise ValueError
    except (TypeError, ValueError) as err:
        kind = "a whole number" if integer else "a number of seconds"
        raise KubedebugError(f"{source} must be {kind}, got {value!r}.") from err
    if option == "request_timeout" and not 0 < number <= 3600:
        raise KubedebugError(f"{source} must be more than 0 and at most 3600 seconds, got {value!r}: the time to wait for one answer of the API server.")
    if option == "request_retries" and not 0 <= number <= 100:
        raise KubedebugError(f"{source} must be between 0 and 100, got {value!r}: how often one request is tried again after a transient failure.")
    return number


def client_options(auth: Mapping[str, Any]) -> dict[str, Any]:
    """The ``EphemeralClient`` keywords that the options of :func:`resolve_auth` set: timeout and retries."""
    timeout = auth.get("request_timeout")
    retries = auth.get("request_retries")
    return {
        "request_timeout": DEFAULT_REQUEST_TIMEOUT if timeout is None else float(timeout),
        "retries": DEFAULT_REQUEST_RETRIES if retries is None else int(retries),
    }


def resolve_auth(params: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """Merge connection options from task parameters and the environment.

    For each option the parameter wins when it is not None (under its name or,
    for callers that did not resolve aliases, under the kubernetes client name),
    then ``K8S_AUTH_<OPTION>``, then ``K8S_AUTH_<CLIENT_NAME>`` (e.g.
    ``K8S_AUTH_VERIFY_SSL``). Environment booleans are false only for ``0``,
    ``false`` and ``no`` (any case). ``K8S_AUTH_IMPERSONATE_GROUPS`` is a comma
    separated list; ``proxy_headers`` comes from ``K8S_AUTH_PROXY_HEADERS_<KEY>``.

    Returns a dict with every key of :data:`AUTH_ARG_SPEC`; None means unset.
    Reads nothing but its arguments.
    """
    auth: dict[str, Any] = {}
    for option, spec in AUTH_ARG_SPEC.items():
        value = params.get(option)
        if value is None and option in _CLIENT_NAMES:
            value = params.get(_CLIENT_NAMES[option])
        option_type = spec.get("type")

        if option == "proxy_headers":
            auth[option] = _resolve_proxy_headers(value, environ)
            continue

        if value is None:
            env_value = _env_lookup(environ, option)
            if env_value is None:
                auth[option] = None
            elif option_type == "bool":
                auth[option] = env_value.lower() not in _ENV_FALSE
            elif option_type == "list":
                auth[option] = _split_groups(env_value)
            elif option_type in ("int", "float"):
                auth[option] = _number(option, env_value, f"{env_var_names(option)[0]} (option {option})")
            else:
                auth[option] = env_value
            continue

        if option_type == "bool":
            value = _param_bool(option, value)
        elif option_type in ("int", "float"):
            value = _number(option, value, f"Option {option}")
        elif option_type == "list":
            if isinstance(value, str):
                value = _split_groups(value)
            elif isinstance(value, (list, tuple)):
                value = [str(item) for item in value]
            else:
                raise KubedebugError(f"Option {option} must be a list of strings, got {type(value).__name__}.")
        elif option == "kubeconfig":
            if isinstance(value, os.PathLike):
                value = os.fspath(value)
            if not isinstance(value, (str, Mapping)):
                # kubernetes.core silently ignores other types and ends up
                # talking to http://localhost; refuse instead.
                raise KubedebugError(f"Option kubeconfig must be a file path or a dict, got {type(value).__name__}.")
            if isinstance(value, Mapping):
                value = dict(value)
        auth[option] = value

    if auth["host"]:
        # kubernetes.core strips trailing slashes; the client joins paths with "/".
        auth["host"] = str(auth["host"]).rstrip("/")
    return auth


class _ModuleLike(Protocol):
    params: dict[str, Any]
    no_log_values: set[str]


class _PluginLike(Protocol):
    def get_option(self, option: str, hostvars: dict[str, object] | None = None) -> Any: ...


def _kubeconfig_secrets(data: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(data, Mapping):
        for key, value in data.items():
            if key in _KUBECONFIG_SECRET_KEYS and isinstance(value, str):
                found.add(value)
            else:
                found |= _kubeconfig_secrets(value)
    elif isinstance(data, list):
        for item in data:
            found |= _kubeconfig_secrets(item)
    return found


def _url_password(url: Any) -> str | None:
    """The password of a ``scheme://user:password@host`` URL, or None."""
    if not isinstance(url, str) or "@" not in url:
        return None
    try:
        return urlsplit(url).password or None
    except ValueError:  # not a URL at all: the client refuses it later, with its own message
        return None


def auth_secrets(auth: Mapping[str, Any]) -> set[str]:
    """Every credential in resolved options (the output of :func:`resolve_auth`), to hide from output.

    Besides the no_log options this covers what Ansible cannot know is secret:
    values taken from ``K8S_AUTH_*`` variables (never module parameters), the
    password of a ``proxy`` or ``host`` URL written ``scheme://user:password@...``,
    and the credentials inside a kubeconfig dict.
    """
    found: set[str] = set()
    for option in ("api_key", "password"):
        if auth.get(option):
            found.add(str(auth[option]))
    for key, header in (auth.get("proxy_headers") or {}).items():
        if header and AUTH_PROXY_HEADERS_SPEC[key].get("no_log"):
            found.add(str(header))
    for option in ("host", "proxy"):
        password = _url_password(auth.get(option))
        if password:
            found.add(password)
    kubeconfig = auth.get("kubeconfig")
    if isinstance(kubeconfig, Mapping):
        found |= _kubeconfig_secrets(kubeconfig)
    return found


def client_secrets(api_client: Any) -> set[str]:
    """The credentials a built client sends: whatever kubeconfig, in-cluster token or options gave it.

    A token read from a kubeconfig file or the service account never passes
    through a module parameter, so Ansible would not know to mask it.
    """
    configuration = api_client.configuration
    found: set[str] = set()
    headers = list((getattr(configuration, "api_key", None) or {}).values())
    # The Proxy-Authorization and Authorization headers made from proxy_headers (base64 of user:password).
    headers += [value for name, value in (getattr(configuration, "proxy_headers", None) or {}).items() if "authorization" in str(name).lower()]
    for value in headers:
        if isinstance(value, str) and value:
            found.add(value)
            scheme, credential = value.partition(" ")[::2]
            if credential and scheme.lower() in ("bearer", "basic"):
                found.add(credential)
    password = getattr(configuration, "password", None)
    if isinstance(password, str) and password:
        found.add(password)
    return found


def auth_from_module(module: _ModuleLike) -> dict[str, Any]:
    """:func:`resolve_auth` for an ``AnsibleModule`` built with :data:`AUTH_ARG_SPEC`.

    Registers every credential found with the module's ``no_log_values``, so that
    no result, warning or message of the module can show one (see :func:`auth_secrets`).
    """
    # kubeconfig is not no_log (that would hide paths too): the credentials of an
    # inline kubeconfig are among those registered here instead.
    auth = resolve_auth(module.params, os.environ)
    module.no_log_values.update(auth_secrets(auth))
    return auth


def auth_from_plugin(plugin: _PluginLike, direct: Collection[str] = ()) -> dict[str, Any]:
    """:func:`resolve_auth` for a plugin whose options come from the auth doc fragments.

    Call after ``plugin.set_options(...)``; ``direct`` names the options (or aliases) it was given directly there.
    """
    params: dict[str, Any] = {}
    get_origin = getattr(plugin, "get_option_and_origin", None)
    for option in AUTH_ARG_SPEC:
        try:
            value, origin = plugin.get_option(option), None
            given = option in direct or any(alias in direct for alias in AUTH_ARG_SPEC[option].get("aliases", ()))
            if get_origin is not None and not given:
                # ansible-core 2.16 and 2.17 work the origin out again from the configuration alone, blind to the
                # options set_options was given: (None, "default") for a lookup's kubeconfig= keyword, or the env
                # var's value and origin when one is set too. The value is get_option's; an origin counts only for
                # the value it came with, and never for an option given directly.
                origin_value, origin = get_origin(option)
                if origin_value != value:
                    origin = None
        except KeyError as err:
            raise KubedebugError(
                f"Plugin does not declare the connection option {option}; "
                "extend the kubedebug.ephemeral.auth and kubedebug.ephemeral.auth.plugins doc fragments."
            ) from err
        if isinstance(origin, str) and origin.startswith("env:"):
            # Ansible's config manager parses env booleans with its own rules
            # ("off" or a typo becomes false, "" too): leave env vars to
            # resolve_auth so modules and plugins read them identically.
            value = None
        params[option] = value
    return resolve_auth(params, os.environ)


class _RepeatedHeaderName(str):
    """A header name that compares equal only to itself.

    ApiClient.default_headers is a dict, and the API server wants one
    Impersonate-Group header per group (it does not split a comma list). Keys
    that hash by identity let the dict, and urllib3's case-insensitive header
    dict (via lower()), hold the same name several times; kubernetes.core uses
    the same trick.
    """

    _lowered: _RepeatedHeaderName | None = None

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other

    def __ne__(self, other: object) -> bool:
        return self is not other

    def lower(self) -> str:
        if self._lowered is None:
            lowered = str.lower(self)
            self._lowered = self if str.__eq__(lowered, self) else _RepeatedHeaderName(lowered)
        return self._lowered


def _require_kubernetes() -> None:
    if not HAS_KUBERNETES:
        raise KubedebugError(
            "The kubernetes Python library is required to talk to the cluster (pip install kubernetes). Import error: " + (KUBERNETES_IMPORT_ERROR or "unknown")
        )


def _kubeconfig_label(kubeconfig: Any) -> str:
    if isinstance(kubeconfig, Mapping):
        return "the kubeconfig dict"
    if kubeconfig:
        return f"kubeconfig {kubeconfig}"
    return f"kubeconfig {_kube_config.KUBE_CONFIG_DEFAULT_LOCATION} (the default)"


def _available_contexts(kubeconfig: Any) -> list[str] | None:
    # Only on the error path, to tell the user which contexts exist.
    try:
        if isinstance(kubeconfig, Mapping):
            return [str(item.get("name")) for item in kubeconfig.get("contexts") or [] if isinstance(item, Mapping)]
        contexts, _current = kubernetes.config.list_kube_config_contexts(config_file=kubeconfig or None)
        return [str(item.get("name")) for item in contexts]
    except Exception:  # best effort: the original error is reported anyway
        return None


def _load_kubeconfig(auth: Mapping[str, Any], configuration: Any) -> None:
    kubeconfig = auth.get("kubeconfig")
    context = auth.get("context")
    label = _kubeconfig_label(kubeconfig)
    if isinstance(kubeconfig, str) and kubeconfig:
        # The client skips missing files of a ':'-joined list (like kubectl's
        # KUBECONFIG) and only says "No configuration found"; name the path.
        paths = [path for path in kubeconfig.split(_kube_config.ENV_KUBECONFIG_PATH_SEPARATOR) if path]
        if not any(os.path.exists(os.path.expanduser(path)) for path in paths):
            raise KubedebugError(
                f"The kubeconfig file {kubeconfig} does not exist. Set the kubeconfig option "
                "(or K8S_AUTH_KUBECONFIG) to an existing file, or leave it unset to use "
                "the in-cluster service account or ~/.kube/config."
            )
    try:
        if isinstance(kubeconfig, Mapping):
            kubernetes.config.load_kube_config_from_dict(
                config_dict=dict(kubeconfig),
                context=context,
                client_configuration=configuration,
                persist_config=bool(auth.get("persist_config")),
            )
        else:
            kubernetes.config.load_kube_config(
                config_file=kubeconfig or None,
                context=context,
                client_configuration=configuration,
                persist_config=bool(auth.get("persist_config")),
            )
    except Exception as err:  # the loader raises anything from YAML errors to exec plugin failures
        if context:
            available = _available_contexts(kubeconfig)
            if available is not None and context not in available:
                raise KubedebugError(
                    f"Context {context} not found in {label}; available contexts: "
                    f"{', '.join(available) or 'none'}. Set the context option (or K8S_AUTH_CONTEXT) "
                    "to one of them, or leave it unset to use the current context."
                ) from err
        raise KubedebugError(f"Could not load {label}: {err}. Check the kubeconfig and context options (K8S_AUTH_KUBECONFIG, K8S_AUTH_CONTEXT).") from err


def _load_configuration(auth: Mapping[str, Any], configuration: Any) -> None:
    """Fill ``configuration`` from kubeconfig or the in-cluster service account, as kubernetes.core does."""
    host = auth.get("host")
    if host and (auth.get("api_key") or (auth.get("username") and auth.get("password")) or (auth.get("client_cert") and auth.get("client_key"))):
        # Enough to authenticate without any file: do not let an unrelated
        # ~/.kube/config or service account contribute settings.
        return
    if auth.get("kubeconfig") or auth.get("context"):
        _load_kubeconfig(auth, configuration)
        return
    try:
        kubernetes.config.load_incluster_config(client_configuration=configuration)
        return
    except ConfigException as incluster_err:
        in_cluster_error = str(incluster_err)
    default = _kube_config.KUBE_CONFIG_DEFAULT_LOCATION
    default_paths = [path for path in default.split(_kube_config.ENV_KUBECONFIG_PATH_SEPARATOR) if path]
    if not any(os.path.exists(os.path.expanduser(path)) for path in default_paths):
        raise KubedebugError(
            "No Kubernetes configuration found: not running in a cluster "
            f"({in_cluster_error}) and no kubeconfig at {_kube_config.KUBE_CONFIG_DEFAULT_LOCATION}. "
            "Set the kubeconfig option (or K8S_AUTH_KUBECONFIG), or host with api_key "
            "(K8S_AUTH_HOST, K8S_AUTH_API_KEY) or with client_cert and client_key."
        )
    _load_kubeconfig(auth, configuration)


def _apply_overrides(auth: Mapping[str, Any], configuration: Any) -> None:
    """Explicit options win over whatever kubeconfig or in-cluster config set."""
    if auth.get("host"):
        configuration.host = auth["host"]
    api_key = auth.get("api_key")
    username, password = auth.get("username"), auth.get("password")
    if username is not None:
        configuration.username = username
    if password is not None:
        configuration.password = password
    if api_key:
        configuration.api_key = {"authorization": f"Bearer {api_key}"}
    elif username and password:
        # The client only sends api_key["authorization"]; username/password on
        # Configuration are never used (kubernetes.core sets them to no effect).
        # Send them as HTTP Basic, which is what the kubeconfig loader does for
        # a kubeconfig user with username/password.
        configuration.api_key = {"authorization": urllib3.util.make_headers(basic_auth=f"{username}:{password}")["authorization"]}
    if api_key or (username and password):
        # A kubeconfig/in-cluster token comes with a hook that re-inserts that
        # token before each request (client >= 36 under "BearerToken", which
        # outranks "authorization"); it would silently replace ours.
        configuration.refresh_api_key_hook = None
        if hasattr(configuration, "api_key_prefix"):
            configuration.api_key_prefix = {}

    if auth.get("validate_certs") is not None:
        configuration.verify_ssl = bool(auth["validate_certs"])
    if auth.get("ca_cert") is not None:
        configuration.ssl_ca_cert = auth["ca_cert"]
    if auth.get("client_cert") is not None:
        configuration.cert_file = auth["client_cert"]
    if auth.get("client_key") is not None:
        configuration.key_file = auth["client_key"]
    if auth.get("proxy") is not None:
        configuration.proxy = auth["proxy"]
    if auth.get("no_proxy") is not None:
        configuration.no_proxy = auth["no_proxy"]
    if auth.get("proxy_headers"):
        configuration.proxy_headers = urllib3.util.make_headers(**auth["proxy_headers"])


def _impersonation_headers(auth: Mapping[str, Any]) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    user = auth.get("impersonate_user")
    if auth.get("impersonate_groups") and not user:
        # The API server answers 400 "requested ... without impersonating a user name" to every request.
        raise KubedebugError(
            "Option impersonate_groups (K8S_AUTH_IMPERSONATE_GROUPS) needs impersonate_user (K8S_AUTH_IMPERSONATE_USER): "
            "the API server refuses to impersonate groups without a user name. Set impersonate_user too, or remove impersonate_groups."
        )
    if user:
        headers.append((_IMPERSONATION_HEADERS["impersonate_user"], str(user)))
    for group in auth.get("impersonate_groups") or []:
        headers.append((_RepeatedHeaderName(_IMPERSONATION_HEADERS["impersonate_groups"]), str(group)))
    return headers


def create_api_client(auth: Mapping[str, Any]) -> kubernetes.client.ApiClient:
    """Build an ApiClient from the output of :func:`resolve_auth`.

    Order, as in kubernetes.core: with host plus api_key, username+password or
    client_cert+client_key no file is read; else an explicit kubeconfig/context
    is loaded; else the in-cluster service account, then the default kubeconfig
    (``$KUBECONFIG`` or ``~/.kube/config``). Explicit options then override.

    The process-wide default Configuration is neither read nor changed, so two
    clients for different clusters can coexist. TLS verification stays on
    unless validate_certs is false or the kubeconfig cluster sets
    insecure-skip-tls-verify.
    """
    _require_kubernetes()
    configuration = kubernetes.client.Configuration()
    # kubernetes >= 36 picks HTTPS_PROXY/NO_PROXY up from the environment when
    # Configuration() is built. kubernetes.core documents that they are
    # ignored (only proxy/K8S_AUTH_PROXY count), so drop them; the property
    # setter also stops the client re-deriving the proxy when host changes.
    configuration.proxy = None
    configuration.no_proxy = None
    _load_configuration(auth, configuration)
    _apply_overrides(auth, configuration)
    # No retries inside urllib3: by default it retries GETs (not PATCHes) three times on its
    # own, sleeping whatever Retry-After a 429 or 503 asks, unbounded and uncounted. Every
    # retry is EphemeralClient's, for every verb, with a cap, a budget and a count.
    configuration.retries = False

    headers = _impersonation_headers(auth)
    if configuration.verify_ssl is False:
        _silence_insecure_request_warnings(configuration.host)
    try:
        client = kubernetes.client.ApiClient(configuration=configuration)
    except Exception as err:  # e.g. an unreadable certificate file, depending on the urllib3 version
        raise KubedebugError(f"Could not create the Kubernetes API client: {err}") from err
    for name, value in headers:
        client.set_default_header(name, value)
    return client


def _silence_insecure_request_warnings(host: str | None) -> None:
    # urllib3 warns on every unverified request, from whichever thread makes it; a
    # module's stderr is lost and the lookup's shows as "errantly sent data directly
    # to stderr". The front ends say it once instead (insecure_tls_warning). Only
    # this server's warnings are filtered, so other plugins in the process keep theirs.
    hostname = urlsplit(host or "").hostname
    if hostname:
        warnings.filterwarnings(
            "ignore",
            message=f"Unverified HTTPS request is being made to host '{re.escape(hostname)}'",
            category=urllib3.exceptions.InsecureRequestWarning,
        )


def insecure_tls_warning(api_client: Any) -> str | None:
    """The warning for a client that does not verify the API server's certificate, or None.

    Front ends show it once per task, whatever the number of pods and threads.
    """
    configuration = api_client.configuration
    if getattr(configuration, "verify_ssl", True) is not False:
        return None
    return (
        f"TLS certificate verification of the API server {configuration.host} is off (validate_certs: false, "
        "K8S_AUTH_VERIFY_SSL=false, or insecure-skip-tls-verify in the kubeconfig): anyone on the network path can "
        "impersonate the API server and read the credentials sent to it. Give the API server's CA with ca_cert "
        "(K8S_AUTH_SSL_CA_CERT) or the kubeconfig's certificate-authority instead."
    )
