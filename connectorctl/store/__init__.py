"""SQLite state: one file shared by every process of an installation."""
