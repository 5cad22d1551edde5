"""Cryptography: master keyring, envelope encryption, blind indexes. No Flask, no SQLAlchemy."""
