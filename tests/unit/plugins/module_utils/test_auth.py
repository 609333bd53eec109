# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for plugins/module_utils/_auth.py: option resolution and API client setup."""

from __future__ import annotations

import base64
import http.server
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import kubernetes.client
import kubernetes.config
import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from kubernetes.config import kube_config

from ansible_collections.kubedebug.ephemeral.plugins.doc_fragments.auth import ModuleDocFragment
from ansible_collections.kubedebug.ephemeral.plugins.module_utils import _auth, _client
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._auth import (
    AUTH_ARG_SPEC,
    AUTH_PROXY_HEADERS_SPEC,
    auth_from_module,
    auth_from_plugin,
    create_api_client,
    env_var_names,
    resolve_auth,
)
from ansible_collections.kubedebug.ephemeral.plugins.module_utils._errors import KubedebugError
from ansible_collections.kubedebug.ephemeral.tests.unit.local_http import serving

FAKE_CA = "-----BEGIN CERTIFICATE-----\nZmFrZSBjYQ==\n-----END CERTIFICATE-----\n"
FAKE_CERT = "-----BEGIN CERTIFICATE-----\nZmFrZSBjZXJ0\n-----END CERTIFICATE-----\n"
FAKE_KEY = "-----BEGIN PRIVATE KEY-----\nZmFrZSBrZXk=\n-----END PRIVATE KEY-----\n"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test may see the developer's cluster, proxy or K8S_AUTH_* settings."""
    for name in list(os.environ):
        if name.startswith("K8S_AUTH_") or name.lower() in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
            monkeypatch.delenv(name)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_PORT", raising=False)
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(tmp_path / "no-default-kubeconfig"))


def bearer(client: Any) -> str | None:
    """The Authorization value the client would send (portable across client 32 and 37)."""
    settings = client.configuration.auth_settings()
    return settings["BearerToken"]["value"] if "BearerToken" in settings else None


# --------------------------------------------------------------------------- resolve_auth


def test_nothing_given_resolves_every_option_to_none() -> None:
    assert resolve_auth({}, {}) == dict.fromkeys(AUTH_ARG_SPEC)


@pytest.mark.parametrize(
    ("option", "primary_env", "alias_env", "value_a", "value_b", "value_c"),
    [
        ("validate_certs", "K8S_AUTH_VALIDATE_CERTS", "K8S_AUTH_VERIFY_SSL", False, "no", "yes"),
        ("ca_cert", "K8S_AUTH_CA_CERT", "K8S_AUTH_SSL_CA_CERT", "/param/ca", "/env/ca", "/alias/ca"),
        ("client_cert", "K8S_AUTH_CLIENT_CERT", "K8S_AUTH_CERT_FILE", "/param/crt", "/env/crt", "/alias/crt"),
        ("client_key", "K8S_AUTH_CLIENT_KEY", "K8S_AUTH_KEY_FILE", "/param/key", "/env/key", "/alias/key"),
    ],
)
def test_precedence_param_then_env_then_client_name_env(option: str, primary_env: str, alias_env: str, value_a: Any, value_b: str, value_c: str) -> None:
    environ = {primary_env: value_b, alias_env: value_c}
    expected_b: Any = False if option == "validate_certs" else value_b
    expected_c: Any = True if option == "validate_certs" else value_c

    assert resolve_auth({option: value_a}, environ)[option] == value_a
    assert resolve_auth({option: None}, environ)[option] == expected_b
    assert resolve_auth({}, {alias_env: value_c})[option] == expected_c


@pytest.mark.parametrize(
    ("option", "env"),
    [
        ("kubeconfig", "K8S_AUTH_KUBECONFIG"),
        ("context", "K8S_AUTH_CONTEXT"),
        ("host", "K8S_AUTH_HOST"),
        ("api_key", "K8S_AUTH_API_KEY"),
        ("username", "K8S_AUTH_USERNAME"),
        ("password", "K8S_AUTH_PASSWORD"),
        ("proxy", "K8S_AUTH_PROXY"),
        ("no_proxy", "K8S_AUTH_NO_PROXY"),
        ("impersonate_user", "K8S_AUTH_IMPERSONATE_USER"),
    ],
)
def test_string_options_read_their_env_var_only_when_the_param_is_none(option: str, env: str) -> None:
    assert resolve_auth({}, {env: "from-env"})[option] == "from-env"
    assert resolve_auth({option: "from-param"}, {env: "from-env"})[option] == "from-param"


