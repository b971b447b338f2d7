"""Internals of the Database Evolution lab; notebooks use ``lab_helpers`` instead."""
