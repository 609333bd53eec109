# Copyright (c) kubedebug.ephemeral contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""How the info modules and the ephemeral_results lookup choose pods.

Implemented by ``plugins/module_utils/_selection.py`` (``SELECTION_ARG_SPEC``); keep the two in step.
"""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  namespace:
    description:
      - The namespace of bare pod names, and of the pods a selector is applied to.
    type: str
  label_selector:
    description:
      - Select pods by label instead of naming them, for example V(app.kubernetes.io/name=web). Several are ANDed.
      - Applies to the pods of O(namespace) or, with O(all_namespaces=true), of every namespace.
    type: list
    elements: str
  all_namespaces:
    description:
      - Look at pods in every namespace (one cluster-wide C(LIST)), instead of naming pods or a O(namespace).
    type: bool
    default: false
"""

    # The lookup takes the pods as its terms; the modules take them in this option.
    MODULES = r"""
options:
  pod:
    description:
      - Pod references, V(namespace/pod) or a bare name in O(namespace). Mutually exclusive with O(label_selector).
      - Without O(pod), every pod in O(namespace) (or in all namespaces) is looked at, narrowed by O(label_selector).
    type: list
    elements: str
    aliases: [name]
"""