def test_param_given_under_the_client_name_counts_as_the_option() -> None:
    auth = resolve_auth({"verify_ssl": False, "ssl_ca_cert": "/ca", "cert_file": "/crt", "key_file": "/key"}, {})
    assert (auth["validate_certs"], auth["ca_cert"], auth["client_cert"], auth["client_key"]) == (
        False,
        "/ca",
        "/crt",
        "/key",
    )


def test_empty_env_var_falls_through_to_the_alias_or_counts_as_unset() -> None:
    assert resolve_auth({}, {"K8S_AUTH_VALIDATE_CERTS": "", "K8S_AUTH_VERIFY_SSL": "false"})["validate_certs"] is False
    assert resolve_auth({}, {"K8S_AUTH_VERIFY_SSL": ""})["validate_certs"] is None
    assert resolve_auth({}, {"K8S_AUTH_HOST": ""})["host"] is None


@pytest.mark.parametrize("value", ["0", "false", "False", "FALSE", "no", "NO"])
def test_env_bool_false_values(value: str) -> None:
    auth = resolve_auth({}, {"K8S_AUTH_VERIFY_SSL": value, "K8S_AUTH_PERSIST_CONFIG": value})
    assert auth["validate_certs"] is False
    assert auth["persist_config"] is False


@pytest.mark.parametrize("value", ["1", "true", "yes", "on", "off", "n", "disabled", "no "])
def test_env_bool_anything_else_is_true_so_typos_keep_tls_verification_on(value: str) -> None:
    assert resolve_auth({}, {"K8S_AUTH_VERIFY_SSL": value})["validate_certs"] is True


def test_param_bool_strings_are_parsed_strictly() -> None:
    assert resolve_auth({"validate_certs": "no"}, {})["validate_certs"] is False
    assert resolve_auth({"persist_config": "yes"}, {})["persist_config"] is True
    with pytest.raises(KubedebugError, match="validate_certs must be a boolean"):
        resolve_auth({"validate_certs": "maybe"}, {})


def test_impersonate_groups_env_is_a_comma_separated_list() -> None:
    assert resolve_auth({}, {"K8S_AUTH_IMPERSONATE_GROUPS": "dev,ops"})["impersonate_groups"] == ["dev", "ops"]
    assert resolve_auth({}, {"K8S_AUTH_IMPERSONATE_GROUPS": " dev , ,ops,"})["impersonate_groups"] == ["dev", "ops"]
    environ = {"K8S_AUTH_IMPERSONATE_GROUPS": "dev,ops"}
    assert resolve_auth({"impersonate_groups": ["admins"]}, environ)["impersonate_groups"] == ["admins"]
    assert resolve_auth({"impersonate_groups": "a,b"}, {})["impersonate_groups"] == ["a", "b"]


def test_proxy_headers_from_env() -> None:
    environ = {
        "K8S_AUTH_PROXY_HEADERS_PROXY_BASIC_AUTH": "joe:secret",
        "K8S_AUTH_PROXY_HEADERS_USER_AGENT": "kd/1.0",
        "K8S_AUTH_PROXY_HEADERS_BASIC_AUTH": "",
    }
    assert resolve_auth({}, environ)["proxy_headers"] == {"proxy_basic_auth": "joe:secret", "user_agent": "kd/1.0"}


def test_proxy_headers_param_wins_over_env_and_drops_unset_suboptions() -> None:
    environ = {"K8S_AUTH_PROXY_HEADERS_USER_AGENT": "env/1.0"}
    params = {"proxy_headers": {"proxy_basic_auth": None, "basic_auth": None, "user_agent": "param/1.0"}}
    assert resolve_auth(params, environ)["proxy_headers"] == {"user_agent": "param/1.0"}
    assert resolve_auth({}, {})["proxy_headers"] is None
    with pytest.raises(KubedebugError, match="unsupported keys bogus"):
        resolve_auth({"proxy_headers": {"bogus": "x"}}, {})


def test_host_loses_trailing_slashes() -> None:
    assert resolve_auth({"host": "https://k8s.example:6443//"}, {})["host"] == "https://k8s.example:6443"


def test_kubeconfig_accepts_path_or_dict_only(tmp_path: Path) -> None:
    assert resolve_auth({"kubeconfig": tmp_path / "cfg"}, {})["kubeconfig"] == str(tmp_path / "cfg")
    assert resolve_auth({"kubeconfig": {"apiVersion": "v1"}}, {})["kubeconfig"] == {"apiVersion": "v1"}
    with pytest.raises(KubedebugError, match="file path or a dict"):
        resolve_auth({"kubeconfig": ["a", "b"]}, {})


