"""The records schema lives in ``core.records`` (the bottom floor trainables/ and analysis/ share); this
name stays for code written against it."""

from core.records import COLUMNS, CONTEXT_COLUMNS, DTYPES, TEXT_COLUMNS, Record, read, read_csv, to_frame, validate

__all__ = ["COLUMNS", "CONTEXT_COLUMNS", "DTYPES", "TEXT_COLUMNS", "Record", "read", "read_csv", "to_frame",
           "validate"]
