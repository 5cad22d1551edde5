"""Vietnamese identifiers (national ID, insurance, facility codes) and code tables: pure functions."""
