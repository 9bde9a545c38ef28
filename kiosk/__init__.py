"""Onshi Kiosk: the self-service counter kiosk for the online insurance eligibility check."""

__version__ = "0.1.0"