def test_resolve_auth_does_not_read_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("K8S_AUTH_HOST", "https://from-os-environ")
    assert resolve_auth({}, {})["host"] is None


def test_env_var_names_primary_first() -> None:
    assert env_var_names("validate_certs") == ["K8S_AUTH_VALIDATE_CERTS", "K8S_AUTH_VERIFY_SSL"]
    assert env_var_names("host") == ["K8S_AUTH_HOST"]


# --------------------------------------------------------------------------- argument spec and doc fragment


def test_arg_spec_resolves_aliases_types_and_no_log() -> None:
    result = ArgumentSpecValidator(AUTH_ARG_SPEC).validate(
        {
            "verify_ssl": "no",
            "ssl_ca_cert": "~/ca.pem",
            "cert_file": "/c",
            "key_file": "/k",
            "api_key": "s3cr3t",
            "password": "pw",
            "impersonate_groups": ["a"],
            "proxy_headers": {"proxy_basic_auth": "u:p"},
        }
    )
    assert result.error_messages == []
    params = result.validated_parameters
    assert params["validate_certs"] is False
    assert params["ca_cert"] == os.path.expanduser("~/ca.pem")
    assert (params["client_cert"], params["client_key"]) == ("/c", "/k")
    assert {"s3cr3t", "pw", "u:p"} <= result._no_log_values


def _fragment_options(var: str) -> dict[str, Any]:
    options: dict[str, Any] = yaml.safe_load(getattr(ModuleDocFragment, var))["options"]
    return options


def test_doc_fragment_matches_the_arg_spec() -> None:
    documented = _fragment_options("DOCUMENTATION")
    assert set(documented) == set(AUTH_ARG_SPEC)
    for name, spec in AUTH_ARG_SPEC.items():
        doc = documented[name]
        assert doc.get("type", "str") == spec.get("type", "str"), name
        assert doc.get("aliases", []) == spec.get("aliases", []), name
        assert doc.get("elements") == spec.get("elements"), name
        for env in env_var_names(name):
            assert f"E({env})" in yaml.safe_dump(doc), (name, env)
    assert set(documented["proxy_headers"]["suboptions"]) == set(AUTH_PROXY_HEADERS_SPEC)


def test_plugins_fragment_declares_env_vars_lowest_precedence_first() -> None:
    plugin_options = _fragment_options("PLUGINS")
    assert set(plugin_options) == set(AUTH_ARG_SPEC) - {"proxy_headers"}
    for name, doc in plugin_options.items():
        # Ansible's config manager lets the last env entry win.
        assert [entry["name"] for entry in doc["env"]] == list(reversed(env_var_names(name))), name
        assert "vars" not in doc


# --------------------------------------------------------------------------- adapters


class FakeModule:
    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params
        self.no_log_values: set[str] = set()


def test_auth_from_module_reads_os_environ_and_masks_inline_kubeconfig_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("K8S_AUTH_CONTEXT", "env-context")
    kubeconfig = {
        "apiVersion": "v1",
        "clusters": [{"name": "c", "cluster": {"server": "https://k", "certificate-authority-data": "Q0E="}}],
        "users": [{"name": "u", "user": {"token": "tok-123"}}],
    }
    module = FakeModule({**dict.fromkeys(AUTH_ARG_SPEC), "kubeconfig": kubeconfig})
    auth = auth_from_module(module)
    assert auth["context"] == "env-context"
    assert auth["kubeconfig"] == kubeconfig
    assert module.no_log_values == {"tok-123", "Q0E="}


def _lookup_with_auth_options(direct: dict[str, Any]) -> Any:
    """A real LookupBase whose option definitions come from the two doc fragments, merged as ansible-doc does."""
    from ansible import constants as C
    from ansible.plugins.lookup import LookupBase
    from ansible.utils.plugin_docs import merge_fragment

    options = _fragment_options("DOCUMENTATION")
    merge_fragment(options, _fragment_options("PLUGINS"))
    name = "kubedebug.ephemeral.auth_unit_test"
    C.config.initialize_plugin_configuration_definitions("lookup", name, options)

    class LookupModule(LookupBase):
        def run(self, terms: list[Any], variables: dict[str, Any] | None = None, **kwargs: Any) -> list[Any]:
            return []

    plugin = LookupModule()
    plugin._load_name = name
    plugin.set_options(direct=direct)
    return plugin


def test_auth_from_plugin_direct_options_and_aliases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("K8S_AUTH_HOST", "https://env-host")
    monkeypatch.setenv("K8S_AUTH_CONTEXT", "env-context")
    plugin = _lookup_with_auth_options({"host": "https://direct-host/", "verify_ssl": False, "impersonate_groups": ["g"]})
    auth = auth_from_plugin(plugin)
    assert auth["host"] == "https://direct-host"
    assert auth["validate_certs"] is False
    assert auth["context"] == "env-context"
    assert auth["impersonate_groups"] == ["g"]


