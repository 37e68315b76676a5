"""Testing helpers: the conformance suite every store passes, and a pytest plugin.

``from secretkit.testing.conformance import StoreConformance`` and subclass it with a
``store`` fixture to check a driver (yours or a third party's) against the portable contract;
``secretkit.testing.readers.ReaderAgreement`` checks that every reader of a value (references,
settings, the command line) gives the same text on it as on every other backend.
"""
