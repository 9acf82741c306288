"""The ``kyok`` command line (Typer + Rich)."""