def test_auth_from_plugin_parses_env_like_modules_do(monkeypatch: pytest.MonkeyPatch) -> None:
    # Ansible's own bool parsing would turn "off" into false; kubernetes.core's rule keeps TLS on.
    monkeypatch.setenv("K8S_AUTH_VERIFY_SSL", "off")
    monkeypatch.setenv("K8S_AUTH_IMPERSONATE_GROUPS", "a,,b")
    monkeypatch.setenv("K8S_AUTH_PROXY_HEADERS_USER_AGENT", "kd/1.0")
    plugin = _lookup_with_auth_options({})
    assert plugin.get_option("validate_certs") is False  # what Ansible alone would have used
    auth = auth_from_plugin(plugin)
    assert auth["validate_certs"] is True
    assert auth["impersonate_groups"] == ["a", "b"]
    assert auth["proxy_headers"] == {"user_agent": "kd/1.0"}


class ConfigOnlyOrigins:
    """A plugin as ansible-core 2.16 and 2.17 have it: get_option_and_origin works the value and origin out again from
    the configuration (env vars, defaults) alone, blind to the options set_options was given."""

    def __init__(self, options: dict[str, Any], environ: dict[str, str]) -> None:
        self._options = options
        self._environ = environ

    def get_option(self, option: str, hostvars: dict[str, object] | None = None) -> Any:
        return self._options.get(option)

    def get_option_and_origin(self, option: str, hostvars: dict[str, object] | None = None) -> tuple[Any, str]:
        for name in env_var_names(option):
            if name in self._environ:
                value: Any = self._environ[name]
                if AUTH_ARG_SPEC[option].get("type") == "bool":
                    value = value.lower() in ("1", "true", "yes", "on")
                return value, f"env: {name}"
        return None, "default"


def test_auth_from_plugin_direct_options_on_ansible_core_2_16(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("")
    # A keyword the configuration knows nothing of: its value, not the configuration's None (no kubeconfig found).
    plugin = ConfigOnlyOrigins({"kubeconfig": str(kubeconfig)}, {})
    assert auth_from_plugin(plugin, {"kubeconfig", "container"})["kubeconfig"] == str(kubeconfig)
    assert auth_from_plugin(plugin)["kubeconfig"] == str(kubeconfig)  # its value is not the configuration's: not from env
    # A keyword that an env var sets to the same value: still the keyword's (env "off" would mean TLS on).
    monkeypatch.setenv("K8S_AUTH_VERIFY_SSL", "off")
    environ = {"K8S_AUTH_VERIFY_SSL": "off", "K8S_AUTH_CONTEXT": "env-context"}
    plugin = ConfigOnlyOrigins({"validate_certs": False}, environ)
    assert auth_from_plugin(plugin, {"verify_ssl"})["validate_certs"] is False
    # Not given: the env var's, parsed the way the modules parse it.
    monkeypatch.setenv("K8S_AUTH_CONTEXT", "env-context")
    plugin = ConfigOnlyOrigins({"validate_certs": False, "context": "env-context"}, environ)
    auth = auth_from_plugin(plugin)
    assert (auth["validate_certs"], auth["context"]) == (True, "env-context")


def test_auth_from_plugin_without_the_fragments_is_a_kubedebug_error() -> None:
    class Bare:
        def get_option(self, option: str, hostvars: dict[str, object] | None = None) -> Any:
            raise KeyError(option)

    with pytest.raises(KubedebugError, match=r"kubedebug\.ephemeral\.auth"):
        auth_from_plugin(Bare())


# --------------------------------------------------------------------------- create_api_client


def _write_cert_files(directory: Path) -> dict[str, Path]:
    files = {"ca": directory / "ca.crt", "cert": directory / "client.crt", "key": directory / "client.key"}
    files["ca"].write_text(FAKE_CA)
    files["cert"].write_text(FAKE_CERT)
    files["key"].write_text(FAKE_KEY)
    return files


def _kubeconfig_dict(files: dict[str, Path] | None = None, **cluster_extra: Any) -> dict[str, Any]:
    cert_user: dict[str, Any]
    if files:
        cert_user = {"client-certificate": str(files["cert"]), "client-key": str(files["key"])}
        cluster: dict[str, Any] = {"server": "https://prod.example:6443", "certificate-authority": str(files["ca"])}
    else:
        cert_user = {"token": "cert-less-token"}
        cluster = {"server": "https://prod.example:6443"}
    cluster.update(cluster_extra)
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "dev",
        "clusters": [
            {"name": "prod", "cluster": cluster},
            {"name": "dev", "cluster": {"server": "https://dev.example:6443", "insecure-skip-tls-verify": True}},
        ],
        "users": [
            {"name": "prod-user", "user": cert_user},
            {"name": "dev-user", "user": {"token": "dev-token"}},
        ],
        "contexts": [
            {"name": "prod", "context": {"cluster": "prod", "user": "prod-user"}},
            {"name": "dev", "context": {"cluster": "dev", "user": "dev-user"}},
        ],
    }


