"""What the kubelet does to a container's command and args before it starts the process (tests only).

It expands ``$(NAME)`` to the value of the container's environment variable NAME (a reference to a variable it does
not have stays as written), and ``$$`` to ``$``: ephemeral containers included (checked on the real node: an
ephemeral container running ``sh -c 'echo $$'`` printed ``$``). The recipe role escapes its command for this
(``kubelet_escape`` in plugins/plugin_utils/_recipes.py); tests that run the planned command on this host, where no
kubelet stands in between, expand it first as the kubelet would.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def kubelet_expand(arg: str, env: Mapping[str, str] | None = None) -> str:
    """``arg`` as the kubelet hands it to the container runtime (Kubernetes' third_party/forked/golang/expansion)."""
    env = env or {}
    out: list[str] = []
    i = 0
    while i < len(arg):
        if arg[i] == "$" and i + 1 < len(arg):
            if arg[i + 1] == "$":
                out.append("$")
                i += 2
                continue
            if arg[i + 1] == "(":
                end = arg.find(")", i + 2)
                if end != -1:
                    out.append(env.get(arg[i + 2 : end], arg[i : end + 1]))
                    i = end + 1
                    continue
        out.append(arg[i])
        i += 1
    return "".join(out)


def kubelet_argv(argv: Sequence[str], env: Mapping[str, str] | None = None) -> list[str]:
    """A container's command (and args) as its process gets them."""
    return [kubelet_expand(arg, env) for arg in argv]
