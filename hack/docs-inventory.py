# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Write a Sphinx (intersphinx) inventory of the Ansible docsite's labels that our pages link to.

    python hack/docs-inventory.py OUT.inv      (hack/docs.sh runs it with the docs venv's Python)

The pages antsibull-docs generates refer to the Ansible docsite: ansible.builtin plugins
(M(ansible.builtin.copy) in our docs) and a few pages its templates name (common return
values, action plugins, configuration settings). Sphinx resolves those through intersphinx,
which would download docs.ansible.com's objects.inv at every build. The build must not reach
the network, so this writes the inventory instead: every ansible.builtin plugin of the
installed ansible-core, and the docsite labels antsibull-docs' templates use, each with its
docs.ansible.com address. The links in the site are the same as with the real inventory.
"""

from __future__ import annotations

import re
import sys
import zlib
from pathlib import Path

import ansible

# Labels of the Ansible docsite that antsibull-docs' templates refer to: label -> (page and anchor, title).
DOCSITE_LABELS = {
    "action_plugins": ("plugins/action.html#action-plugins", "Action plugins"),
    "callback_plugins": ("plugins/callback.html#callback-plugins", "Callback plugins"),
    "common_return_values": ("reference_appendices/common_return_values.html#common-return-values", "Return Values"),
    "ansible_configuration_settings": ("reference_appendices/config.html#ansible-configuration-settings", "Ansible Configuration Settings"),
    "collections_keyword": ("collections_guide/collections_using_playbooks.html#collections-keyword", "Simplifying module names with the collections keyword"),
    "list_of_collections": ("collections/index.html#list-of-collections", "Collection Index"),
    "list_of_callback_plugins": ("collections/index_callback.html#list-of-callback-plugins", "Index of all Callback Plugins"),
}

# Plugin types whose ansible.builtin plugins are one Python file each (modules are in ansible/modules).
PY_PLUGIN_TYPES = ("become", "cache", "callback", "connection", "inventory", "lookup", "shell", "strategy", "vars")
# Filters and tests: one YAML documentation file each.
YAML_PLUGIN_TYPES = ("filter", "test")


def builtin_plugins(package: Path) -> list[tuple[str, str]]:
    """(name, type) of every documented ansible.builtin plugin of this ansible-core."""
    found = [(p.stem, "module") for p in (package / "modules").glob("*.py")]
    for kind in PY_PLUGIN_TYPES:
        found += [(p.stem, kind) for p in (package / "plugins" / kind).glob("*.py")]
    for kind in YAML_PLUGIN_TYPES:
        found += [(p.stem, kind) for p in (package / "plugins" / kind).glob("*.yml")]
    return sorted((name, kind) for name, kind in found if not name.startswith("_"))


def anchor(label: str) -> str:
    """The HTML id Sphinx gives a label."""
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


def main() -> int:
    if len(sys.argv) != 2:
        print(f"usage: {sys.argv[0]} OUT.inv", file=sys.stderr)
        return 2
    lines = []
    for label, (uri, title) in sorted(DOCSITE_LABELS.items()):
        lines.append(f"{label} std:label -1 {uri} {title}")
    for name, kind in builtin_plugins(Path(ansible.__file__).parent):
        label = f"ansible_collections.ansible.builtin.{name}_{kind}"
        lines.append(f"{label} std:label -1 collections/ansible/builtin/{name}_{kind}.html#{anchor(label)} ansible.builtin.{name} {kind}")
    header = "# Sphinx inventory version 2\n# Project: Ansible\n# Version: devel\n# The remainder of this file is compressed using zlib.\n"
    Path(sys.argv[1]).write_bytes(header.encode() + zlib.compress(("\n".join(lines) + "\n").encode()))
    print(f"{sys.argv[1]}: {len(lines)} labels", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
