# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""How every module and the ephemeral_results lookup choose pods: the one selection model.

Implemented by ``plugins/module_utils/_selection.py`` (``SELECTION_ARG_SPEC``); keep the two in step
(tests/unit/plugins/module_utils/test_selection.py compares them).
"""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  namespace:
    description:
      - The namespace(s) of the pods a selector is applied to, and with exactly one namespace the namespace of bare
        pod names.
      - A single namespace may be given as a string.
    type: list
    elements: str
  label_selector:
    description:
      - Select pods by label instead of naming them, for example V(app.kubernetes.io/name=web). Several are ANDed.
      - Applies to the pods of O(namespace) or, with O(all_namespaces=true), of every namespace.
    type: list
    elements: str
    aliases: [label_selectors]
  field_selector:
    description:
      - Select pods by field, for example V(spec.nodeName=node-1) or V(status.phase=Running). Several are ANDed,
        and ANDed with O(label_selector).
    type: list
    elements: str
    aliases: [field_selectors]
  all_namespaces:
    description:
      - Apply the selectors to pods in every namespace (one cluster-wide C(LIST)), instead of to O(namespace).
    type: bool
    default: false
"""

    # The lookup takes the pods as its terms; the modules take them in this option.
    MODULES = r"""
options:
  pod:
    description:
      - Pod references, V(namespace/pod), or a bare name in the one O(namespace). A single pod may be given as a
        string. Mutually exclusive with O(label_selector), O(field_selector) and O(all_namespaces).
      - A named pod that does not exist (or whose namespace may not be read) gives a record with its error; the other
        pods are still handled.
    type: list
    elements: str
    aliases: [name]
"""