def _write_kubeconfig(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def test_kubeconfig_file_with_context_and_certificate_files(tmp_path: Path) -> None:
    files = _write_cert_files(tmp_path)
    kubeconfig = _write_kubeconfig(tmp_path / "config", _kubeconfig_dict(files))
    default_before = kubernetes.client.Configuration._default

    client = create_api_client(resolve_auth({"kubeconfig": str(kubeconfig), "context": "prod"}, {}))

    configuration = client.configuration
    assert configuration.host == "https://prod.example:6443"
    assert configuration.ssl_ca_cert == str(files["ca"])
    assert configuration.cert_file == str(files["cert"])
    assert configuration.key_file == str(files["key"])
    assert configuration.verify_ssl is True
    assert bearer(client) is None
    assert kubernetes.client.Configuration._default is default_before


def test_kubeconfig_current_context_and_explicit_overrides(tmp_path: Path) -> None:
    kubeconfig = _write_kubeconfig(tmp_path / "config", _kubeconfig_dict())
    client = create_api_client(resolve_auth({"kubeconfig": str(kubeconfig)}, {}))
    # "dev" is the current context and skips TLS verification in the kubeconfig itself.
    assert client.configuration.host == "https://dev.example:6443"
    assert client.configuration.verify_ssl is False
    assert bearer(client) == "Bearer dev-token"

    auth = resolve_auth({"kubeconfig": str(kubeconfig), "validate_certs": True, "ca_cert": "/explicit/ca"}, {})
    client = create_api_client(auth)
    assert client.configuration.verify_ssl is True
    assert client.configuration.ssl_ca_cert == "/explicit/ca"


def test_kubeconfig_path_list_skips_missing_files(tmp_path: Path) -> None:
    kubeconfig = _write_kubeconfig(tmp_path / "config", _kubeconfig_dict())
    joined = os.pathsep.join([str(tmp_path / "missing"), str(kubeconfig)])
    client = create_api_client(resolve_auth({"kubeconfig": joined, "context": "prod"}, {}))
    assert client.configuration.host == "https://prod.example:6443"


def test_kubeconfig_dict(tmp_path: Path) -> None:
    data = _kubeconfig_dict()
    data["clusters"][0]["cluster"]["certificate-authority-data"] = base64.b64encode(FAKE_CA.encode()).decode()
    client = create_api_client(resolve_auth({"kubeconfig": data, "context": "prod"}, {}))
    assert client.configuration.host == "https://prod.example:6443"
    assert client.configuration.verify_ssl is True
    assert Path(client.configuration.ssl_ca_cert).read_text() == FAKE_CA
    assert bearer(client) == "Bearer cert-less-token"


def test_kubeconfig_from_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kubeconfig = _write_kubeconfig(tmp_path / "config", _kubeconfig_dict())
    monkeypatch.setenv("K8S_AUTH_KUBECONFIG", str(kubeconfig))
    monkeypatch.setenv("K8S_AUTH_CONTEXT", "prod")
    client = create_api_client(resolve_auth({}, os.environ))
    assert client.configuration.host == "https://prod.example:6443"


def test_api_key_replaces_the_kubeconfig_token_for_good(tmp_path: Path) -> None:
    kubeconfig = _write_kubeconfig(tmp_path / "config", _kubeconfig_dict())
    client = create_api_client(resolve_auth({"kubeconfig": str(kubeconfig), "api_key": "mine"}, {}))
    # Reading the key twice runs any refresh hook; the kubeconfig's token must not come back.
    assert bearer(client) == "Bearer mine"
    assert bearer(client) == "Bearer mine"
    assert client.configuration.host == "https://dev.example:6443"


def _fail_if_called(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("no configuration file or service account may be read")


@pytest.mark.parametrize(
    "extra",
    [
        {"api_key": "tok"},
        {"username": "admin", "password": "pw"},
        {"client_cert": "/c.crt", "client_key": "/c.key"},
    ],
)
def test_host_with_credentials_reads_no_config(monkeypatch: pytest.MonkeyPatch, extra: dict[str, str]) -> None:
    monkeypatch.setattr(kubernetes.config, "load_kube_config", _fail_if_called)
    monkeypatch.setattr(kubernetes.config, "load_kube_config_from_dict", _fail_if_called)
    monkeypatch.setattr(kubernetes.config, "load_incluster_config", _fail_if_called)
    client = create_api_client(resolve_auth({"host": "https://k8s.example:6443/", **extra}, {}))
    assert client.configuration.host == "https://k8s.example:6443"
    assert client.configuration.verify_ssl is True


def test_host_and_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    client = create_api_client(resolve_auth({"host": "https://k8s.example:6443", "api_key": "tok"}, {}))
    assert client.configuration.api_key == {"authorization": "Bearer tok"}
    assert bearer(client) == "Bearer tok"
    assert client.configuration.verify_ssl is True

    auth = resolve_auth({}, {"K8S_AUTH_HOST": "https://k8s.example", "K8S_AUTH_API_KEY": "t", "K8S_AUTH_VERIFY_SSL": "no"})
    assert create_api_client(auth).configuration.verify_ssl is False


def test_username_and_password_are_sent_as_basic_auth() -> None:
    client = create_api_client(resolve_auth({"host": "https://k8s.example", "username": "u", "password": "p"}, {}))
    assert bearer(client) == "Basic " + base64.b64encode(b"u:p").decode()
    assert (client.configuration.username, client.configuration.password) == ("u", "p")


def test_proxy_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://env-proxy:3128")
    client = create_api_client(resolve_auth({"host": "https://k8s.example", "api_key": "t"}, {}))
    assert client.configuration.proxy is None

    auth = resolve_auth(
        {"host": "https://k8s.example", "api_key": "t", "proxy": "http://proxy:3128", "no_proxy": "localhost"},
        {"K8S_AUTH_PROXY_HEADERS_PROXY_BASIC_AUTH": "joe:pw"},
    )
    configuration = create_api_client(auth).configuration
    assert configuration.proxy == "http://proxy:3128"
    assert configuration.no_proxy == "localhost"
    assert configuration.proxy_headers == {"proxy-authorization": "Basic " + base64.b64encode(b"joe:pw").decode()}


def test_impersonation_headers_one_per_group() -> None:
    auth = resolve_auth(
        {"host": "https://k8s.example", "api_key": "t"},
        {"K8S_AUTH_IMPERSONATE_USER": "jane", "K8S_AUTH_IMPERSONATE_GROUPS": "dev,ops"},
    )
    headers = [(str(name), value) for name, value in create_api_client(auth).default_headers.items()]
    assert ("Impersonate-User", "jane") in headers
    assert [value for name, value in headers if name == "Impersonate-Group"] == ["dev", "ops"]


def test_no_impersonation_headers_by_default() -> None:
    client = create_api_client(resolve_auth({"host": "https://k8s.example", "api_key": "t"}, {}))
    assert not [name for name in client.default_headers if str(name).startswith("Impersonate")]


class _RecordingHandler(http.server.BaseHTTPRequestHandler):
    requests: ClassVar[list[tuple[str, list[tuple[str, str]]]]] = []

    def _reply(self, body: dict[str, Any], status: int = 200) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        self.requests.append(("GET", list(self.headers.items())))
        self._reply(
            {
                "major": "1",
                "minor": "36",
                "gitVersion": "v1.36.3",
                "gitCommit": "0",
                "gitTreeState": "clean",
                "buildDate": "2026-01-01T00:00:00Z",
                "goVersion": "go1.26",
                "compiler": "gc",
                "platform": "linux/amd64",
            }
        )

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.requests.append(("POST", list(self.headers.items())))
        self._reply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kd"}}, status=201)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def api_server() -> Iterator[str]:
    _RecordingHandler.requests = []
    with serving(http.server.HTTPServer(("127.0.0.1", 0), _RecordingHandler)) as server:
        yield f"http://127.0.0.1:{server.server_address[1]}"


def test_headers_on_the_wire_and_environment_proxy_ignored(api_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy from the usual variables would swallow the requests: they must go straight to the server.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    auth = resolve_auth({"host": api_server, "api_key": "tok", "impersonate_user": "jane", "impersonate_groups": ["dev", "ops"]}, {})
    client = create_api_client(auth)

    assert kubernetes.client.VersionApi(client).get_code().git_version == "v1.36.3"
    namespace = kubernetes.client.V1Namespace(metadata=kubernetes.client.V1ObjectMeta(name="kd"))
    created = kubernetes.client.CoreV1Api(client).create_namespace(namespace)
    assert created.metadata is not None
    assert created.metadata.name == "kd"

    assert [method for method, _headers in _RecordingHandler.requests] == ["GET", "POST"]
    for _method, headers in _RecordingHandler.requests:
        lowered = [(name.lower(), value) for name, value in headers]
        assert ("authorization", "Bearer tok") in lowered
        assert ("impersonate-user", "jane") in lowered
        assert [value for name, value in lowered if name == "impersonate-group"] == ["dev", "ops"]


def test_missing_kubeconfig_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "kubeconfig"
    with pytest.raises(KubedebugError) as excinfo:
        create_api_client(resolve_auth({"kubeconfig": str(missing)}, {}))
    assert str(missing) in excinfo.value.msg
    assert "K8S_AUTH_KUBECONFIG" in excinfo.value.msg


def test_unknown_context_lists_the_available_ones(tmp_path: Path) -> None:
    kubeconfig = _write_kubeconfig(tmp_path / "config", _kubeconfig_dict())
    with pytest.raises(KubedebugError) as excinfo:
        create_api_client(resolve_auth({"kubeconfig": str(kubeconfig), "context": "staging"}, {}))
    message = excinfo.value.msg
    assert "staging" in message
    assert "prod, dev" in message
    assert "K8S_AUTH_CONTEXT" in message


def test_unknown_context_in_a_kubeconfig_dict() -> None:
    with pytest.raises(KubedebugError, match="Context staging not found in the kubeconfig dict"):
        create_api_client(resolve_auth({"kubeconfig": _kubeconfig_dict(), "context": "staging"}, {}))


def test_invalid_kubeconfig_is_a_kubedebug_error(tmp_path: Path) -> None:
    broken = tmp_path / "config"
    broken.write_text("")
    with pytest.raises(KubedebugError, match="Could not load kubeconfig"):
        create_api_client(resolve_auth({"kubeconfig": str(broken)}, {}))


def test_not_in_cluster_falls_back_to_the_default_kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kubeconfig = _write_kubeconfig(tmp_path / "default-config", _kubeconfig_dict())
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))
    client = create_api_client(resolve_auth({}, {}))
    assert client.configuration.host == "https://dev.example:6443"


def test_context_alone_uses_the_default_kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kubeconfig = _write_kubeconfig(tmp_path / "default-config", _kubeconfig_dict())
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))
    monkeypatch.setattr(kubernetes.config, "load_incluster_config", _fail_if_called)
    client = create_api_client(resolve_auth({"context": "prod"}, {}))
    assert client.configuration.host == "https://prod.example:6443"


