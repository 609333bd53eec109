# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Kubernetes connection options, shared by the modules and lookups of this collection.

The names, aliases and environment variables are those of kubernetes.core's
``k8s_auth_options`` fragment, so existing plays and environments carry over.
Implemented by ``plugins/module_utils/_auth.py``; keep the two in step.
"""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Path to a kubeconfig file, or the content of a kubeconfig as a dictionary.
      - Several files can be given joined with V(:) (V(;) on Windows), as in the E(KUBECONFIG) environment variable
        of C(kubectl); files that do not exist are skipped, and it is an error if none exists.
      - If neither O(kubeconfig) nor O(context) is set and O(host) does not come with credentials (O(api_key),
        O(username) and O(password), or O(client_cert) and O(client_key)), the in-cluster service account is used
        when running in a pod, else the file named by E(KUBECONFIG) or I(~/.kube/config).
      - Credentials inside a dictionary are hidden from the task result and logs.
      - Can also be specified via the E(K8S_AUTH_KUBECONFIG) environment variable.
    type: raw
  context:
    description:
      - The name of a context in the kubeconfig. Defaults to the kubeconfig's current context.
      - Can also be specified via the E(K8S_AUTH_CONTEXT) environment variable.
    type: str
  host:
    description:
      - URL of the Kubernetes API server, for example V(https://k8s.example.com:6443).
      - Overrides the server of the kubeconfig. Together with O(api_key), O(username) and O(password), or
        O(client_cert) and O(client_key), no kubeconfig or in-cluster configuration is read at all.
      - Can also be specified via the E(K8S_AUTH_HOST) environment variable.
    type: str
  api_key:
    description:
      - Bearer token used to authenticate with the API server. Overrides the credentials of the kubeconfig.
      - Can also be specified via the E(K8S_AUTH_API_KEY) environment variable.
    type: str
  username:
    description:
      - Username for HTTP basic authentication, together with O(password).
      - Only clusters that still accept basic authentication (removed from Kubernetes in 1.19) honour it.
      - Can also be specified via the E(K8S_AUTH_USERNAME) environment variable.
    type: str
  password:
    description:
      - Password for HTTP basic authentication. See O(username).
      - Can also be specified via the E(K8S_AUTH_PASSWORD) environment variable.
    type: str
  validate_certs:
    description:
      - Whether to verify the TLS certificate of the API server.
      - Verification is on unless this is V(false) or the kubeconfig cluster sets C(insecure-skip-tls-verify).
      - Setting this to V(false) is insecure; anyone on the network path can impersonate the API server and read
        the credentials sent to it. Prefer O(ca_cert). When verification is off (this option, its environment
        variables or the kubeconfig), each task warns once, however many pods and requests it handles.
      - A certificate that does not verify fails the task at once (it is not retried), with a message that names the
        API server and O(ca_cert).
      - Can also be specified via the E(K8S_AUTH_VERIFY_SSL) environment variable (or E(K8S_AUTH_VALIDATE_CERTS),
        which takes precedence); only V(0), V(false) and V(no) count as false there.
    type: bool
    aliases: [verify_ssl]
  ca_cert:
    description:
      - Path to a CA certificate bundle used to verify the API server. Include the full chain.
      - Can also be specified via the E(K8S_AUTH_SSL_CA_CERT) environment variable (or E(K8S_AUTH_CA_CERT),
        which takes precedence).
    type: path
    aliases: [ssl_ca_cert]
  client_cert:
    description:
      - Path to a client certificate used to authenticate with the API server, together with O(client_key).
      - Can also be specified via the E(K8S_AUTH_CERT_FILE) environment variable (or E(K8S_AUTH_CLIENT_CERT),
        which takes precedence).
    type: path
    aliases: [cert_file]
  client_key:
    description:
      - Path to the private key of O(client_cert).
      - Can also be specified via the E(K8S_AUTH_KEY_FILE) environment variable (or E(K8S_AUTH_CLIENT_KEY),
        which takes precedence).
    type: path
    aliases: [key_file]
  proxy:
    description:
      - URL of an HTTP proxy to reach the API server through.
      - A password in the URL (V(http://user:password@proxy:3128)) is hidden from the task result and logs.
      - The usual E(HTTP_PROXY), E(HTTPS_PROXY) and E(NO_PROXY) environment variables are deliberately ignored.
      - Can also be specified via the E(K8S_AUTH_PROXY) environment variable.
    type: str
  no_proxy:
    description:
      - Comma separated hosts, domains, IP addresses or CIDRs to reach without going through O(proxy),
        for example V(localhost,.local,127.0.0.0/8,10.0.0.0/8).
      - Can also be specified via the E(K8S_AUTH_NO_PROXY) environment variable.
    type: str
  proxy_headers:
    description:
      - Headers sent to the HTTP proxy given by O(proxy).
    type: dict
    suboptions:
      proxy_basic_auth:
        description:
          - V(username:password) for the C(Proxy-Authorization) basic authentication header.
          - Can also be specified via the E(K8S_AUTH_PROXY_HEADERS_PROXY_BASIC_AUTH) environment variable.
        type: str
      basic_auth:
        description:
          - V(username:password) for a basic C(Authorization) header sent to the proxy.
          - Can also be specified via the E(K8S_AUTH_PROXY_HEADERS_BASIC_AUTH) environment variable.
        type: str
      user_agent:
        description:
          - C(User-Agent) header sent to the proxy, for example V(foo/1.0).
          - Can also be specified via the E(K8S_AUTH_PROXY_HEADERS_USER_AGENT) environment variable.
        type: str
  persist_config:
    description:
      - Whether to write refreshed credentials (for example a renewed OIDC or cloud provider token) back to the
        kubeconfig file, so that the next run does not start with an expired refresh token.
      - Off unless set.
      - Can also be specified via the E(K8S_AUTH_PERSIST_CONFIG) environment variable.
    type: bool
  impersonate_user:
    description:
      - Act as this user, sent as the C(Impersonate-User) header. The authenticated user needs the RBAC
        permission to C(impersonate) it (C(serviceaccounts) for a V(system:serviceaccount:<namespace>:<name>) user,
        else C(users)); a refusal says so. Every other permission is then checked for the impersonated user, and
        audit annotations (O(ignore:annotate)) record the impersonated user.
      - Can also be specified via the E(K8S_AUTH_IMPERSONATE_USER) environment variable.
    type: str
  impersonate_groups:
    description:
      - Act as a member of these groups, sent as one C(Impersonate-Group) header per group.
      - Needs O(impersonate_user); the API server refuses groups without a user.
      - Can also be specified via the E(K8S_AUTH_IMPERSONATE_GROUPS) environment variable as a comma separated
        list, for example V(group1,group2).
    type: list
    elements: str
  request_timeout:
    description:
      - Seconds to wait for the API server, per request, to accept the connection and then for each part of its
        answer. A request that gets no answer in time is tried again, as a dropped connection is.
      - A watch waits for the whole of its own server-side timeout plus this.
      - This collection's own option (C(kubernetes.core) has none).
      - Can also be specified via the E(K8S_AUTH_REQUEST_TIMEOUT) environment variable.
      - Defaults to V(30).
    type: float
  request_retries:
    description:
      - How often one request is tried again after a transient failure, on every verb (throttling with HTTP 429,
        including API Priority and Fairness, HTTP 500, 502, 503 and 504, a conflict (409), a dropped connection
        or a timeout).
      - Waits honour C(Retry-After) (at most 10 seconds each), otherwise back off exponentially with jitter; the
        waits of one request add up to at most 60 seconds. A retried PATCH never adds a container twice.
      - When the retries run out the task fails, saying how many attempts were made and what the API server
        last answered. The result's C(api) counts requests, retries, throttled answers and timeouts.
      - This collection's own option (C(kubernetes.core) has none).
      - Can also be specified via the E(K8S_AUTH_REQUEST_RETRIES) environment variable.
      - Defaults to V(8).
    type: int
notes:
  - Each option is taken from the task first, then from its environment variable, then from the kubeconfig or
    in-cluster configuration. The options and variables are those of the C(kubernetes.core) collection.
  - TLS certificate verification is on by default. To avoid verification errors give the full certificate chain
    of the API server with O(ca_cert) or in the kubeconfig, rather than setting O(validate_certs=false).
  - Credentials never show in results, warnings, errors or logs, wherever they come from (options, C(K8S_AUTH_*)
    variables, a kubeconfig file or dictionary, the in-cluster service account), even when the API server or a
    proxy repeats them in a message.
"""

    # For lookup and other non-module plugins: Ansible's config manager only
    # looks at environment variables the documentation declares. Merged into the
    # options above (keys of the base fragment win). The plugin still hands env
    # values to module_utils/_auth.py to parse, so that K8S_AUTH_VERIFY_SSL=off
    # or a typo means what it means for modules (true), not false.
    # kubernetes.core's lookups declare no vars:, so none here either.
    # proxy_headers has no env entry: its variables are per suboption, which the
    # config manager cannot express; they are still read by the plugin.
    PLUGINS = r"""
options:
  kubeconfig:
    env:
      - name: K8S_AUTH_KUBECONFIG
  context:
    env:
      - name: K8S_AUTH_CONTEXT
  host:
    env:
      - name: K8S_AUTH_HOST
  api_key:
    env:
      - name: K8S_AUTH_API_KEY
  username:
    env:
      - name: K8S_AUTH_USERNAME
  password:
    env:
      - name: K8S_AUTH_PASSWORD
  validate_certs:
    env:
      - name: K8S_AUTH_VERIFY_SSL
      - name: K8S_AUTH_VALIDATE_CERTS
  ca_cert:
    env:
      - name: K8S_AUTH_SSL_CA_CERT
      - name: K8S_AUTH_CA_CERT
  client_cert:
    env:
      - name: K8S_AUTH_CERT_FILE
      - name: K8S_AUTH_CLIENT_CERT
  client_key:
    env:
      - name: K8S_AUTH_KEY_FILE
      - name: K8S_AUTH_CLIENT_KEY
  proxy:
    env:
      - name: K8S_AUTH_PROXY
  no_proxy:
    env:
      - name: K8S_AUTH_NO_PROXY
  persist_config:
    env:
      - name: K8S_AUTH_PERSIST_CONFIG
  impersonate_user:
    env:
      - name: K8S_AUTH_IMPERSONATE_USER
  impersonate_groups:
    env:
      - name: K8S_AUTH_IMPERSONATE_GROUPS
  request_timeout:
    env:
      - name: K8S_AUTH_REQUEST_TIMEOUT
  request_retries:
    env:
      - name: K8S_AUTH_REQUEST_RETRIES
"""
