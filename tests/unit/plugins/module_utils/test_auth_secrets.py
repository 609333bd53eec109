# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Which values _auth treats as credentials to mask, and when it warns about unverified TLS.

The front ends' behaviour with them (masked output, one warning per task) is in
tests/unit/plugins/modules/test_credentials_and_tls.py.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml

from ansible_collections.kubedebug.ephemeral.plugins.module_utils._auth import (
    AUTH_ARG_SPEC,
    auth_from_module,
    auth_secrets,
    client_secrets,
    create_api_client,
    insecure_tls_warning,
    resolve_auth,
)


class FakeModule:
    def __init__(self, params: dict[str, Any]) -> None:
        self.params = {**dict.fromkeys(AUTH_ARG_SPEC), **params}
        self.no_log_values: set[str] = set()


def test_auth_secrets_are_the_credentials_from_options_env_urls_and_kubeconfig_dicts() -> None:
    kubeconfig = {
        "users": [{"name": "u", "user": {"token": "kc-token", "client-key-data": "a2V5"}}],
        "clusters": [{"name": "c", "cluster": {"server": "https://k"}}],
    }
    auth = resolve_auth(
        {
            "host": "https://huser:host-pass@k:6443",
            "proxy": "http://puser:proxy-pass@proxy:3128",
            "username": "jane",
            "kubeconfig": kubeconfig,
            "proxy_headers": {"proxy_basic_auth": "p:header-pass", "user_agent": "kd/1"},
        },
        {"K8S_AUTH_API_KEY": "env-token", "K8S_AUTH_PASSWORD": "env-pass"},
    )
    # Not the user agent: only the no_log suboptions of proxy_headers are credentials.
    assert auth_secrets(auth) == {"env-token", "env-pass", "host-pass", "proxy-pass", "p:header-pass", "kc-token", "a2V5"}


@pytest.mark.parametrize("url", ["https://k:6443", "http://proxy@k", "not a url", "http://[::1"])
def test_urls_without_a_password_add_nothing(url: str) -> None:
    assert auth_secrets(resolve_auth({"host": url, "proxy": url}, {})) == set()


def test_auth_from_module_registers_them_as_no_log_values() -> None:
    module = FakeModule({"proxy": "http://u:proxy-pass@proxy:3128"})
    auth_from_module(module)
    assert module.no_log_values == {"proxy-pass"}


def test_client_secrets_are_what_the_client_sends_whatever_gave_it(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "clusters": [{"name": "c", "cluster": {"server": "https://k"}}],
                "users": [{"name": "u", "user": {"token": "file-token"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    from_file = create_api_client(resolve_auth({"kubeconfig": str(kubeconfig)}, {}))
    assert {"file-token"} <= client_secrets(from_file)

    basic = create_api_client(
        resolve_auth({"host": "https://k", "username": "jane", "password": "pw", "proxy": "http://p:3128", "proxy_headers": {"proxy_basic_auth": "a:b"}}, {})
    )
    jane, proxy = base64.b64encode(b"jane:pw").decode(), base64.b64encode(b"a:b").decode()
    assert client_secrets(basic) == {f"Basic {jane}", jane, "pw", f"Basic {proxy}", proxy}


def test_verified_tls_gives_no_warning_and_unverified_tls_one_that_says_what_to_do() -> None:
    assert insecure_tls_warning(create_api_client(resolve_auth({"host": "https://k", "api_key": "t"}, {}))) is None
    warning = insecure_tls_warning(create_api_client(resolve_auth({"host": "https://k:6443", "api_key": "t", "validate_certs": False}, {})))
    assert warning is not None
    assert warning.startswith("TLS certificate verification of the API server https://k:6443 is off (validate_certs: false")
    assert "ca_cert (K8S_AUTH_SSL_CA_CERT)" in warning