def test_no_in_cluster_and_no_default_kubeconfig_says_what_to_set() -> None:
    with pytest.raises(KubedebugError) as excinfo:
        create_api_client(resolve_auth({}, {}))
    message = excinfo.value.msg
    assert "No Kubernetes configuration found" in message
    assert "no-default-kubeconfig" in message
    assert "K8S_AUTH_KUBECONFIG" in message


def test_missing_kubernetes_library_is_a_kubedebug_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_auth, "HAS_KUBERNETES", False)
    monkeypatch.setattr(_auth, "KUBERNETES_IMPORT_ERROR", "ModuleNotFoundError: No module named 'kubernetes'")
    with pytest.raises(KubedebugError, match="kubernetes Python library is required"):
        create_api_client(resolve_auth({"host": "https://k8s.example", "api_key": "t"}, {}))


# --------------------------------------------------------------------------- the kubernetes client's version


@pytest.mark.parametrize(
    ("version", "parsed"),
    [
        ("24.2.0", (24, 2, 0)),
        ("37.0.2a1", (37, 0, 2)),  # a pre-release counts as its release
        ("30", (30, 0, 0)),
        ("31.1", (31, 1, 0)),
        (" 29.0.0 ", (29, 0, 0)),
        ("", ()),
        ("unknown", ()),
    ],
)
def test_version_tuple(version: str, parsed: tuple[int, ...]) -> None:
    assert _auth._version_tuple(version) == parsed


