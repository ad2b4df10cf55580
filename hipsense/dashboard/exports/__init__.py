"""Exports of a session or a date range: CSV for spreadsheets, FHIR R4 for health records."""
