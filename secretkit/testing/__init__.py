"""Testing helpers: the conformance suite every store passes, and a pytest plugin.

``from secretkit.testing.conformance import StoreConformance`` and subclass it with a
``store`` fixture to check a driver (yours or a third party's) against the portable contract.
"""
