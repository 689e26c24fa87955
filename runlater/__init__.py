"""Runlater: async task infrastructure — delayed HTTP tasks, cron jobs, webhooks, monitors."""

__version__ = "0.1.0"
