"""The encrypted, versioned resource store: tables, units of work, data keys, repository, index.

Only this package touches the database. Services call it inside a `UnitOfWork`.
"""
