"""tlsedge configs as Python dicts, and a tiny YAML emitter for them (block
style, every string double-quoted)."""

import json
import re


def _yaml_scalar(v):
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        # JSON string escapes are a subset of YAML double-quoted escapes.
        return json.dumps(v)
    raise TypeError(f"cannot emit {type(v).__name__} as YAML")


def to_yaml(obj, indent=0):
    """Block-style YAML for dicts/lists/scalars (enough for tlsedge configs)."""
    pad = " " * indent
    lines = []
    if isinstance(obj, dict):
        if not obj:
            return pad + "{}\n"
        for k, v in obj.items():
            key = _yaml_scalar(str(k)) if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", str(k)) else str(k)
            if isinstance(v, (dict, list)) and v:
                lines.append(f"{pad}{key}:\n{to_yaml(v, indent + 2)}")
            elif isinstance(v, dict):
                lines.append(f"{pad}{key}: {{}}\n")
            elif isinstance(v, list):
                lines.append(f"{pad}{key}: []\n")
            else:
                lines.append(f"{pad}{key}: {_yaml_scalar(v)}\n")
        return "".join(lines)
    if isinstance(obj, list):
        if not obj:
            return pad + "[]\n"
        for v in obj:
            if isinstance(v, (dict, list)) and v:
                inner = to_yaml(v, indent + 2)
                # "- " replaces the first two spaces of the nested block.
                lines.append(f"{pad}- {inner[indent + 2:]}")
            else:
                lines.append(f"{pad}- {_yaml_scalar(v) if not isinstance(v, (dict, list)) else ('{}' if isinstance(v, dict) else '[]')}\n")
        return "".join(lines)
    return pad + _yaml_scalar(obj) + "\n"


def base_config(state_dir, *, certificates=None, sites=None, upstreams=None,
                https=("127.0.0.1:0",), http=("127.0.0.1:0",), workers=2,
                default_certificate=None, unknown_sni=None, min_version=None,
                shutdown_timeout=None, ticket_key_rotation=None, ticket_keys_kept=None):
    """A config dict with loopback port-0 listeners. `certificates` maps name ->
    Leaf; `upstreams` maps name -> a list of servers or an upstream() dict."""
    cfg = {
        "workers": workers,
        "listen": {"https": list(https), "http": list(http)},
        "state_dir": state_dir,
        # Not the default 127.0.0.1:9180: tests run in parallel.
        "metrics": {"listen": "127.0.0.1:0"},
    }
    if shutdown_timeout is not None:
        cfg["shutdown_timeout"] = shutdown_timeout
    tls = {}
    if min_version is not None:
        tls["min_version"] = min_version
    if default_certificate is not None:
        tls["default_certificate"] = default_certificate
    if unknown_sni is not None:
        tls["unknown_sni"] = unknown_sni
    if ticket_key_rotation is not None:
        tls["ticket_key_rotation"] = ticket_key_rotation
    if ticket_keys_kept is not None:
        tls["ticket_keys_kept"] = ticket_keys_kept
    if tls:
        cfg["tls"] = tls
    cfg["certificates"] = {n: {"cert": l.cert, "key": l.key} for n, l in (certificates or {}).items()}
    cfg["sites"] = list(sites or [])
    cfg["upstreams"] = {n: upstream(s) for n, s in (upstreams or {}).items()}
    return cfg


def upstream(servers, **options):
    """An upstream map: `servers` (a list of addresses) plus options as in the
    YAML (balance=..., connect_timeout=..., tls={...}). A dict is taken as
    it is."""
    if isinstance(servers, dict):
        return dict(servers)
    u = {"servers": list(servers)}
    u.update(options)
    return u


def site(name, hosts, routes, certificate=None, **extra):
    s = {"name": name, "hosts": list(hosts)}
    if certificate is not None:
        s["tls"] = {"certificate": certificate}
    s.update(extra)
    s["routes"] = list(routes)
    return s


def upstream_route(path, upstream):
    return {"path": path, "upstream": upstream}


def respond_route(path, status, body, content_type=None):
    r = {"status": status, "body": body}
    if content_type is not None:
        r["content_type"] = content_type
    return {"path": path, "respond": r}
