"""Therapist accounts: password hashes, who sees which patient, and login sessions."""
