"""Signed distribution of mini-app bundles with The Update Framework (python-tuf).

``keys`` makes and loads ed25519 keys, ``roles`` is the partner side (sign a bundle into the
partner's delegated targets role), ``repository`` is the registry side (the TUF repository on disk)
and ``client`` is the head-unit side (verified metadata and bundle downloads).
"""