@pytest.mark.parametrize("version", ["24.2.0", "24.2.1", "25.0.0", "37.0.2a1", "100.0.0"])
def test_kubernetes_problem_none_for_supported_versions(version: str) -> None:
    assert _auth.kubernetes_problem(version) is None


@pytest.mark.parametrize("version", ["24.1.9", "23.6.0", "12", "24.1"])
def test_kubernetes_problem_too_old(version: str) -> None:
    assert _auth.kubernetes_problem(version) == (
        f"the kubernetes Python client {version} is too old: 24.2.0 or newer is required (pip install 'kubernetes>=24.2.0')"
    )


@pytest.mark.parametrize("version", ["", "unknown"])
def test_kubernetes_problem_unknown_version(version: str) -> None:
    expected_version = version or "(unknown version)"
    assert _auth.kubernetes_problem(version) == (
        f"the kubernetes Python client {expected_version} is too old: 24.2.0 or newer is required (pip install 'kubernetes>=24.2.0')"
    )


def test_kubernetes_problem_reads_the_installed_version(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _auth.kubernetes_problem() is None  # both controller venvs install a supported client
    monkeypatch.setattr(_auth.kubernetes, "__version__", "23.6.0")
    assert _auth.kubernetes_problem() == "the kubernetes Python client 23.6.0 is too old: 24.2.0 or newer is required (pip install 'kubernetes>=24.2.0')"
    monkeypatch.delattr(_auth.kubernetes, "__version__")
    assert _auth.kubernetes_problem() == (
        "the kubernetes Python client (unknown version) is too old: 24.2.0 or newer is required (pip install 'kubernetes>=24.2.0')"
    )


def test_kubernetes_problem_without_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_auth, "HAS_KUBERNETES", False)
    assert _auth.kubernetes_problem() == "the kubernetes Python client is required on the host that runs this (pip install 'kubernetes>=24.2.0')"


