"""Package data: the requirements registry, one TOML file per area.

Read by :mod:`vrm_protocol.requirements`.
"""
