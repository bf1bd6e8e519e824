"""The reference buyer agent: the individual's own agent (spec §3.1, §4).

``store`` (the personal data store), ``policy`` (the sharing policy and its
pure decisions), ``ranking`` (offers by total cost), ``letters`` (the postal
path), ``agent`` (the lifecycle, the individual's side), ``app`` (the HTTP
binding and test driver), ``cli`` (``vrm buyer``) and ``journey``
(``vrm demo``).  It imports ``vrm_protocol`` only.
"""