# --------------------------------------------------------------------------- request_timeout and request_retries


@pytest.mark.parametrize(
    ("params", "environ", "expected"),
    [
        ({}, {}, {"request_timeout": 30.0, "retries": 8}),
        ({"request_timeout": 2.5, "request_retries": 0}, {}, {"request_timeout": 2.5, "retries": 0}),
        ({"request_timeout": "7"}, {"K8S_AUTH_REQUEST_TIMEOUT": "9"}, {"request_timeout": 7.0, "retries": 8}),
        ({}, {"K8S_AUTH_REQUEST_TIMEOUT": "0.75", "K8S_AUTH_REQUEST_RETRIES": "12"}, {"request_timeout": 0.75, "retries": 12}),
    ],
)
def test_request_timeout_and_retries_shape_the_client(params: dict[str, Any], environ: dict[str, str], expected: dict[str, Any]) -> None:
    assert _auth.client_options(resolve_auth(params, environ)) == expected
    # The same defaults as the client's own, which this layer may not import.
    assert (_auth.DEFAULT_REQUEST_TIMEOUT, _auth.DEFAULT_REQUEST_RETRIES) == (_client.REQUEST_TIMEOUT, _client.REQUEST_RETRIES)


@pytest.mark.parametrize(
    ("params", "environ", "message"),
    [
        ({"request_timeout": 0}, {}, "Option request_timeout must be more than 0 and at most 3600 seconds, got 0"),
        ({"request_timeout": "soon"}, {}, "Option request_timeout must be a number of seconds, got 'soon'."),
        ({"request_timeout": True}, {}, "Option request_timeout must be a number of seconds, got True."),
        ({}, {"K8S_AUTH_REQUEST_TIMEOUT": "-1"}, "K8S_AUTH_REQUEST_TIMEOUT (option request_timeout) must be more than 0"),
        ({"request_retries": 1.5}, {}, "Option request_retries must be a whole number, got 1.5."),
        ({"request_retries": 101}, {}, "Option request_retries must be between 0 and 100, got 101"),
        ({}, {"K8S_AUTH_REQUEST_RETRIES": "many"}, "K8S_AUTH_REQUEST_RETRIES (option request_retries) must be a whole number, got 'many'."),
    ],
)
def test_bad_request_timeout_or_retries_is_refused_by_name(params: dict[str, Any], environ: dict[str, str], message: str) -> None:
    with pytest.raises(KubedebugError) as excinfo:
        resolve_auth(params, environ)
    assert excinfo.value.msg.startswith(message)


def test_create_api_client_leaves_every_retry_to_the_collection(tmp_path: Path) -> None:
    # urllib3 would otherwise retry GETs (never PATCHes) three times on its own, sleeping any Retry-After.
    client = create_api_client(resolve_auth({"host": "https://k8s.example", "api_key": "t"}, {}))
    assert client.configuration.retries is False
    kubeconfig = {
        "apiVersion": "v1",
        "clusters": [{"name": "c", "cluster": {"server": "https://k8s.example"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    assert create_api_client(resolve_auth({"kubeconfig": kubeconfig}, {})).configuration.retries is False
