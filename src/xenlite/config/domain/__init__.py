"""The domain model (libxl_domain_config) and its builder from xl.cfg keys.

Imports nothing itself: ``specs`` import ``domain.model`` while ``domain.devices`` imports
``specs``. The public entry points are in ``domain.build``.
"""
