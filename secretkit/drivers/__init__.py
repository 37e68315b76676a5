"""Backend drivers: each translates the portable calls to one backend and nothing more."""
